"""The dead-letter queue `webhooks-dead`: events that cannot be answered without a person's help.

It is an RQ queue no worker listens to, so a dead letter is a complete job, ready to run again:
`dead_letter_replay` moves it back to the queue it came from.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue
from rq.job import Job

from automations.delivery import EVENT_ACTIONS
from automations.ledger import ledger_clear_unfinished
from instabot.redis import get_redis
from queueing.queues import get_queue
from queueing.services import EVENT_JOB, event_job_data

logger = logging.getLogger(__name__)

DEAD_LETTER_QUEUE = "webhooks-dead"
DEAD_LETTER_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class DeadLetter:
    job_id: str
    event: dict[str, Any]
    origin_queue: str
    reason: str
    error: dict[str, Any] | None
    attempts: int
    parked_at: str


def dead_letter_queue() -> Queue:
    return get_queue(DEAD_LETTER_QUEUE)


def dead_letter_park(
    *, event: dict[str, Any], origin_queue: str, reason: str, error: dict[str, Any] | None, attempts: int
) -> str:
    job = dead_letter_queue().enqueue(
        EVENT_JOB,
        kwargs={"event": event},
        ttl=DEAD_LETTER_TTL_SECONDS,
        result_ttl=0,
        description=f"dead letter: {event.get('kind')} {event.get('event_id')} ({reason})",
        meta={
            "origin_queue": origin_queue,
            "reason": reason,
            "error": error,
            "attempts": attempts,
            "parked_at": datetime.now(UTC).isoformat(),
        },
    )
    logger.warning(
        "dead letter %s: %s %s of account %s: %s",
        job.id,
        event.get("kind"),
        event.get("event_id"),
        event.get("account_id"),
        reason,
    )
    return str(job.id)


def _as_dead_letter(job: Job) -> DeadLetter:
    meta = job.meta or {}
    return DeadLetter(
        job_id=str(job.id),
        event=dict(job.kwargs.get("event", {})),
        origin_queue=str(meta.get("origin_queue", "")),
        reason=str(meta.get("reason", "")),
        error=meta.get("error"),
        attempts=int(meta.get("attempts", 0)),
        parked_at=str(meta.get("parked_at", "")),
    )


def dead_letter_list(*, limit: int = 500, account_id: str = "", error_code: int | None = None) -> list[DeadLetter]:
    """The oldest `limit` dead letters, or with `account_id` / `error_code` the first `limit` of those
    of that Instagram account / with that Graph error code (190: Meta refused the token)."""
    if not account_id and error_code is None:
        return [_as_dead_letter(job) for job in dead_letter_queue().get_jobs(0, limit - 1)]
    matching = []
    for job in dead_letter_queue().get_jobs():
        letter = _as_dead_letter(job)
        if account_id and str(letter.event.get("account_id")) != account_id:
            continue
        if error_code is not None and (letter.error or {}).get("code") != error_code:
            continue
        matching.append(letter)
        if len(matching) >= limit:
            break
    return matching


def dead_letter_count() -> int:
    return int(dead_letter_queue().count)


def dead_letter_replay(*, job_id: str) -> str | None:
    """Queue the dead letter again on its own queue, exactly once; returns the new job id.

    None when that dead letter is not (or no longer) there, e.g. another replay took it first.
    """
    dead = dead_letter_queue()
    job = dead.fetch_job(job_id)
    if job is None:
        return None
    letter = _as_dead_letter(job)
    origin = get_queue(letter.origin_queue or "default")
    # A person replays after fixing the cause: an uncertain send may go out again, a confirmed one never.
    ledger_clear_unfinished(
        account_id=str(letter.event.get("account_id")),
        event_id=str(letter.event.get("event_id")),
        actions=EVENT_ACTIONS,
    )
    client = get_redis()
    with client.pipeline() as pipe:
        try:
            # Only the replay that still finds the id in the list moves it (WATCH makes it atomic).
            pipe.watch(dead.key)
            if pipe.lpos(dead.key, job_id) is None:
                return None
            pipe.multi()
            pipe.lrem(dead.key, 1, job_id)
            [new_job] = origin.enqueue_many([event_job_data(letter.event)], pipeline=pipe)
            pipe.delete(job.key)
            pipe.execute()
        except redis.WatchError:
            return None
    logger.info("dead letter %s replayed as job %s on %s", job_id, new_job.id, origin.name)
    return str(new_job.id)


def dead_letter_replay_all(*, account_id: str = "", error_code: int | None = None) -> int:
    """Replay every dead letter, or only those of an account and/or with a Graph error code."""
    replayed = 0
    for letter in dead_letter_list(limit=100_000, account_id=account_id, error_code=error_code):
        if dead_letter_replay(job_id=letter.job_id):
            replayed += 1
    return replayed
