"""What `/metrics` reads live at each scrape: queue depths, the fallback backlog and the workers alive.

All of it is read without side effects (no registry cleanup, which RQ's `.count` would run): queue
lengths and registry sizes in one Redis round trip, the workers in one more, the backlog in one query.
"""

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.worker import Worker

from instabot.redis import get_redis
from queueing.dead_letters import DEAD_LETTER_QUEUE
from queueing.fallback import fallback_backlog_count
from queueing.queues import QUEUE_NAMES, get_queue

logger = logging.getLogger(__name__)

METRIC_QUEUES = (*QUEUE_NAMES, DEAD_LETTER_QUEUE)
REGISTRIES = {"started": StartedJobRegistry, "scheduled": ScheduledJobRegistry, "failed": FailedJobRegistry}


def queue_jobs_read(*, client: redis.Redis) -> dict[tuple[str, str], int]:
    """(queue, state) -> jobs, for states queued, started, scheduled and failed."""
    cells: list[tuple[str, str]] = []
    with client.pipeline(transaction=False) as pipe:
        for name in METRIC_QUEUES:
            pipe.llen(get_queue(name).key)
            cells.append((name, "queued"))
            for state, registry in REGISTRIES.items():
                pipe.zcard(registry(name, connection=client).key)
                cells.append((name, state))
        counts = pipe.execute()
    return {cell: int(count) for cell, count in zip(cells, counts, strict=True)}


def workers_alive_count(*, client: redis.Redis) -> int:
    """Registered RQ workers whose entry has not expired (a killed worker's lapses with its heartbeat)."""
    worker_keys = Worker.all_keys(connection=client)
    if not worker_keys:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for worker_key in worker_keys:
            pipe.exists(worker_key)
        return sum(1 for exists in pipe.execute() if exists)


class QueueCollector(Collector):
    """`instabot_queue_jobs{queue,state}`, `instabot_workers` and `instabot_fallback_events`.

    A source that does not answer leaves its family without samples (and says so at WARNING), so the
    others still reach Prometheus: during a Redis outage the fallback backlog is what matters.
    """

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "instabot_queue_jobs",
            "Jobs per queue and state (queued, started, scheduled, failed); webhooks-dead holds dead letters.",
            labels=["queue", "state"],
        )
        workers = GaugeMetricFamily("instabot_workers", "RQ workers alive (registered, heartbeat not expired).")
        try:
            client = get_redis()
            for (queue, state), count in queue_jobs_read(client=client).items():
                jobs.add_metric([queue, state], count)
            workers.add_metric([], workers_alive_count(client=client))
        except (redis.RedisError, OSError) as exc:
            logger.warning("metrics: queues unknown, Redis unavailable (%s)", type(exc).__name__)
        yield jobs
        yield workers

        backlog = GaugeMetricFamily(
            "instabot_fallback_events", "Webhook events waiting in the database fallback store for a queue."
        )
        try:
            backlog.add_metric([], fallback_backlog_count())
        except Exception as exc:  # any backend's failure: pymongo's errors are not Django's DatabaseError
            logger.warning("metrics: fallback backlog unknown, database unavailable (%s)", type(exc).__name__)
        yield backlog
