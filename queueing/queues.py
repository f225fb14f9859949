"""The priority queues and which events go where (the seed's order: DM > story reply > comment)."""

from rq import Queue

from instabot.redis import get_redis
from webhooks.events import EventKind

HIGH = "high"
DEFAULT = "default"
LOW = "low"
# The order a worker listens in: strictly highest first.
QUEUE_NAMES = (HIGH, DEFAULT, LOW)

QUEUE_FOR_KIND: dict[EventKind, str] = {
    EventKind.DM: HIGH,
    EventKind.STORY_REPLY: DEFAULT,
    EventKind.STORY_MENTION: DEFAULT,
    EventKind.COMMENT: LOW,
    EventKind.LIVE_COMMENT: LOW,
}


def get_queue(name: str) -> Queue:
    """A queue on the process-wide connection pool."""
    return Queue(name, connection=get_redis())
