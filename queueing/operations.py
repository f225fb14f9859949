"""The admin's operations page, and the periodic work every worker does for it.

Jobs per minute come from the event counters (`automations.stats`, one count per finished job): every
worker, every FALLBACK_RELAY_INTERVAL_SECONDS, records their sum once per minute under
`{prefix}:ops:jobs_total:<minute>` (the first sample of a minute wins; kept two hours), and a minute's
jobs are the difference between its sample and the next one.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.utils import utcparse
from rq.worker import Worker

from automations.activity_selectors import activity_problem_counts
from automations.activity_store import (
    activity_backlog,
    activity_drain,
    activity_drainer_present,
    activity_purge_if_due,
)
from automations.cache import DATASETS
from automations.stats import cache_stats_get, stats_get
from instabot.redis import get_redis, key
from queueing.dead_letters import dead_letter_count
from queueing.fallback import fallback_backlog_count
from queueing.queues import QUEUE_NAMES, get_queue

logger = logging.getLogger(__name__)

JOBS_SAMPLE_TTL_SECONDS = 2 * 3600
CHART_MINUTES = 60
# The most activity entries one housekeeping round moves into the database.
DRAIN_LIMIT_PER_ROUND = 50_000


# --- What workers run every few seconds -----------------------------------------------------------


def worker_housekeeping() -> None:
    """Drain the activity log into the database, purge it once a day, sample the jobs counter.

    Called by every worker beside the fallback relay; never raises (a failed task is retried next round).
    """
    for task in (_drain_activity, activity_purge_if_due, jobs_total_sample):
        try:
            task()
        except Exception:
            logger.exception("worker housekeeping: %s failed; trying again next round", task.__name__)
    close_old_connections()


def _drain_activity() -> None:
    # A process of its own (`drain_activity --forever`) keeps the database writes off the workers,
    # whose event loop would share the GIL with them; while none runs, the workers drain.
    if activity_drainer_present():
        return
    activity_drain(limit=DRAIN_LIMIT_PER_ROUND)


def _jobs_total_key(minute: int) -> str:
    return key("ops", "jobs_total", str(minute))


def _jobs_total() -> int:
    return sum(stats_get().values())


def jobs_total_sample(*, now: float | None = None) -> None:
    """Remember how many jobs had finished when this minute began (the first sample of a minute wins)."""
    minute = int((now if now is not None else time.time()) // 60)
    get_redis().set(_jobs_total_key(minute), _jobs_total(), nx=True, ex=JOBS_SAMPLE_TTL_SECONDS)


@dataclass(frozen=True)
class MinuteCount:
    start: datetime
    # None: no worker sampled the counters at the start or the end of that minute.
    jobs: int | None


def jobs_per_minute(*, minutes: int = CHART_MINUTES, now: float | None = None) -> list[MinuteCount]:
    """Jobs finished in each of the last `minutes` minutes, oldest first, the current one so far."""
    now = now if now is not None else time.time()
    current = int(now // 60)
    first = current - minutes + 1
    raw = get_redis().mget([_jobs_total_key(minute) for minute in range(first, current + 1)])
    totals: list[int | None] = [int(value) if value is not None else None for value in raw]
    totals.append(_jobs_total())  # the end of the current minute is now
    answer = []
    for index in range(minutes):
        start, end = totals[index], totals[index + 1]
        jobs = max(0, end - start) if start is not None and end is not None else None
        answer.append(MinuteCount(start=datetime.fromtimestamp((first + index) * 60, tz=UTC), jobs=jobs))
    return answer


# --- The operations page ------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueState:
    name: str
    depth: int
    # Seconds the job at the head of the queue has waited; None when the queue is empty.
    oldest_age_seconds: float | None
    started: int
    scheduled: int
    failed: int


@dataclass(frozen=True)
class WorkerState:
    name: str
    state: str
    queues: list[str]
    successful_jobs: int
    failed_jobs: int
    heartbeat_age_seconds: float | None
    alive: bool


@dataclass
class Operations:
    queues: list[QueueState]
    jobs_per_minute: list[MinuteCount]
    workers: list[WorkerState]
    dead_letters: int
    fallback_backlog: int | None
    activity_backlog: int | None
    # Failed and uncertain sends of the last 24 hours (from the activity log); None if unreadable.
    send_problems: dict[str, int] | None
    cache: list[dict[str, object]]
    events: dict[str, int]
    generated_at: datetime = field(default_factory=lambda: datetime.now(tz=UTC))

    @property
    def failed_jobs(self) -> int:
        return sum(queue.failed for queue in self.queues)

    @property
    def workers_alive(self) -> int:
        return sum(1 for worker in self.workers if worker.alive)


def queue_states(*, now: datetime | None = None) -> list[QueueState]:
    """Depth and the age of the oldest waiting job of each priority queue, in a few round trips."""
    now = now or datetime.now(tz=UTC)
    client = get_redis()
    queues = [get_queue(name) for name in QUEUE_NAMES]
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.lindex(queue.key, 0)
        replies = pipe.execute()
    depths, heads = replies[0::2], replies[1::2]
    with client.pipeline(transaction=False) as pipe:
        for head in heads:
            if head:
                pipe.hget(Job.key_for(head.decode()), "enqueued_at")
        found = iter(pipe.execute())
    enqueued = [next(found) if head else None for head in heads]
    states = []
    for queue, depth, enqueued_at in zip(queues, depths, enqueued, strict=True):
        age = None
        if enqueued_at:
            age = max(0.0, (now - utcparse(enqueued_at.decode())).total_seconds())
        states.append(
            QueueState(
                name=queue.name,
                depth=int(depth),
                oldest_age_seconds=age,
                started=StartedJobRegistry(queue.name, connection=client).count,
                scheduled=ScheduledJobRegistry(queue.name, connection=client).count,
                failed=FailedJobRegistry(queue.name, connection=client).count,
            )
        )
    return states


def worker_states(*, now: datetime | None = None) -> list[WorkerState]:
    now = now or datetime.now(tz=UTC)
    grace = timedelta(seconds=settings.WORKER_HEARTBEAT_GRACE_SECONDS)
    states = []
    for worker in Worker.all(connection=get_redis()):
        heartbeat = worker.last_heartbeat
        if heartbeat is not None and heartbeat.tzinfo is None:
            heartbeat = heartbeat.replace(tzinfo=UTC)
        age = (now - heartbeat).total_seconds() if heartbeat else None
        states.append(
            WorkerState(
                name=worker.name,
                state=str(worker.get_state()),
                queues=worker.queue_names(),
                successful_jobs=worker.successful_job_count,
                failed_jobs=worker.failed_job_count,
                heartbeat_age_seconds=age,
                alive=heartbeat is not None and now - heartbeat < grace,
            )
        )
    return sorted(states, key=lambda worker: worker.name)


def _or_none(read: Any, what: str) -> Any:
    """The database may be down while Redis is not (or the reverse): show what can be read."""
    try:
        return read()
    except Exception:
        logger.warning("operations page: %s unavailable", what)
        return None


def operations_get() -> Operations:
    """Everything the operations page shows. Redis errors propagate; database errors read as unknown."""
    return Operations(
        queues=queue_states(),
        jobs_per_minute=jobs_per_minute(),
        workers=worker_states(),
        dead_letters=dead_letter_count(),
        fallback_backlog=_or_none(fallback_backlog_count, "fallback backlog"),
        activity_backlog=activity_backlog(),
        send_problems=_or_none(
            lambda: activity_problem_counts(since=datetime.now(tz=UTC) - timedelta(days=1)), "activity log"
        ),
        cache=cache_stats_get(datasets=DATASETS),
        events=stats_get(),
    )
