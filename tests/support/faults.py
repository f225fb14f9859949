"""What the fault tests share: signed DM bodies, posting them, and counting outcomes."""

import os
from collections import Counter
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection

from devtools.fake_graph_api import FakeGraphAPI
from queueing.services import events_enqueue
from tests.conftest import ACCOUNT_ID
from tests.support.stack import wait_for
from webhooks.events import EventKind, InstagramEvent
from webhooks.samples import encode_payload, sample_event_payload
from webhooks.signatures import sign_body

# Every fault test: real processes, committed data, and once per CI run (the PostgreSQL pass).
FAULT_SUITE_MARKS = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" and not os.environ.get("FAULTS_ON_EVERY_DATABASE"),
        reason="the fault suite runs once, on PostgreSQL (FAULTS_ON_EVERY_DATABASE=1 runs it on any database)",
    ),
]


def dm_body(i: int, *, prefix: str = "m") -> bytes:
    return encode_payload(
        sample_event_payload(
            kind=EventKind.DM, account_id=ACCOUNT_ID, text="hi", sender_id=f"u{i}", event_id=f"{prefix}.{i}"
        )
    )


def enqueue_dms(count: int, *, prefix: str = "m", first: int = 0) -> set[str]:
    """Queue `count` DM jobs as intake would (senders u<first>, u<first + 1>, ...); returns the senders."""
    events = [
        InstagramEvent(kind=EventKind.DM, account_id=ACCOUNT_ID, event_id=f"{prefix}.{i}", sender_id=f"u{i}", text="hi")
        for i in range(first, first + count)
    ]
    for start in range(0, count, 500):
        events_enqueue(events=events[start : start + 500])
    return {event.sender_id for event in events}


def unfinished_jobs() -> int:
    """Jobs waiting, running or scheduled on any priority queue of the test's Redis."""
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from queueing.queues import QUEUE_NAMES, get_queue

    total = 0
    for name in QUEUE_NAMES:
        queue = get_queue(name)
        total += queue.count + StartedJobRegistry(name, connection=queue.connection).count
        total += ScheduledJobRegistry(name, connection=queue.connection).count
    return total


def parked_senders() -> set[str]:
    from queueing.dead_letters import dead_letter_list

    return {str(letter.event["sender_id"]) for letter in dead_letter_list(limit=100_000)}


def settled(graph: FakeGraphAPI, expected: set[str]) -> bool:
    """Every expected sender answered or parked, and no job left anywhere."""
    answered = {c.body["recipient"]["id"] for c in graph.calls()}
    return answered | parked_senders() >= expected and unfinished_jobs() == 0


def fallback_backlog() -> int:
    from queueing.fallback import fallback_backlog_count

    return fallback_backlog_count()


# After the last Graph call, how long nothing more must arrive before a run counts as over: anything
# doubled comes from a job that is still queued, running or scheduled, or from the fallback store,
# so this only covers a send already on its way.
QUIET_SECONDS = 1.0


def wait_until_settled(graph: FakeGraphAPI, expected: set[str], *, timeout: float) -> bool:
    """Wait, at most `timeout` seconds, until every expected sender is answered or parked, no job is
    queued, running or scheduled, no event waits in the fallback store, and the fake Graph API has
    seen no request for QUIET_SECONDS."""
    return wait_for(
        lambda: settled(graph, expected) and fallback_backlog() == 0 and graph.quiet_for(QUIET_SECONDS),
        timeout=timeout,
        interval=0.2,
    )


def dm_outcomes(outcome: str) -> int:
    """How many DM jobs ended in `outcome` (`instabot_events_total`), in every process, once flushed."""
    from instabot.metrics import EVENTS
    from instabot.redis import get_redis, key

    value = get_redis().hget(key(EVENTS.hash_name), f"dm|{outcome}")
    return int(value or 0)


def post(url: str, body: bytes) -> int:
    signature = sign_body(body=body, secret=settings.INSTAGRAM_APP_SECRET)
    response = requests.post(
        url + "/api/webhooks/instagram",
        data=body,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        timeout=10,
    )
    return response.status_code


def report(name: str, *, sent: int, graph: FakeGraphAPI, expected: set[str], **extra: Any) -> tuple[int, int]:
    """Print `FAULT <name>: ...` with what was counted; returns (lost, doubled).

    Lost: neither answered nor parked. Doubled: answers beyond the first, per recipient."""
    per_recipient = Counter(call.body["recipient"]["id"] for call in graph.calls())
    answered = sum(1 for r in expected if per_recipient[r] >= 1)
    parked = parked_senders()
    doubled = sum(count - 1 for count in per_recipient.values() if count > 1)
    lost = sum(1 for r in expected if per_recipient[r] == 0 and r not in parked)
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    print(
        f"\nFAULT {name}: sent={sent} answered={answered} parked={len(parked & expected)} lost={lost} "
        f"doubled={doubled} {details}".rstrip()
    )
    return lost, doubled
