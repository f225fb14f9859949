"""/healthz, /readyz and /metrics of the web process, against the real database and Redis."""

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from automations.models import Automation
from devtools.fake_graph_api import FakeGraphAPI, ScriptedAnswer, graph_error
from queueing.fallback import fallback_events_store
from tests.conftest import ACCOUNT_ID, TOKEN, run_until_settled, run_worker_burst
from tests.instabot.support import families, parse_metrics, value
from tests.support.stack import free_port
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind, InstagramEvent
from webhooks.samples import encode_payload, sample_event_payload

METRIC_FAMILIES = {
    "instabot_webhook_requests",
    "instabot_webhook_request_seconds",
    "instabot_events",
    "instabot_queue_jobs",
    "instabot_fallback_events",
    "instabot_graph_requests",
    "instabot_graph_request_seconds",
    "instabot_cache_requests",
    "instabot_workers",
}


def closed_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a hung server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in accepted:
        conn.close()


def dm(text: str, sender: str) -> bytes:
    return encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, sender_id=sender))


# --- /healthz ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_without_database_or_redis(
    client: Client, settings: Any, django_assert_num_queries: Any
) -> None:
    settings.REDIS_URL = closed_redis_url()
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")


def test_operations_endpoints_answer_any_host_over_plain_http_but_only_get(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["instabot.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="10.0.0.7:8000")  # a platform's health check, by internal address
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz/").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.post("/healthz").status_code == 405
    # Everything else keeps the Host check.
    assert client.get("/api/v1/").status_code == 400


# --- /readyz -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_is_200_when_database_and_redis_answer(client: Client, caplog: Any) -> None:
    with caplog.at_level(logging.INFO):
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert [r for r in caplog.records if r.levelno <= logging.INFO and r.name.startswith("instabot")] == []


@pytest.mark.django_db
def test_readyz_names_redis_when_nothing_listens(client: Client, settings: Any) -> None:
    settings.REDIS_URL = closed_redis_url()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ConnectionError"


@pytest.mark.django_db
def test_readyz_gives_up_on_a_hung_redis_after_its_timeout(client: Client, settings: Any, silent_server: int) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_server}/0"
    settings.READINESS_TIMEOUT_SECONDS = 0.3
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "timeout"


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_cannot_be_reached(client: Client) -> None:
    db = connections.settings["default"]
    if db["ENGINE"] == "django_mongodb_backend":
        pytest.skip("MongoDB's client pool is shared by every thread: it cannot be pointed elsewhere mid-test")
    saved = dict(db)
    # A real failure: a file that cannot be opened (SQLite), a port nothing listens on (PostgreSQL).
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["NAME"] = "/nonexistent-directory/instabot.sqlite3"
    else:
        db["PORT"] = free_port()
    try:
        response = client.get("/readyz")
    finally:
        db.update(saved)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["database"] == "OperationalError"


# --- /metrics ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_token_is_required_when_set(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-secret-123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token scrape-secret-123").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-123")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"scrape-secret-123" not in response.content

    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_metrics_count_intake_events_graph_calls_cache_and_queues(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    assert post_webhook(client, dm("price please", "s1")).status_code == 200
    assert post_webhook(client, dm("hello", "s2")).status_code == 200
    assert post_webhook(client, "comments__feed").status_code == 200
    assert post_webhook(client, dm("price", "s3"), signature="sha256=" + "0" * 64).status_code == 403
    unknown = sample_event_payload(
        kind=EventKind.STORY_MENTION, account_id="17840000000000999", text="", sender_id="s4"
    )
    assert post_webhook(client, encode_payload(unknown)).status_code == 200

    before = parse_metrics(client.get("/metrics").content.decode())
    assert value(before, "instabot_queue_jobs", queue="high", state="queued") == 2
    assert value(before, "instabot_queue_jobs", queue="default", state="queued") == 1
    assert value(before, "instabot_queue_jobs", queue="low", state="queued") == 1
    assert value(before, "instabot_webhook_requests_total", status="200") == 4
    assert value(before, "instabot_webhook_requests_total", status="403") == 1
    assert value(before, "instabot_webhook_request_seconds_count") == 5

    run_worker_burst()

    text = client.get("/metrics").content.decode()
    assert families(text) >= METRIC_FAMILIES
    after = parse_metrics(text)
    assert value(after, "instabot_events_total", kind="dm", outcome="replied") == 1
    assert value(after, "instabot_events_total", kind="dm", outcome="no_match") == 1
    assert value(after, "instabot_events_total", kind="comment", outcome="replied") == 1
    assert value(after, "instabot_events_total", kind="story_mention", outcome="ignored") == 1
    assert value(after, "instabot_graph_requests_total", endpoint="messages", outcome="ok") == 2
    assert value(after, "instabot_graph_requests_total", endpoint="replies", outcome="ok") == 1
    assert value(after, "instabot_graph_request_seconds_count", endpoint="messages") == 2
    assert value(after, "instabot_cache_requests_total", dataset="workspace", result="miss") == 2
    assert value(after, "instabot_cache_requests_total", dataset="workspace", result="hit") == 2
    assert value(after, "instabot_queue_jobs", queue="high", state="queued") == 0
    assert value(after, "instabot_fallback_events") == 0
    assert value(after, "instabot_workers") == 0  # the burst worker has unregistered
    assert TOKEN not in text


@pytest.mark.django_db
def test_metrics_count_retries_dead_letters_and_graph_failures(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 1
    settings.DELIVERY_BACKOFF_MAX_SECONDS = 1
    graph.answer_next(ScriptedAnswer(status=500, body={}), graph_error(190, "Error validating access token"))
    post_webhook(client, dm("price", "s1"))
    run_until_settled()

    samples = parse_metrics(client.get("/metrics").content.decode())
    assert value(samples, "instabot_events_total", kind="dm", outcome="retried") == 1
    assert value(samples, "instabot_events_total", kind="dm", outcome="dead_lettered") == 1
    assert value(samples, "instabot_events_total", kind="dm", outcome="replied") is None
    assert value(samples, "instabot_graph_requests_total", endpoint="messages", outcome="server_error") == 1
    assert value(samples, "instabot_graph_requests_total", endpoint="messages", outcome="rejected") == 1
    assert value(samples, "instabot_queue_jobs", queue="webhooks-dead", state="queued") == 1


@pytest.mark.django_db
def test_metrics_still_show_the_fallback_backlog_while_redis_is_down(client: Client, settings: Any) -> None:
    event = InstagramEvent(kind=EventKind.DM, account_id=ACCOUNT_ID, event_id="mid.1", sender_id="s1", text="hi")
    fallback_events_store(events=[event, dataclasses.replace(event, event_id="mid.2")])
    settings.REDIS_URL = closed_redis_url()

    response = client.get("/metrics")

    assert response.status_code == 200
    samples = parse_metrics(response.content.decode())
    assert value(samples, "instabot_redis_up") == 0
    assert value(samples, "instabot_fallback_events") == 2
    assert value(samples, "instabot_queue_jobs", queue="high", state="queued") is None
