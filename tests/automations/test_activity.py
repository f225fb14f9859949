"""The activity log and misses: recorded by the job, flushed to Redis, drained into the database."""

import json
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from automations import activity_store
from automations.activity import activity_flush, activity_record, miss_record
from automations.activity_selectors import automation_firing_counts
from automations.activity_store import (
    DRAIN_LEASE_SECONDS,
    StoreResult,
    activity_backlog,
    activity_drain,
    activity_drainer_announce,
    activity_drainer_present,
    activity_drainer_withdraw,
    activity_entries_store,
    activity_purge,
    activity_purge_if_due,
    entries_key,
)
from automations.models import ActivityEntry, Automation, AutomationDailyCount, Miss, Workspace
from devtools.fake_graph_api import FakeGraphAPI, graph_error
from instabot.redis import get_redis
from queueing.operations import worker_housekeeping
from tests.conftest import ACCOUNT_ID, run_worker_burst
from tests.support.processes import command_env, start_manage
from tests.support.stack import wait_for
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = pytest.mark.django_db


def dm(text: str, *, mid: str | None = None, sender: str = "5550001") -> bytes:
    return encode_payload(
        sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, sender_id=sender, event_id=mid)
    )


def answer(client: Client, body: bytes | str) -> None:
    assert post_webhook(client, body).status_code == 200
    run_worker_burst()


def drain() -> StoreResult:
    activity_flush()
    return activity_drain()


def test_an_answered_dm_is_logged_with_its_automation_message_id_and_latency(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    before = time.time()
    answer(client, dm("price please", mid="mid.logged", sender="5550001"))
    assert drain().activities == 1
    [row] = ActivityEntry.objects.all()
    assert (row.workspace_id, row.automation_id) == (automations["dm"].workspace_id, automations["dm"].pk)
    assert (row.kind, row.event_id, row.action, row.recipient, row.status) == (
        "dm",
        "mid.logged",
        "dm",
        "5550001",
        "sent",
    )
    [call] = graph.calls()
    assert row.graph_message_id.startswith("m_fake_")
    assert row.received_at is not None and before <= row.received_at.timestamp() <= row.sent_at.timestamp()
    # (MongoDB keeps times to the millisecond; the latency was measured before that.)
    assert abs(row.latency_ms - (row.sent_at - row.received_at).total_seconds() * 1000) <= 1
    assert row.latency_ms < 10_000


def test_a_redelivery_is_logged_as_skipped_duplicate(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    body = dm("price", mid="mid.twice")
    answer(client, body)
    answer(client, body)
    drain()
    assert sorted(ActivityEntry.objects.values_list("status", flat=True)) == ["sent", "skipped_duplicate"]
    assert len(graph.calls()) == 1


def test_a_comment_logs_both_replies_and_fires_the_automation_once(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    answer(client, "comments__feed")
    drain()
    rows = {row.action: row for row in ActivityEntry.objects.all()}
    assert set(rows) == {"public_reply", "private_reply"}
    assert {row.status for row in rows.values()} == {"sent"}
    assert rows["public_reply"].graph_message_id.startswith("1799")
    assert {row.recipient for row in rows.values()} == {"4234567890123456"}
    counts = automation_firing_counts(automation_ids=[automations["comment"].pk])[automations["comment"].pk]
    assert (counts.today, counts.last_7_days, counts.total) == (1, 1, 1)
    assert counts.last_fired_at == rows["private_reply"].sent_at


def test_a_refused_send_is_logged_as_failed_with_metas_reason(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.answer_next(graph_error(551, "This person isn't available right now."))
    answer(client, dm("price", mid="mid.refused"))
    drain()
    [row] = ActivityEntry.objects.all()
    assert row.status == "failed"
    assert "551" in row.detail and "terminal" in row.detail
    assert row.graph_message_id == ""
    assert automation_firing_counts(automation_ids=[automations["dm"].pk]) == {}


def test_no_answer_in_time_is_logged_as_uncertain(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: Any
) -> None:
    settings.GRAPH_API_READ_TIMEOUT = 0.3
    graph.state.latency_s = 0.8
    answer(client, dm("price", mid="mid.slow"))
    graph.state.latency_s = 0
    assert wait_for(lambda: len(graph.calls()) == 1, timeout=5)  # Meta did act on it, late
    drain()
    assert list(ActivityEntry.objects.values_list("status", flat=True)) == ["uncertain"]


def test_an_unmatched_message_is_a_miss_and_logs_no_send(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    answer(client, dm("do you ship to Lisbon?", mid="mid.miss", sender="5550009"))
    result = drain()
    assert (result.activities, result.misses) == (0, 1)
    [miss] = Miss.objects.all()
    assert (miss.workspace_id, miss.kind, miss.event_id, miss.sender, miss.text) == (
        automations["dm"].workspace_id,
        "dm",
        "mid.miss",
        "5550009",
        "do you ship to Lisbon?",
    )
    assert abs(miss.received_at.timestamp() - time.time()) < 60
    assert graph.calls() == []


def test_the_flusher_thread_writes_to_redis_within_a_second_or_so(workspace: Workspace) -> None:
    miss_record(workspace_id=workspace.pk, kind="dm", event_id="mid.bg", sender="1", text="hi", received_at=1.0)
    assert wait_for(lambda: get_redis().llen(entries_key()) == 1, timeout=5)
    [raw] = get_redis().lrange(entries_key(), 0, -1)
    entry = json.loads(raw)
    assert entry["type"] == "miss" and entry["event_id"] == "mid.bg" and len(entry["record_id"]) == 32


def test_without_redis_the_flush_writes_to_the_database(workspace: Workspace, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens there
    miss_record(workspace_id=workspace.pk, kind="dm", event_id="mid.noredis", sender="1", text="hi")
    assert activity_flush() == 1
    assert list(Miss.objects.values_list("event_id", flat=True)) == ["mid.noredis"]


def test_recording_can_be_switched_off(workspace: Workspace, settings: Any) -> None:
    settings.ACTIVITY_LOG_ENABLED = False
    miss_record(workspace_id=workspace.pk, kind="dm", event_id="mid.off", sender="1", text="hi")
    assert activity_flush() == 0
    assert get_redis().llen(entries_key()) == 0


def record_sends(workspace: Workspace, automation: Automation | None, count: int, *, sent_at: float) -> None:
    for index in range(count):
        activity_record(
            workspace_id=workspace.pk,
            automation_id=automation.pk if automation else None,
            kind="dm",
            event_id=f"mid.{sent_at}.{index}",
            action="dm",
            recipient="1",
            status="sent",
            graph_message_id=f"m_{index}",
            received_at=sent_at - 0.25,
            sent_at=sent_at,
        )


@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_store_every_entry_exactly_once(automations: dict[str, Automation]) -> None:
    automation = automations["dm"]
    record_sends(automation.workspace, automation, 3000, sent_at=time.time())
    activity_flush()
    results: list[StoreResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(activity_drain())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # this thread's own; PostgreSQL cannot drop a database still in use

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(result.activities for result in results) == 3000
    assert ActivityEntry.objects.count() == 3000
    assert ActivityEntry.objects.values("record_id").distinct().count() == 3000
    assert automation_firing_counts(automation_ids=[automation.pk])[automation.pk].today == 3000
    assert activity_backlog() == 0


def test_a_drain_whose_database_write_fails_puts_its_batch_back(
    automations: dict[str, Automation], monkeypatch: pytest.MonkeyPatch
) -> None:
    record_sends(automations["dm"].workspace, automations["dm"], 5, sent_at=time.time())
    activity_flush()

    def refuse(*, entries: list[dict[str, Any]]) -> StoreResult:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(activity_store, "activity_entries_store", refuse)
    with pytest.raises(RuntimeError):
        activity_drain()
    assert activity_backlog() == 5
    monkeypatch.undo()
    assert activity_drain().activities == 5


def test_the_batch_of_a_drain_that_died_is_put_back_after_its_lease(automations: dict[str, Automation]) -> None:
    record_sends(automations["dm"].workspace, automations["dm"], 4, sent_at=time.time())
    activity_flush()
    client = get_redis()
    keys = [entries_key(), activity_store._draining_key("dead"), activity_store._draining_index_key()]
    taken = client.eval(activity_store._TAKE_LUA, 3, *keys, 100, time.time(), "dead")
    assert len(taken) == 4 and client.llen(entries_key()) == 0  # a drain took them, then was killed
    assert activity_drain().activities == 0  # still within its lease: not taken from it
    client.zadd(keys[2], {"dead": time.time() - DRAIN_LEASE_SECONDS - 1})
    assert activity_drain().activities == 4
    assert activity_backlog() == 0


def test_entries_stored_twice_are_stored_and_counted_once(automations: dict[str, Automation]) -> None:
    automation = automations["dm"]
    record_sends(automation.workspace, automation, 2, sent_at=time.time())
    activity_flush()
    entries = [json.loads(raw) for raw in get_redis().lrange(entries_key(), 0, -1)]
    first = activity_entries_store(entries=entries)
    second = activity_entries_store(entries=entries)
    assert (first.activities, second.activities, second.skipped) == (2, 0, 2)
    assert ActivityEntry.objects.count() == 2
    assert AutomationDailyCount.objects.get(automation=automation).fired == 2


def test_entries_of_deleted_automations_and_workspaces(automations: dict[str, Automation]) -> None:
    automation = automations["dm"]
    other = Workspace.objects.create(name="Gone", instagram_account_id="999", access_token="t")
    record_sends(automation.workspace, automation, 1, sent_at=time.time())
    record_sends(other, None, 1, sent_at=time.time())
    activity_flush()
    automation.delete()
    other.delete()
    result = activity_drain()
    assert (result.activities, result.skipped) == (1, 1)
    [row] = ActivityEntry.objects.all()
    assert row.automation_id is None and row.workspace_id == automation.workspace_id


def test_fired_counts_today_seven_days_total_and_last(automations: dict[str, Automation]) -> None:
    automation = automations["dm"]
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for days_ago, fired in [(0, 2), (1, 3), (6, 4), (7, 5), (40, 6)]:
        AutomationDailyCount.objects.create(
            automation=automation,
            day=(now - timedelta(days=days_ago)).date(),
            fired=fired,
            last_fired_at=now - timedelta(days=days_ago, hours=1),
        )
    counts = automation_firing_counts(automation_ids=[automation.pk, automations["story"].pk], now=now)
    assert set(counts) == {automation.pk}
    mine = counts[automation.pk]
    assert (mine.today, mine.last_7_days, mine.total) == (2, 9, 20)
    assert mine.last_fired_at == now - timedelta(hours=1)


def test_sends_on_two_days_count_on_their_own_days(automations: dict[str, Automation]) -> None:
    automation = automations["dm"]
    today = datetime.now(tz=UTC).replace(hour=12)
    record_sends(automation.workspace, automation, 2, sent_at=(today - timedelta(days=1)).timestamp())
    record_sends(automation.workspace, automation, 3, sent_at=today.timestamp())
    drain()
    counts = automation_firing_counts(automation_ids=[automation.pk])[automation.pk]
    assert (counts.today, counts.last_7_days, counts.total) == (3, 5, 5)


def test_rows_past_retention_are_purged_once_a_day_and_counts_stay(
    automations: dict[str, Automation], settings: Any
) -> None:
    settings.ACTIVITY_RETENTION_DAYS = 30
    automation = automations["dm"]
    old = time.time() - 31 * 86400
    record_sends(automation.workspace, automation, 2, sent_at=old)
    record_sends(automation.workspace, automation, 1, sent_at=time.time())
    miss_record(workspace_id=automation.workspace_id, kind="dm", event_id="old", sender="1", text="x", received_at=old)
    miss_record(workspace_id=automation.workspace_id, kind="dm", event_id="new", sender="1", text="x")
    drain()
    purged = activity_purge_if_due()
    assert purged is not None and (purged.activities, purged.misses) == (2, 1)
    assert ActivityEntry.objects.count() == 1
    assert list(Miss.objects.values_list("event_id", flat=True)) == ["new"]
    assert automation_firing_counts(automation_ids=[automation.pk])[automation.pk].total == 3
    assert activity_purge_if_due() is None  # once a day, whichever worker asks first
    assert activity_purge().activities == 0


def test_drain_activity_command(automations: dict[str, Automation], capsys: pytest.CaptureFixture[str]) -> None:
    record_sends(automations["dm"].workspace, automations["dm"], 3, sent_at=time.time())
    miss_record(workspace_id=automations["dm"].workspace_id, kind="dm", event_id="m", sender="1", text="x")
    activity_flush()
    call_command("drain_activity", "--purge")
    out = capsys.readouterr().out
    assert "stored 3 activity entries and 1 misses; skipped 0" in out
    assert "purged 0 activity entries and 0 misses" in out
    assert ActivityEntry.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_workers_leave_the_drain_to_a_dedicated_drainer_while_it_runs(automations: dict[str, Automation]) -> None:
    record_sends(automations["dm"].workspace, automations["dm"], 3, sent_at=time.time())
    activity_flush()

    activity_drainer_announce(name="drainer-1")
    worker_housekeeping()
    left_to_the_drainer = (ActivityEntry.objects.count(), activity_backlog())
    activity_drainer_withdraw(name="someone-else")  # only the drainer's own presence is withdrawn
    still_present = activity_drainer_present()
    activity_drainer_withdraw(name="drainer-1")
    worker_housekeeping()

    assert left_to_the_drainer == (0, 3)
    assert still_present and not activity_drainer_present()
    assert ActivityEntry.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_drain_activity_forever_as_a_process(automations: dict[str, Automation]) -> None:
    drainer = start_manage("drain_activity", "--forever", "--interval", "0.2", env=command_env())
    try:
        assert wait_for(activity_drainer_present, timeout=20)
        record_sends(automations["dm"].workspace, automations["dm"], 5, sent_at=time.time())
        activity_flush()
        assert wait_for(lambda: ActivityEntry.objects.count() == 5, timeout=20)
        miss_record(workspace_id=automations["dm"].workspace_id, kind="dm", event_id="m", sender="1", text="x")
        activity_flush()
        assert wait_for(lambda: Miss.objects.count() == 1, timeout=20)
        # Workers meanwhile left it alone: nothing was drained twice, nothing is waiting.
        assert activity_backlog() == 0
    finally:
        drainer.send_signal(signal.SIGTERM)
        output = drainer.communicate(timeout=30)[0]
    print(output)
    assert drainer.returncode == 0, output
    assert "draining the activity log every 0.2 s" in output and output.rstrip().endswith("stopped")
    assert not activity_drainer_present()  # withdrawn on a clean stop: workers drain again at once
    assert ActivityEntry.objects.count() == 5
