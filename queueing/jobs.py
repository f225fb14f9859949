"""RQ jobs. Each takes plain data and calls one service; each is safe to run twice."""

from typing import Any

from automations.services import event_handle
from webhooks.events import InstagramEvent


def process_instagram_event(event: dict[str, Any]) -> str:
    return event_handle(event=InstagramEvent.from_payload(event))
