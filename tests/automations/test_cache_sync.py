"""`manage.py cache_sync` as a real process: writes that bypass Django's signals reach the cache in time,
and a feed whose connection drops reconnects and invalidates what it may have missed."""

import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection

from automations.cache import cache_invalidate_all
from automations.models import Automation
from automations.selectors import automation_find_match, workspace_get_active_by_instagram_id
from tests.conftest import ACCOUNT_ID
from tests.support.processes import command_env, start_manage
from webhooks.events import EventKind

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POLL_INTERVAL = 0.5
# PostgreSQL notifies at once: the bound. Polling: one interval, plus time to run the poll itself.
FRESHNESS_BOUND = 1.0 if connection.vendor == "postgresql" else POLL_INTERVAL + 0.3
CONNECTED = "invalidated every cached workspace and automation after connecting"


class Running:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, *, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in self.lines) >= count:
                return
            assert self.process.poll() is None, "".join(self.lines)
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{''.join(self.lines)}")


@pytest.fixture
def start_cache_sync() -> Iterator[object]:
    running: list[Running] = []

    def start(*, reconnect_delay: float = 0.2) -> Running:
        env = command_env(
            CACHE_SYNC_POLL_INTERVAL=str(POLL_INTERVAL),
            CACHE_SYNC_RECONNECT_DELAY=str(reconnect_delay),
            LOG_LEVEL="INFO",
        )
        handle = Running(start_manage("cache_sync", env=env))
        running.append(handle)
        handle.wait_for(CONNECTED)
        return handle

    yield start
    for handle in running:
        if handle.process.poll() is None:
            handle.process.send_signal(signal.SIGTERM)
            handle.process.wait(timeout=15)


def raw_sql(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def seconds_until(check: object, *, limit: float = 10.0) -> float:
    """How long until `check()` holds, measured; gives up (returning `limit`) after `limit` seconds."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.01)
    return limit


def dm_reply(workspace_id: int) -> str | None:
    match = automation_find_match(workspace_id=workspace_id, kind=EventKind.DM, text="price")
    return match.reply_text if match else None


@pytest.mark.skipif(connection.vendor == "mongodb", reason="raw SQL; tests/mongodb covers writes with pymongo")
def test_writes_that_bypass_signals_reach_the_cache_in_time(
    start_cache_sync: object, automations: dict[str, Automation]
) -> None:
    cache_sync = start_cache_sync()  # type: ignore[operator]
    dm = automations["dm"]
    assert dm_reply(dm.workspace_id) == "DM: prices here"  # cached from here on

    raw_sql("UPDATE automations_automation SET reply_text = %s WHERE id = %s", ["Raw SQL text", dm.pk])
    assert seconds_until(lambda: dm_reply(dm.workspace_id) == "Raw SQL text") <= FRESHNESS_BOUND

    Automation.objects.filter(pk=dm.pk).update(keywords=["cost"])
    assert seconds_until(lambda: dm_reply(dm.workspace_id) is None) <= FRESHNESS_BOUND

    raw_sql("UPDATE automations_automation SET keywords = %s WHERE id = %s", ['["price"]', dm.pk])
    assert seconds_until(lambda: dm_reply(dm.workspace_id) == "Raw SQL text") <= FRESHNESS_BOUND
    raw_sql("DELETE FROM automations_automation WHERE id = %s", [dm.pk])
    assert seconds_until(lambda: dm_reply(dm.workspace_id) is None) <= FRESHNESS_BOUND

    assert workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID) is not None
    raw_sql("UPDATE automations_workspace SET instagram_account_id = %s WHERE id = %s", ["777", dm.workspace_id])
    moved = lambda: workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID) is None  # noqa: E731
    assert seconds_until(moved) <= FRESHNESS_BOUND

    cache_sync.process.send_signal(signal.SIGTERM)
    assert cache_sync.process.wait(timeout=15) == 0
    assert "cache_sync: stopped" in "".join(cache_sync.lines)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates the listener's PostgreSQL backend")
def test_a_dropped_listener_reconnects_and_invalidates_what_it_missed(
    start_cache_sync: object, automations: dict[str, Automation]
) -> None:
    # Slow enough to reconnect that a write lands while nobody listens.
    cache_sync = start_cache_sync(reconnect_delay=1.5)  # type: ignore[operator]
    dm = automations["dm"]
    assert dm_reply(dm.workspace_id) == "DM: prices here"

    raw_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'instabot-cache-sync'",
        [],
    )
    cache_sync.wait_for("connection lost", timeout=10)
    raw_sql("UPDATE automations_automation SET reply_text = %s WHERE id = %s", ["Missed while down", dm.pk])
    assert dm_reply(dm.workspace_id) == "DM: prices here"  # the notification went nowhere

    cache_sync.wait_for(CONNECTED, count=2, timeout=15)
    assert dm_reply(dm.workspace_id) == "Missed while down"

    # And it listens again.
    raw_sql("UPDATE automations_automation SET reply_text = %s WHERE id = %s", ["After reconnect", dm.pk])
    assert seconds_until(lambda: dm_reply(dm.workspace_id) == "After reconnect") <= FRESHNESS_BOUND


def test_invalidate_all_leaves_conversation_states_alone(automations: dict[str, Automation]) -> None:
    from automations.cache import user_state_get, user_state_set

    user_state_set(workspace_id=1, instagram_user_id="u", state={"automation_id": 1})
    cache_invalidate_all()
    assert user_state_get(workspace_id=1, instagram_user_id="u") == {"automation_id": 1}
