import logging
from collections.abc import Sequence

import redis
from django.conf import settings

from automations.services import event_handle
from queueing.circuit import redis_circuit
from queueing.fallback import fallback_events_store
from queueing.services import events_enqueue
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)


class IntakeUnavailable(Exception):
    """Neither a queue nor the fallback store took the events, and inline processing failed."""


def webhook_events_dispatch(*, events: Sequence[InstagramEvent]) -> None:
    """Keep every accepted event somewhere: the priority queues, else the database, else answer now.

    Raises `IntakeUnavailable` when none of that worked, so the caller can make Meta deliver again.
    """
    if not events:
        return
    if settings.USE_QUEUE_SYSTEM and settings.REDIS_ENABLED:
        if redis_circuit.allow():
            try:
                events_enqueue(events=events)
                redis_circuit.record_success()
                return
            except redis.RedisError as exc:
                redis_circuit.record_failure(open_seconds=settings.REDIS_CIRCUIT_OPEN_SECONDS)
                logger.warning("Redis unavailable for intake (%s): using the database fallback", type(exc).__name__)
        try:
            fallback_events_store(events=events)
            return
        except Exception as exc:  # any backend's failure: pymongo's errors are not Django's DatabaseError
            logger.error("database fallback unavailable (%s): processing inline", type(exc).__name__)
    _process_inline(events)


def _process_inline(events: Sequence[InstagramEvent]) -> None:
    failed = 0
    for event in events:
        try:
            # Redis may be down: send even if the ledger cannot be consulted (nothing else could remember).
            event_handle(event=event, unguarded_sends=True)
        except Exception:
            failed += 1
            logger.exception("inline processing of %s %s failed", event.kind, event.event_id)
    if failed:
        raise IntakeUnavailable(f"{failed} of {len(events)} event(s) could not be processed")
