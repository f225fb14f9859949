"""instabot.metrics: counts reach Redis by themselves within a second, survive a Redis outage, and render
as Prometheus reads them."""

import threading
import time
from typing import Any

import pytest
import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest

from instabot import metrics
from instabot.redis import key
from tests.instabot.support import parse_metrics, value
from tests.support.stack import free_port


def real_redis() -> redis.Redis:
    """A client of its own on the test Redis, whatever REDIS_URL the test points Instabot at."""
    return redis.Redis.from_url(settings.REDIS_URL)


def rendered() -> dict[Any, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.RedisMetricsCollector())
    return parse_metrics(generate_latest(registry).decode())


def test_a_count_reaches_redis_within_a_second_with_no_flush_and_no_further_work() -> None:
    client = real_redis()
    metrics.event_outcome_incr(kind="story_mention", outcome="replied")
    recorded = time.monotonic()

    while client.hget(key("metrics", "events"), "story_mention|replied") is None:
        assert time.monotonic() - recorded < 1.0, "the count did not reach Redis within a second"
        time.sleep(0.02)
    assert client.hget(key("metrics", "events"), "story_mention|replied") == b"1"


def test_counts_wait_in_memory_while_redis_is_down_and_arrive_once_after(settings: Any) -> None:
    client = real_redis()
    real_url = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    metrics.cache_request_incr(dataset="workspace", result="miss")
    metrics.graph_request_observe(endpoint="messages", outcome="timeout", seconds=10.5)
    metrics.flush()
    time.sleep(0.7)  # the background flusher tries too, and must keep the counts as well
    assert client.hgetall(key("stats", "cache")) == {}

    settings.REDIS_URL = real_url
    metrics.flush()
    assert client.hgetall(key("stats", "cache")) == {b"workspace:miss": b"1"}
    assert client.hgetall(key("metrics", "graph_requests")) == {b"messages|timeout": b"1"}
    assert float(client.hget(key("metrics", "graph_request_seconds"), "messages|sum") or 0) == pytest.approx(10.5)


def test_concurrent_records_from_many_threads_all_count() -> None:
    def record() -> None:
        for _ in range(2000):
            metrics.webhook_request_observe(status=200, seconds=0.002)

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    samples = rendered()
    assert value(samples, "instabot_webhook_requests_total", status="200") == 16000
    assert value(samples, "instabot_webhook_request_seconds_count") == 16000
    assert value(samples, "instabot_webhook_request_seconds_sum") == pytest.approx(32.0)


def test_histograms_render_cumulative_buckets_per_label() -> None:
    for seconds in (0.01, 0.03, 0.2, 0.2, 45.0):
        metrics.graph_request_observe(endpoint="messages", outcome="ok", seconds=seconds)
    metrics.graph_request_observe(endpoint="replies", outcome="rejected", seconds=0.05)

    samples = rendered()
    buckets = {
        le: value(samples, "instabot_graph_request_seconds_bucket", endpoint="messages", le=le)
        for le in ("0.025", "0.05", "0.1", "0.25", "30.0", "+Inf")
    }
    assert buckets == {"0.025": 1, "0.05": 2, "0.1": 2, "0.25": 4, "30.0": 4, "+Inf": 5}
    assert value(samples, "instabot_graph_request_seconds_count", endpoint="messages") == 5
    assert value(samples, "instabot_graph_request_seconds_sum", endpoint="messages") == pytest.approx(45.44)
    # A bound is inclusive, as Prometheus' `le` says.
    assert value(samples, "instabot_graph_request_seconds_bucket", endpoint="replies", le="0.05") == 1
    assert value(samples, "instabot_graph_requests_total", endpoint="replies", outcome="rejected") == 1
    assert value(samples, "instabot_redis_up") == 1


def test_a_label_value_holding_the_separator_cannot_shift_the_labels() -> None:
    metrics.event_outcome_incr(kind="dm|x", outcome="replied")
    assert value(rendered(), "instabot_events_total", kind="dm_x", outcome="replied") == 1
