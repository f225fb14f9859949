import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from rq import Queue, Retry
from rq.job import Job

from automations.retry_schedule import backoff_intervals
from instabot.redis import get_redis
from instabot.replication import NotReplicated, keys_replicated, replicas_required
from queueing.queues import QUEUE_FOR_KIND, get_queue
from webhooks.events import EventKind, InstagramEvent

logger = logging.getLogger(__name__)

# Nobody reads a job's return value (outcomes are counted in instabot:stats:events), so a finished job
# is deleted at once: storing its result and re-saving the job cost about a tenth of a worker's CPU per
# job. The dashboard still shows queued, started and failed jobs; failures are kept a week.
RESULT_TTL_SECONDS = 0
FAILURE_TTL_SECONDS = 7 * 24 * 3600
# By name, so that this module (imported by the jobs) does not import them back.
EVENT_JOB = "queueing.jobs.process_instagram_event"


def queue_for_payload(event: dict[str, Any]) -> str:
    return QUEUE_FOR_KIND[EventKind(event["kind"])]


def event_job_data(event: dict[str, Any]) -> Any:
    """Everything RQ needs to queue one event's job, retries for transient Graph errors included."""
    attempts = settings.DELIVERY_MAX_ATTEMPTS
    intervals = backoff_intervals(
        attempts=attempts, base=settings.DELIVERY_BACKOFF_BASE_SECONDS, cap=settings.DELIVERY_BACKOFF_MAX_SECONDS
    )
    return Queue.prepare_data(
        EVENT_JOB,
        kwargs={"event": event},
        timeout=settings.JOB_TIMEOUT,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"{event['kind']} {event['event_id']} for {event['account_id']}",
        retry=Retry(max=attempts - 1, interval=intervals) if attempts > 1 else None,
    )


def events_enqueue(*, events: Sequence[InstagramEvent]) -> list[Job]:
    """Queue each event as its own job on its priority queue, all in one Redis round trip.

    With REDIS_MIN_REPLICAS_ACK, a second round trip waits for that many replicas to hold the jobs and
    raises `NotReplicated` when they do not in time (the jobs stay queued: the caller keeps the events
    elsewhere too, and the delivery ledger answers each event once)."""
    by_queue: dict[str, list[InstagramEvent]] = defaultdict(list)
    for event in events:
        by_queue[QUEUE_FOR_KIND[event.kind]].append(event)
    jobs: list[Job] = []
    client = get_redis()
    with client.pipeline() as pipe:
        for queue_name, queue_events in by_queue.items():
            job_datas = [event_job_data(event.to_payload()) for event in queue_events]
            jobs.extend(get_queue(queue_name).enqueue_many(job_datas, pipeline=pipe))
        pipe.execute()
    replicas = replicas_required()
    # A job a worker already finished is gone from Redis too: rare (microseconds), and harmless (a copy).
    if replicas and jobs and not keys_replicated(client=client, keys=[job.key for job in jobs], replicas=replicas):
        raise NotReplicated(f"{len(jobs)} queued job(s) not confirmed on {replicas} replica(s)")
    return jobs
