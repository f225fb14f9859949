"""Counters kept in Redis hashes so that every process adds to the same: what happened to events, and
hits and misses of each cached dataset (Redis' own keyspace counters also count queue traffic).

Counts are gathered in the process and written by `instabot.metrics`' background flusher within a
second, even when the process then goes idle (and at exit, and before this process reads them): a
round trip per count would be a large share of a job's cost.
"""

from django.conf import settings

from instabot import metrics
from instabot.redis import get_redis, key

EVENTS_HASH = "stats:events"


def stats_key() -> str:
    return key(EVENTS_HASH)


def cache_stats_key() -> str:
    return key(metrics.CACHE_REQUESTS.hash_name)


def stats_flush() -> None:
    """Write the counts gathered in this process now; kept for the next flush if Redis is down."""
    metrics.flush()


def _hgetall(hash_key: str) -> dict[str, int]:
    stats_flush()
    raw: dict[bytes, bytes] = get_redis().hgetall(hash_key)  # type: ignore[assignment]
    return {k.decode(): int(v) for k, v in raw.items()}


def stat_incr(*, name: str, amount: int = 1) -> None:
    metrics.hash_incr(hash_name=EVENTS_HASH, field=name, amount=amount)


def stats_get() -> dict[str, int]:
    return _hgetall(stats_key())


def cache_stat_incr(*, dataset: str, outcome: str) -> None:
    """`outcome` is "hit" or "miss"; counted under the field `<dataset>:<outcome>` (also `/metrics`'
    `instabot_cache_requests_total`)."""
    metrics.cache_request_incr(dataset=dataset, result=outcome)


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
