"""The dead-letter queue `webhooks-dead`: events that cannot be answered without a person's help.

It is an RQ queue no worker listens to, so a dead letter is a complete job, ready to run again.
Two kinds, decided differently:
- ordinary ones (expired token, no permission, retries exhausted): fix the cause, then replay
  (`dead_letter_replay`): the event runs again and a send Meta already confirmed is never repeated;
- "delivery uncertain" ones: a send was written to Meta and no answer came back, so the reply may
  be in the conversation already. Only a person can tell: `dead_letter_send_anyway` clears the
  uncertain mark and sends once, `dead_letter_discard` drops the letter and marks the send done so
  that no redelivery sends it either. Replaying all never touches them.

One dead letter per event waits at a time: parking an event that already waits adds nothing.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from django.conf import settings
from rq import Queue
from rq.job import Job

from automations.delivery import EVENT_ACTIONS, UNCERTAIN_REASON
from automations.ledger import ledger_key
from instabot.redis import get_redis, key
from queueing.queues import get_queue
from queueing.services import EVENT_JOB, event_job_data

logger = logging.getLogger(__name__)

DEAD_LETTER_QUEUE = "webhooks-dead"
DEAD_LETTER_TTL_SECONDS = 30 * 24 * 3600
# What a discarded send's ledger entry says: settled by a person, never sent again.
DISCARDED = "done:discarded"
Settle = Literal["replay", "send_anyway", "discard"]
# Attempts at a transaction whose watched keys changed meanwhile (a job of the same event running).
_WATCH_ATTEMPTS = 20


@dataclass(frozen=True)
class DeadLetter:
    job_id: str
    event: dict[str, Any]
    origin_queue: str
    reason: str
    error: dict[str, Any] | None
    attempts: int
    parked_at: str

    @property
    def uncertain(self) -> bool:
        """The send may have reached Meta: a person decides (send anyway or discard)."""
        return self.reason.startswith(UNCERTAIN_REASON)


@dataclass(frozen=True)
class ReplayAllResult:
    replayed: int
    # Delivery-uncertain letters, left for a person's decision.
    left_uncertain: int


class DeliveryUncertain(Exception):
    """Replaying this dead letter could send twice: send it anyway, or discard it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"{job_id} is delivery uncertain: send it anyway or discard it")
        self.job_id = job_id


def dead_letter_queue() -> Queue:
    return get_queue(DEAD_LETTER_QUEUE)


def _waiting_key(event: dict[str, Any]) -> str:
    """Which dead letter of this event is waiting, if any."""
    return key("dead-letter", str(event.get("account_id")), str(event.get("event_id")))


def dead_letter_park(
    *, event: dict[str, Any], origin_queue: str, reason: str, error: dict[str, Any] | None, attempts: int
) -> str | None:
    """Park the event; returns the dead letter's job id, or None when one of this event already waits."""
    dead = dead_letter_queue()
    waiting = _waiting_key(event)
    client = get_redis()
    for _ in range(_WATCH_ATTEMPTS):
        with client.pipeline() as pipe:
            try:
                pipe.watch(waiting, dead.key)
                existing = _text(pipe.get(waiting))
                if existing and pipe.lpos(dead.key, existing) is not None:
                    logger.info(
                        "%s %s not parked again: dead letter %s waits (%s)",
                        event.get("kind"),
                        event.get("event_id"),
                        existing,
                        reason,
                    )
                    return None
                pipe.multi()
                [job] = dead.enqueue_many(
                    [
                        _dead_letter_data(
                            event=event, origin_queue=origin_queue, reason=reason, error=error, attempts=attempts
                        )
                    ],
                    pipeline=pipe,
                )
                pipe.set(waiting, str(job.id), ex=DEAD_LETTER_TTL_SECONDS)
                pipe.execute()
            except redis.WatchError:
                continue
        logger.warning(
            "dead letter %s: %s %s of account %s: %s",
            job.id,
            event.get("kind"),
            event.get("event_id"),
            event.get("account_id"),
            reason,
        )
        return str(job.id)
    raise redis.WatchError(f"could not park {event.get('event_id')}: its dead letter kept changing")


def _dead_letter_data(
    *, event: dict[str, Any], origin_queue: str, reason: str, error: dict[str, Any] | None, attempts: int
) -> Any:
    return Queue.prepare_data(
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
    """Queue an ordinary dead letter again on its own queue, exactly once; returns the new job id.

    None when that dead letter is not (or no longer) there, e.g. another replay took it first.
    Raises `DeliveryUncertain` for a delivery-uncertain one: that is a person's decision.
    """
    return _take_out(job_id=job_id, settle="replay")


def dead_letter_send_anyway(*, job_id: str) -> str | None:
    """Clear the event's unfinished sends (uncertain or cut off) and queue it once; returns the new
    job id, or None when the dead letter is no longer there. A send Meta confirmed stays sent."""
    return _take_out(job_id=job_id, settle="send_anyway")


def dead_letter_discard(*, job_id: str) -> bool:
    """Drop the dead letter; its unfinished sends count as done, so no redelivery sends them.
    False when it is no longer there."""
    return _take_out(job_id=job_id, settle="discard") is not None


def _take_out(*, job_id: str, settle: Settle) -> str | None:
    """Remove one dead letter and settle it, in one transaction watched on the dead-letter list and
    the event's ledger entries: of two people acting on the same letter, only one does. Returns the
    new job's id (replay, send anyway), the letter's own (discard), or None when it was gone."""
    dead = dead_letter_queue()
    job = dead.fetch_job(job_id)
    if job is None:
        return None
    letter = _as_dead_letter(job)
    if settle == "replay" and letter.uncertain:
        raise DeliveryUncertain(job_id)
    account_id, event_id = str(letter.event.get("account_id")), str(letter.event.get("event_id"))
    entries = [ledger_key(account_id=account_id, event_id=event_id, action=action) for action in EVENT_ACTIONS]
    origin = get_queue(letter.origin_queue or "default")
    client = get_redis()
    for _ in range(_WATCH_ATTEMPTS):
        with client.pipeline() as pipe:
            try:
                pipe.watch(dead.key, *entries)
                if pipe.lpos(dead.key, job_id) is None:
                    return None
                values = [_text(value) for value in pipe.mget(entries)]
                unfinished = [k for k, v in zip(entries, values, strict=True) if v and not v.startswith("done")]
                pipe.multi()
                pipe.lrem(dead.key, 1, job_id)
                pipe.delete(job.key, _waiting_key(letter.event))
                result = job_id
                if settle == "discard":
                    for entry in unfinished:
                        pipe.set(entry, DISCARDED, ex=settings.DELIVERY_LEDGER_TTL_SECONDS)
                else:
                    if settle == "send_anyway" and unfinished:
                        pipe.delete(*unfinished)
                    [new_job] = origin.enqueue_many([event_job_data(letter.event)], pipeline=pipe)
                    result = str(new_job.id)
                pipe.execute()
            except redis.WatchError:
                continue
        logger.info(
            "dead letter %s (%s %s): %s%s",
            job_id,
            letter.event.get("kind"),
            event_id,
            settle.replace("_", " "),
            f" as job {result} on {origin.name}" if result != job_id else "",
        )
        return result
    raise redis.WatchError(f"could not settle dead letter {job_id}: its event kept changing")


def dead_letter_replay_all(*, account_id: str = "", error_code: int | None = None) -> ReplayAllResult:
    """Replay every ordinary dead letter, or only those of an account and/or with a Graph error code;
    delivery-uncertain ones wait for a person."""
    replayed = left = 0
    for letter in dead_letter_list(limit=100_000, account_id=account_id, error_code=error_code):
        if letter.uncertain:
            left += 1
        elif dead_letter_replay(job_id=letter.job_id):
            replayed += 1
    return ReplayAllResult(replayed=replayed, left_uncertain=left)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None
