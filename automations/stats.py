"""Counters kept in Redis hashes so that every process adds to the same: what happened to events, and
hits and misses of each cached dataset (Redis' own keyspace counters also count queue traffic).

Counts are gathered in the process and written in one pipeline at most every `FLUSH_INTERVAL_SECONDS`
(and when a worker stops, and before this process reads them): a round trip per count would be a
large share of a job's cost.
"""

import logging
import threading
import time
from collections import Counter

import redis
from django.conf import settings

from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)


def stats_key() -> str:
    return key("stats", "events")


def cache_stats_key() -> str:
    return key("stats", "cache")


FLUSH_INTERVAL_SECONDS = 1.0

_lock = threading.Lock()
_pending: Counter[tuple[str, str]] = Counter()
_last_flush = time.monotonic()


def _hincr(*, hash_key: str, name: str, amount: int) -> None:
    """Best effort: a counter must never fail the work it counts."""
    if not settings.REDIS_ENABLED:
        return
    global _last_flush
    with _lock:
        _pending[(hash_key, name)] += amount
        if time.monotonic() - _last_flush < FLUSH_INTERVAL_SECONDS:
            return
        _last_flush = time.monotonic()
    stats_flush()


def stats_flush() -> None:
    """Write the counts gathered in this process; kept for the next flush if Redis is down."""
    with _lock:
        counts = dict(_pending)
        _pending.clear()
    if not counts or not settings.REDIS_ENABLED:
        return
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            for (hash_key, name), amount in counts.items():
                pipe.hincrby(hash_key, name, amount)
            pipe.execute()
    except redis.RedisError:
        logger.warning("could not write %d counter(s): Redis unavailable", len(counts))
        with _lock:
            _pending.update(counts)


def _hgetall(hash_key: str) -> dict[str, int]:
    stats_flush()
    raw: dict[bytes, bytes] = get_redis().hgetall(hash_key)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}


def stat_incr(*, name: str, amount: int = 1) -> None:
    _hincr(hash_key=stats_key(), name=name, amount=amount)


def stats_get() -> dict[str, int]:
    return _hgetall(stats_key())


def cache_stat_incr(*, dataset: str, outcome: str) -> None:
    """`outcome` is "hit" or "miss"; counted under the field `<dataset>:<outcome>`."""
    _hincr(hash_key=cache_stats_key(), name=f"{dataset}:{outcome}", amount=1)


def cache_stats_get(*, datasets: tuple[str, ...]) -> list[dict[str, object]]:
    """One row per dataset: hits, misses and the hit rate in percent (None before the first lookup)."""
    counts = _hgetall(cache_stats_key()) if settings.REDIS_ENABLED else {}
    rows: list[dict[str, object]] = []
    for dataset in datasets:
        hits, misses = counts.get(f"{dataset}:hit", 0), counts.get(f"{dataset}:miss", 0)
        total = hits + misses
        rate = round(100 * hits / total, 1) if total else None
        rows.append({"dataset": dataset, "hits": hits, "misses": misses, "hit_rate": rate})
    return rows


def cache_stats_reset() -> None:
    stats_flush()
    get_redis().delete(cache_stats_key())
