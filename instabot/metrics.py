"""Counters and histograms that every process (web, workers, cache_sync) adds to, kept in Redis.

Recording is cheap, thread-safe and never blocks on the network: a call adds to an in-memory Counter
under a lock. A daemon thread, started on the first record of a process, writes what was gathered to
Redis hashes under Instabot's key prefix in one pipeline every `FLUSH_INTERVAL_SECONDS` (and at exit),
so counts reach the shared store within a second even when the process then goes idle. If Redis is
down the counts wait in memory for the next flush (their number is bounded by the label values).

The web process renders them for Prometheus (`/metrics`) with `RedisMetricsCollector`: every process
on every machine counts into the same hashes, so any web process shows the totals.

Storage, one hash per family (`{prefix}:metrics:<family>`, the cache's in `{prefix}:stats:cache`):
a counter's field is its label values joined by "|"; a histogram keeps per series one field per bucket
(`<labels>|le=<bound>`, not cumulative: each observation increments one field) and `<labels>|sum`.
"""

import atexit
import bisect
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import redis
from django.conf import settings
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)

# Half a second, so that a count is in Redis well within a second of the work it counts.
FLUSH_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True)
class CounterFamily:
    name: str  # the exposition name without `_total`
    documentation: str
    labels: tuple[str, ...]
    hash_name: str  # under the key prefix
    separator: str = "|"


@dataclass(frozen=True)
class HistogramFamily:
    name: str
    documentation: str
    labels: tuple[str, ...]
    hash_name: str
    buckets: tuple[float, ...]


WEBHOOK_REQUESTS = CounterFamily(
    "instabot_webhook_requests",
    "Webhook deliveries answered by the intake, by HTTP status.",
    ("status",),
    "metrics:webhook_requests",
)
WEBHOOK_REQUEST_SECONDS = HistogramFamily(
    "instabot_webhook_request_seconds",
    "Time the intake took to answer a webhook delivery.",
    (),
    "metrics:webhook_request_seconds",
    (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
EVENTS = CounterFamily(
    "instabot_events",
    "Events by kind and what became of them (replied, no_match, ignored, deferred, retried, dead_lettered, ...).",
    ("kind", "outcome"),
    "metrics:events",
)
GRAPH_REQUESTS = CounterFamily(
    "instabot_graph_requests",
    "Graph API requests by endpoint and outcome (ok, rejected, server_error, timeout, unreachable).",
    ("endpoint", "outcome"),
    "metrics:graph_requests",
)
GRAPH_REQUEST_SECONDS = HistogramFamily(
    "instabot_graph_request_seconds",
    "Time a Graph API request took, answered or not.",
    ("endpoint",),
    "metrics:graph_request_seconds",
    (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CACHE_REQUESTS = CounterFamily(
    "instabot_cache_requests",
    "Cache lookups by dataset and result (hit, miss).",
    ("dataset", "result"),
    # The hash `cache_stats` has always read (fields `<dataset>:<result>`).
    "stats:cache",
    separator=":",
)
COUNTER_FAMILIES = (WEBHOOK_REQUESTS, EVENTS, GRAPH_REQUESTS, CACHE_REQUESTS)
HISTOGRAM_FAMILIES = (WEBHOOK_REQUEST_SECONDS, GRAPH_REQUEST_SECONDS)
FAMILIES: tuple[CounterFamily | HistogramFamily, ...] = (*COUNTER_FAMILIES, *HISTOGRAM_FAMILIES)


# --- recording -------------------------------------------------------------------------------------

_lock = threading.Lock()
_flush_lock = threading.Lock()  # one write at a time, so a flush returns only once earlier counts are in
_pending_ints: Counter[tuple[str, str]] = Counter()
_pending_floats: defaultdict[tuple[str, str], float] = defaultdict(float)
_flusher: threading.Thread | None = None
_redis_failing = False


def hash_incr(*, hash_name: str, field: str, amount: int = 1) -> None:
    """Add `amount` to `field` of the hash `{prefix}:{hash_name}`, at the next flush."""
    with _lock:
        _pending_ints[(hash_name, field)] += amount
        if _flusher is None:
            _flusher_start()


def _series(values: Iterable[object], separator: str = "|") -> str:
    # A separator inside a value would shift the labels of every value after it.
    return separator.join(str(value).replace(separator, "_") for value in values)


def _observe(family: HistogramFamily, labels: tuple[object, ...], seconds: float) -> None:
    series = _series(labels)
    index = bisect.bisect_left(family.buckets, seconds)
    bound = repr(family.buckets[index]) if index < len(family.buckets) else "+Inf"
    with _lock:
        _pending_ints[(family.hash_name, f"{series}|le={bound}")] += 1
        _pending_floats[(family.hash_name, f"{series}|sum")] += seconds
        if _flusher is None:
            _flusher_start()


def webhook_request_observe(*, status: int, seconds: float) -> None:
    """One webhook delivery answered with `status` after `seconds`."""
    hash_incr(hash_name=WEBHOOK_REQUESTS.hash_name, field=str(status))
    _observe(WEBHOOK_REQUEST_SECONDS, (), seconds)


def event_outcome_incr(*, kind: str, outcome: str) -> None:
    """What became of one event of `kind` (dm, story_reply, story_mention, comment, live_comment)."""
    hash_incr(hash_name=EVENTS.hash_name, field=_series((kind, outcome)))


def graph_request_observe(*, endpoint: str, outcome: str, seconds: float) -> None:
    """One Graph API request to `endpoint` (messages, replies, ...) that ended in `outcome`."""
    hash_incr(hash_name=GRAPH_REQUESTS.hash_name, field=_series((endpoint, outcome)))
    _observe(GRAPH_REQUEST_SECONDS, (endpoint,), seconds)


def cache_request_incr(*, dataset: str, result: str) -> None:
    """One cache lookup of `dataset` that was a `result` ("hit" or "miss")."""
    hash_incr(hash_name=CACHE_REQUESTS.hash_name, field=_series((dataset, result), CACHE_REQUESTS.separator))


# --- flushing --------------------------------------------------------------------------------------


def flush() -> None:
    """Write what this process gathered; on a Redis failure the counts wait for the next flush."""
    global _redis_failing
    with _flush_lock:
        with _lock:
            ints, floats = dict(_pending_ints), dict(_pending_floats)
            _pending_ints.clear()
            _pending_floats.clear()
        if not ints and not floats:
            return
        if not settings.REDIS_ENABLED:
            return
        try:
            with get_redis().pipeline(transaction=False) as pipe:
                for (hash_name, field), amount in ints.items():
                    pipe.hincrby(key(hash_name), field, amount)
                for (hash_name, field), value in floats.items():
                    pipe.hincrbyfloat(key(hash_name), field, value)
                pipe.execute()
        except (redis.RedisError, OSError) as exc:
            with _lock:
                _pending_ints.update(ints)
                for name, value in floats.items():
                    _pending_floats[name] += value
            if not _redis_failing:
                logger.warning("metrics kept in memory: Redis unavailable (%s)", type(exc).__name__)
            _redis_failing = True
            return
        if _redis_failing:
            logger.warning("metrics written again: Redis answers")
        _redis_failing = False


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_SECONDS)
        try:
            flush()
        except Exception:  # the flusher must outlive anything one flush runs into
            logger.exception("metrics flush failed")


def _flusher_start() -> None:
    """Called with `_lock` held, once per process."""
    global _flusher
    _flusher = threading.Thread(target=_flush_forever, name="instabot-metrics-flusher", daemon=True)
    _flusher.start()


def _after_fork_in_child() -> None:
    # The parent writes its own counts; a child (RQ's forking worker, gunicorn's preload) starts empty,
    # with fresh locks and its own flusher.
    global _lock, _flush_lock, _flusher, _redis_failing
    _lock = threading.Lock()
    _flush_lock = threading.Lock()
    _pending_ints.clear()
    _pending_floats.clear()
    _flusher = None
    _redis_failing = False


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(flush)


# --- reading ---------------------------------------------------------------------------------------


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def _counter_metric(family: CounterFamily, fields: dict[str, str]) -> Metric:
    metric = CounterMetricFamily(family.name, family.documentation, labels=family.labels)
    for field, value in sorted(fields.items()):
        labels = field.split(family.separator)
        if len(labels) == len(family.labels):
            metric.add_metric(labels, float(value))
    return metric


def _histogram_metric(family: HistogramFamily, fields: dict[str, str]) -> Metric:
    metric = HistogramMetricFamily(family.name, family.documentation, labels=family.labels)
    per_series: dict[str, dict[str, float]] = defaultdict(dict)
    for field, value in fields.items():
        series, _, part = field.rpartition("|")
        per_series[series][part] = float(value)
    bounds = [repr(bound) for bound in family.buckets] + ["+Inf"]
    for series, parts in sorted(per_series.items()):
        labels = series.split("|") if family.labels else []
        if len(labels) != len(family.labels):
            continue
        cumulative, buckets = 0.0, []
        for bound in bounds:
            cumulative += parts.get(f"le={bound}", 0.0)
            buckets.append((bound, cumulative))
        metric.add_metric(labels, buckets, parts.get("sum", 0.0))
    return metric


def metric_families_read(*, client: redis.Redis) -> list[Metric]:
    """Every counter and histogram family as Redis holds it now, in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for family in FAMILIES:
            pipe.hgetall(key(family.hash_name))
        results = pipe.execute()
    metrics: list[Metric] = []
    for family, raw in zip(FAMILIES, results, strict=True):
        if isinstance(family, CounterFamily):
            metrics.append(_counter_metric(family, _decode(raw)))
        else:
            metrics.append(_histogram_metric(family, _decode(raw)))
    return metrics


class RedisMetricsCollector(Collector):
    """The counters and histograms every process wrote to Redis (this one's pending counts first), and
    `instabot_redis_up`: 0 when Redis did not answer, and the families are then left out."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("instabot_redis_up", "1 when the web process could read the counters from Redis.")
        try:
            flush()
            families = metric_families_read(client=get_redis())
        except (redis.RedisError, OSError) as exc:
            logger.warning("metrics: counters unknown, Redis unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
