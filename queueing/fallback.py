"""The database fallback store: webhooks accepted while Redis was down, relayed once it is back."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from django.db import close_old_connections
from django.utils import timezone

from instabot.redis import get_redis, key
from instabot.replication import keys_replicated, replicas_required
from queueing.models import FallbackEvent
from queueing.queues import QUEUE_FOR_KIND, get_queue
from queueing.services import event_job_data
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)

# Remembers which fallback rows were queued, so that two relays never queue the same one twice.
HANDOVER_TTL_SECONDS = 30 * 24 * 3600


def fallback_events_store(*, events: Sequence[InstagramEvent]) -> int:
    rows = [
        FallbackEvent(
            payload=event.to_payload(),
            queue_name=QUEUE_FOR_KIND[event.kind],
            account_id=event.account_id,
            event_id=event.event_id,
        )
        for event in events
    ]
    FallbackEvent.objects.bulk_create(rows)
    logger.warning("Redis unavailable: %d event(s) kept in the database fallback store", len(rows))
    return len(rows)


def fallback_backlog_count() -> int:
    return FallbackEvent.objects.filter(relayed_at__isnull=True).count()


def handover_key(*, fallback_id: int) -> str:
    return key("fallback", "handed-over", str(fallback_id))


@dataclass
class RelayResult:
    relayed: int = 0
    already_handed_over: int = 0


def fallback_relay(*, batch_size: int = 500) -> RelayResult:
    """Move waiting fallback events into their priority queues, each exactly once.

    The queueing and a handover marker are one Redis transaction, watched on the marker, so of
    two relays racing for a row only one queues it; the database row is marked afterwards, and a
    row whose marker exists is only marked.
    """
    result = RelayResult()
    client = get_redis()
    replicas = replicas_required()
    while True:
        batch = list(FallbackEvent.objects.filter(relayed_at__isnull=True).order_by("id")[:batch_size])
        if not batch:
            return result
        handed_over: list[tuple[FallbackEvent, str]] = []
        for row in batch:
            marker = handover_key(fallback_id=row.pk)
            job_id = _hand_over(client, row, marker)
            if job_id is None:
                result.already_handed_over += 1
                stored = client.get(marker)
                job_id = stored.decode() if isinstance(stored, bytes) else ""
            else:
                result.relayed += 1
            handed_over.append((row, job_id))
        # A row is marked relayed only once its job is as safe as intake's (REDIS_MIN_REPLICAS_ACK): the
        # marker and the job went in one transaction, so replicas holding the marker hold the job.
        markers = [handover_key(fallback_id=row.pk) for row, _ in handed_over]
        if replicas and not keys_replicated(client=client, keys=markers, replicas=replicas):
            logger.warning("relayed fallback events are not on %d replica(s) yet: they stay waiting", replicas)
            return result
        for row, job_id in handed_over:
            FallbackEvent.objects.filter(pk=row.pk, relayed_at__isnull=True).update(
                relayed_at=timezone.now(), job_id=job_id
            )
        if len(batch) < batch_size:
            return result


def _hand_over(client: redis.Redis, row: FallbackEvent, marker: str) -> str | None:
    queue = get_queue(row.queue_name)
    with client.pipeline() as pipe:
        try:
            pipe.watch(marker)
            if pipe.exists(marker):
                return None
            pipe.multi()
            [job] = queue.enqueue_many([event_job_data(row.payload)], pipeline=pipe)
            pipe.set(marker, str(job.id), ex=HANDOVER_TTL_SECONDS)
            pipe.execute()
            return str(job.id)
        except redis.WatchError:
            return None


def fallback_relay_safely() -> RelayResult | None:
    """For the worker's background relay: never raises; a failed round is retried next time."""
    try:
        result = fallback_relay()
        if result.relayed:
            logger.info("relayed %d fallback event(s) into the queues", result.relayed)
        return result
    except Exception:
        logger.exception("fallback relay round failed; trying again later")
        return None
    finally:
        try:
            close_old_connections()
        except Exception:  # e.g. MongoDB's backend touches the database to check its connection
            logger.warning("could not close database connections after a relay round", exc_info=True)
