"""What `queue_status` and the admin show: queues, registries, dead letters, fallback, workers."""

import logging
from typing import Any

from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker import Worker

from automations.cache import DATASETS
from automations.send_limits import account_holds_list
from automations.stats import cache_stats_get, stats_get
from instabot.redis import get_redis
from queueing.dead_letters import DEAD_LETTER_QUEUE, dead_letter_count
from queueing.fallback import fallback_backlog_count
from queueing.queues import QUEUE_NAMES, get_queue

logger = logging.getLogger(__name__)


def queue_counts(*, name: str) -> dict[str, int]:
    queue = get_queue(name)
    connection = get_redis()
    return {
        "waiting": queue.count,
        "started": StartedJobRegistry(name, connection=connection).count,
        "scheduled": ScheduledJobRegistry(name, connection=connection).count,
        "deferred": DeferredJobRegistry(name, connection=connection).count,
        "failed": FailedJobRegistry(name, connection=connection).count,
        "finished": FinishedJobRegistry(name, connection=connection).count,
    }


def workers_list() -> list[dict[str, Any]]:
    workers = []
    for worker in Worker.all(connection=get_redis()):
        job_id = worker.get_current_job_id()
        workers.append(
            {
                "name": worker.name,
                "state": str(worker.get_state()),
                "queues": worker.queue_names(),
                "current_job": job_id,
                "successful_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
                "last_heartbeat": worker.last_heartbeat.isoformat() if worker.last_heartbeat else None,
            }
        )
    return workers


def queue_status_get() -> dict[str, Any]:
    try:
        backlog: int | None = fallback_backlog_count()
    except Exception:  # any backend's failure: pymongo's errors are not Django's DatabaseError
        logger.warning("fallback backlog unknown: database unavailable")
        backlog = None
    events = stats_get()
    holds = account_holds_list()
    return {
        "queues": {name: queue_counts(name=name) for name in QUEUE_NAMES},
        "dead_letters": {"queue": DEAD_LETTER_QUEUE, "count": dead_letter_count()},
        "fallback_backlog": backlog,
        "workers": workers_list(),
        "events": events,
        "cache": cache_stats_get(datasets=DATASETS),
        "send_limits": {
            "paused_accounts": [{"account_id": h.account_id, "seconds_left": round(h.seconds_left, 1)} for h in holds],
            "deferred_total": events.get("deferred", 0),
            "scheduled_now": sum(ScheduledJobRegistry(n, connection=get_redis()).count for n in QUEUE_NAMES),
        },
    }
