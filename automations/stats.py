"""Counters of what happened to events, kept in one Redis hash so every process adds to the same."""

import logging

import redis
from django.conf import settings

from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)


def stats_key() -> str:
    return key("stats", "events")


def stat_incr(*, name: str, amount: int = 1) -> None:
    """Best effort: a counter must never fail the work it counts."""
    if not settings.REDIS_ENABLED:
        return
    try:
        get_redis().hincrby(stats_key(), name, amount)
    except redis.RedisError:
        logger.warning("could not count %s: Redis unavailable", name)


def stats_get() -> dict[str, int]:
    raw: dict[bytes, bytes] = get_redis().hgetall(stats_key())  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}
