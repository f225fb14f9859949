import random

import pytest

from automations.graph import GraphAPIConnectionError, GraphAPIError, GraphAPITimeoutError, regain_access_seconds
from automations.graph_errors import ErrorClass, classify_graph_error
from automations.retry_schedule import backoff_intervals


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (GraphAPIConnectionError("refused"), ErrorClass.TRANSIENT),
        (GraphAPITimeoutError("read timeout"), ErrorClass.UNCERTAIN),
        (GraphAPIError("HTTP 502", status=502), ErrorClass.TRANSIENT),
        (GraphAPIError("x", status=500, code=1), ErrorClass.TRANSIENT),
        (GraphAPIError("x", status=500, code=2), ErrorClass.TRANSIENT),
        (GraphAPIError("x", status=400, code=1, subcode=1357046), ErrorClass.SENT),
        (GraphAPIError("x", status=400, code=10, subcode=2534025), ErrorClass.SENT),
        (GraphAPIError("x", status=400, code=4), ErrorClass.THROTTLED),
        (GraphAPIError("x", status=400, code=17), ErrorClass.THROTTLED),
        (GraphAPIError("x", status=400, code=32), ErrorClass.THROTTLED),
        (GraphAPIError("x", status=400, code=613), ErrorClass.THROTTLED),
        (GraphAPIError("x", status=400, code=80002), ErrorClass.THROTTLED),
        (GraphAPIError("HTTP 429", status=429), ErrorClass.THROTTLED),
        (GraphAPIError("x", status=400, code=190), ErrorClass.TERMINAL),
        (GraphAPIError("x", status=400, code=10, subcode=2018278), ErrorClass.TERMINAL),
        (GraphAPIError("x", status=400, code=100, subcode=2018001), ErrorClass.TERMINAL),
        (GraphAPIError("x", status=400, code=551), ErrorClass.TERMINAL),
        (GraphAPIError("x", status=400, code=999, is_transient=True), ErrorClass.TRANSIENT),
        (GraphAPIError("HTTP 404", status=404), ErrorClass.TERMINAL),
    ],
)
def test_graph_errors_are_classified(error: GraphAPIError, expected: ErrorClass) -> None:
    assert classify_graph_error(error) == expected


def test_backoff_grows_exponentially_with_bounded_jitter_and_a_cap() -> None:
    intervals = backoff_intervals(attempts=6, base=2, cap=20, rng=random.Random(7))
    assert len(intervals) == 5
    for attempt, interval in enumerate(intervals):
        nominal = min(20, 2 * 2**attempt)
        assert nominal <= interval <= nominal * 1.5 + 1
    assert backoff_intervals(attempts=1, base=2, cap=20) == []


def test_jitter_spreads_retries_of_different_jobs() -> None:
    schedules = {tuple(backoff_intervals(attempts=4, base=10, cap=600)) for _ in range(20)}
    assert len(schedules) > 1


def test_regain_access_is_read_from_the_usage_header_in_seconds() -> None:
    header = '{"1784": [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 3}]}'
    assert regain_access_seconds({"X-Business-Use-Case-Usage": header}) == 180
    assert regain_access_seconds({"X-Business-Use-Case-Usage": "not json"}) == 0
    assert regain_access_seconds({}) == 0
