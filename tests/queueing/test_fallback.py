"""Redis unreachable at intake: the database keeps the events; relays hand each over exactly once."""

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI
from queueing.circuit import redis_circuit
from queueing.dead_letters import dead_letter_park
from queueing.fallback import fallback_relay
from queueing.models import FallbackEvent
from queueing.queues import QUEUE_NAMES, get_queue
from tests.conftest import ACCOUNT_ID, run_worker_burst
from tests.support.processes import command_env, run_manage, start_manage
from tests.support.webhooks import post_webhook

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def closed_circuit() -> Iterator[None]:
    redis_circuit.record_success()
    yield
    redis_circuit.record_success()


def queued_total() -> int:
    return sum(get_queue(name).count for name in QUEUE_NAMES)


@pytest.mark.django_db
def test_redis_down_keeps_events_in_the_database_then_they_are_answered_once(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    test_redis_url = settings.REDIS_URL
    settings.REDIS_URL = UNREACHABLE_REDIS
    assert post_webhook(client, "messages__batch").status_code == 200
    assert redis_circuit.is_open
    # While the circuit is open the next webhook goes straight to the database.
    assert post_webhook(client, "comments__feed").status_code == 200
    assert FallbackEvent.objects.filter(relayed_at__isnull=True).count() == 4
    assert [row.queue_name for row in FallbackEvent.objects.order_by("id")] == ["high", "high", "high", "low"]

    settings.REDIS_URL = test_redis_url  # this run's Redis (TEST_REDIS_URL), not another run's
    call_command("drain_fallback")
    call_command("drain_fallback")  # nothing is handed over twice
    assert {name: get_queue(name).count for name in QUEUE_NAMES} == {"high": 3, "default": 0, "low": 1}
    assert not FallbackEvent.objects.filter(relayed_at__isnull=True).exists()
    run_worker_burst()
    # The batch's "PRICE" DM (the only one matching of the known account), and the comment's
    # public and private replies.
    assert len(graph.calls()) == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_burst_worker_answers_events_waiting_in_the_fallback_store_before_it_exits(
    graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    test_redis_url = settings.REDIS_URL
    settings.REDIS_URL = UNREACHABLE_REDIS  # the web process's Redis call fails: the database keeps it
    assert post_webhook(Client(), "messages__text").status_code == 200
    settings.REDIS_URL = test_redis_url
    assert FallbackEvent.objects.filter(relayed_at__isnull=True).count() == 1
    assert queued_total() == 0

    # The periodic relay would wait an hour: only the relay a burst worker runs before exiting can do it.
    result = run_manage("rqworker", *QUEUE_NAMES, "--burst", env=command_env(FALLBACK_RELAY_INTERVAL_SECONDS="3600"))

    assert result.returncode == 0, result.stdout + result.stderr
    [call] = graph.calls()
    assert call.body["message"]["text"] == "DM: prices here"
    assert not FallbackEvent.objects.filter(relayed_at__isnull=True).exists()
    assert queued_total() == 0


@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_hand_each_event_over_exactly_once() -> None:
    FallbackEvent.objects.bulk_create(
        FallbackEvent(
            payload={"kind": "dm", "account_id": ACCOUNT_ID, "event_id": f"m{i}", "sender_id": "1", "text": "x"},
            queue_name="high",
            account_id=ACCOUNT_ID,
            event_id=f"m{i}",
        )
        for i in range(300)
    )
    relays = [start_manage("drain_fallback") for _ in range(2)]
    outputs = [relay.communicate(timeout=60)[0] for relay in relays]
    assert all(relay.returncode == 0 for relay in relays), outputs
    jobs = get_queue("high").get_jobs()
    assert len(jobs) == 300
    assert len({job.kwargs["event"]["event_id"] for job in jobs}) == 300
    assert not FallbackEvent.objects.filter(relayed_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_threads_relaying_concurrently_never_duplicate() -> None:
    FallbackEvent.objects.bulk_create(
        FallbackEvent(
            payload={"kind": "comment", "account_id": ACCOUNT_ID, "event_id": f"c{i}", "sender_id": "1"},
            queue_name="low",
            account_id=ACCOUNT_ID,
            event_id=f"c{i}",
        )
        for i in range(100)
    )
    results = []

    def relay() -> None:
        results.append(fallback_relay(batch_size=7))

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.relayed for r in results) == 100
    assert get_queue("low").count == 100


@pytest.mark.django_db
def test_queue_status_reports_queues_dead_letters_fallback_and_workers(capsys: pytest.CaptureFixture[str]) -> None:
    get_queue("high").enqueue("queueing.jobs.process_instagram_event", event={})
    dead_letter_park(
        event={"kind": "dm", "event_id": "m1", "account_id": ACCOUNT_ID},
        origin_queue="high",
        reason="test",
        error=None,
        attempts=1,
    )
    FallbackEvent.objects.create(payload={}, queue_name="low", account_id="1", event_id="e")
    call_command("queue_status", "--json")
    status = json.loads(capsys.readouterr().out)
    assert status["queues"]["high"]["waiting"] == 1
    assert status["dead_letters"] == {"queue": "webhooks-dead", "count": 1}
    assert status["fallback_backlog"] == 1
    assert set(status) >= {"workers", "events", "send_limits", "cache"}
    assert {row["dataset"] for row in status["cache"]} >= {"workspace", "automation"}
    call_command("queue_status")
    text = capsys.readouterr().out
    assert "dead letters (webhooks-dead): 1" in text and "fallback backlog: 1" in text
    assert "cache hit rates: no lookups yet" in text


@pytest.mark.django_db
def test_admin_lists_dead_letters_and_replays_the_selected_one(client: Client) -> None:
    User.objects.create_superuser("staff", password="pw-123456")
    client.login(username="staff", password="pw-123456")
    ids = [
        dead_letter_park(
            event={"kind": "dm", "event_id": f"m{i}", "account_id": ACCOUNT_ID, "sender_id": "1", "text": "x"},
            origin_queue="high",
            reason="Error validating access token",
            error={"code": 190, "subcode": None, "message": "expired"},
            attempts=1,
        )
        for i in range(2)
    ]
    page = client.get("/admin/dead-letters/")
    assert page.status_code == 200
    assert page.content.count(b"Error validating access token") == 2
    assert b"code 190" in page.content
    assert b"/admin/dead-letters/" in client.get("/admin/").content

    response = client.post("/admin/dead-letters/", {"job_id": [ids[0]]})
    assert response.status_code == 302
    assert get_queue("high").count == 1
    assert get_queue("webhooks-dead").get_job_ids() == [ids[1]]
    client.post("/admin/dead-letters/", {"job_id": [ids[0]]})  # already replayed: nothing happens
    assert get_queue("high").count == 1
    client.post("/admin/dead-letters/", {"replay_all": "1"})
    assert (get_queue("high").count, get_queue("webhooks-dead").count) == (2, 0)
    assert Client().get("/admin/dead-letters/").status_code == 302  # staff only


@pytest.mark.django_db
def test_without_the_replicas_it_asks_for_intake_keeps_events_in_the_database_and_each_is_answered_once(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    settings.REDIS_MIN_REPLICAS_ACK = 1  # the test Redis has no replica: WAIT never confirms
    settings.REDIS_REPLICAS_ACK_TIMEOUT_SECONDS = 0.05
    assert post_webhook(client, "messages__text").status_code == 200
    assert redis_circuit.is_open
    # Queued, but not confirmed on a replica: the database keeps it too, and the relay waits for a replica.
    assert queued_total() == 1
    assert FallbackEvent.objects.filter(relayed_at__isnull=True).count() == 1
    assert fallback_relay().relayed == 1
    assert FallbackEvent.objects.filter(relayed_at__isnull=True).count() == 1
    settings.REDIS_MIN_REPLICAS_ACK = 0
    assert fallback_relay().already_handed_over == 1
    assert not FallbackEvent.objects.filter(relayed_at__isnull=True).exists()
    run_worker_burst()
    [call] = graph.calls()  # two jobs of one event: one reply
    assert call.body["message"]["text"] == "DM: prices here"
