import logging
from collections.abc import Sequence

from django.conf import settings

from automations.services import event_handle
from queueing.services import events_enqueue
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)


def webhook_events_dispatch(*, events: Sequence[InstagramEvent]) -> None:
    """Hand accepted events to the priority queues, or answer them inline when the queue is off."""
    if not events:
        return
    if settings.USE_QUEUE_SYSTEM and settings.REDIS_ENABLED:
        events_enqueue(events=events)
        return
    for event in events:
        event_handle(event=event)
