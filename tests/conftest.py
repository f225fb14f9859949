import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler

from automations import activity
from automations.models import Automation, Workspace
from automations.stats import stats_flush
from devtools.fake_graph_api import FakeGraphAPI
from instabot.redis import get_redis
from queueing.queues import QUEUE_NAMES, get_queue
from tests.support.webhooks import post_webhook

# The `page` fixture: the admin in headless Chromium.
pytest_plugins = ["tests.support.browser"]

ACCOUNT_ID = "17841400000000001"
TOKEN = "workspace-token-abc"


def _delete_test_keys(conn: redis.Redis) -> None:
    """Remove only what tests create: RQ's keys and Instabot's test prefix, in the test database."""
    for pattern in ("rq:*", f"{settings.INSTABOT_KEY_PREFIX}:*"):
        batch = list(conn.scan_iter(match=pattern, count=1000))
        for start in range(0, len(batch), 500):
            conn.delete(*batch[start : start + 500])


@pytest.fixture(autouse=True)
def clean_redis() -> Iterator[redis.Redis]:
    conn = get_redis()
    stats_flush()  # counts gathered by an earlier test go out before its keys are deleted
    activity_buffer_clear()
    _delete_test_keys(conn)
    yield conn
    stats_flush()
    activity_buffer_clear()
    _delete_test_keys(conn)


def activity_buffer_clear() -> None:
    """Forget what this process recorded and has not flushed: it belongs to a test that is over."""
    activity._recorder._take()


@pytest.fixture(scope="session")
def live_server(django_db_setup: None, live_server: Any) -> Any:
    """pytest-django's live server, started only once the test database exists: started before, it
    sees SQLite's ":memory:" name and shares one connection between this thread and its request
    threads, which crashes SQLite (a segmentation fault) when two of them query at once."""
    return live_server


@pytest.fixture(scope="session")
def fake_graph_server() -> Iterator[FakeGraphAPI]:
    server = FakeGraphAPI().start()
    yield server
    server.stop()


@pytest.fixture
def graph(fake_graph_server: FakeGraphAPI, settings: Any) -> FakeGraphAPI:
    """The fake Graph API, emptied, with Instabot pointed at it (its Graph and its OAuth hosts alike)."""
    fake_graph_server.reset()
    fake_graph_server.configure_app(app_id=settings.INSTAGRAM_APP_ID, app_secret=settings.INSTAGRAM_APP_SECRET)
    settings.GRAPH_API_BASE_URL = fake_graph_server.base_url
    settings.INSTAGRAM_OAUTH_BASE_URL = fake_graph_server.base_url
    return fake_graph_server


@pytest.fixture
def api(db: None) -> APIClient:
    """A REST API client authenticated as a staff user with a token."""
    user = User.objects.create_user("staff", password="pw-123456", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def workspace(db: None) -> Workspace:
    return Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=TOKEN)


@pytest.fixture
def automations(workspace: Workspace) -> dict[str, Automation]:
    return {
        "dm": Automation.objects.create(
            workspace=workspace, name="DM price", type="dm", keywords=["price"], reply_text="DM: prices here"
        ),
        "story": Automation.objects.create(
            workspace=workspace, name="Story", type="story", keywords=[], reply_text="Story: thanks!"
        ),
        "comment": Automation.objects.create(
            workspace=workspace,
            name="Comment price",
            type="comment",
            keywords=["price"],
            reply_text="Private: prices here",
            public_reply_text="Public: check your DMs",
        ),
    }


def run_worker_burst() -> None:
    """A real RQ worker on the real queues, in this process, until the queues are empty."""
    queues = [get_queue(name) for name in QUEUE_NAMES]
    SimpleWorker(queues, connection=get_redis()).work(burst=True)


@pytest.fixture
def webhook_client() -> Client:
    return Client()


def scheduled_count() -> int:
    return sum(ScheduledJobRegistry(name, connection=get_redis()).count for name in QUEUE_NAMES)


def run_until_settled(*, timeout: float = 15.0) -> None:
    """Run the worker, then RQ's scheduler for retries and deferred sends as they fall due, until
    nothing is waiting or scheduled (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    run_worker_burst()
    while scheduled_count() and time.monotonic() < deadline:
        time.sleep(0.2)
        scheduler = RQScheduler(list(QUEUE_NAMES), connection=get_redis())
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
        run_worker_burst()


__all__ = ["post_webhook", "run_worker_burst", "run_until_settled", "scheduled_count", "ACCOUNT_ID", "TOKEN"]
