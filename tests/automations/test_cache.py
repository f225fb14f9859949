"""The worker's lookups served from Redis: hits make no query, misses one, "nothing" is cached too,
a cold key is filled once, and every save or delete makes the next job read the new data."""

import threading
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client

from automations.cache import DATASETS, workspace_cached
from automations.models import Automation, Workspace
from automations.selectors import automation_find_match, workspace_get_active_by_instagram_id
from automations.services import EventOutcome, event_handle
from automations.stats import cache_stats_get
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID, TOKEN
from webhooks.events import EventKind, InstagramEvent

pytestmark = pytest.mark.django_db


def dm(text: str = "price", *, sender_id: str = "1234567890123456", event_id: str = "m1") -> InstagramEvent:
    return InstagramEvent(kind=EventKind.DM, account_id=ACCOUNT_ID, event_id=event_id, sender_id=sender_id, text=text)


def comment(media_id: str = "17900000000000001", text: str = "price?", event_id: str = "c1") -> InstagramEvent:
    return InstagramEvent(
        kind=EventKind.COMMENT, account_id=ACCOUNT_ID, event_id=event_id, sender_id="42", text=text, media_id=media_id
    )


def stats() -> dict[str, tuple[int, int]]:
    return {str(row["dataset"]): (int(row["hits"]), int(row["misses"])) for row in cache_stats_get(datasets=DATASETS)}  # type: ignore[call-overload]


def test_a_job_whose_data_is_cached_makes_no_query(
    graph: FakeGraphAPI, automations: dict[str, Automation], django_assert_num_queries: Any
) -> None:
    # workspace, automations of (workspace, dm): two queries the first time
    with django_assert_num_queries(2):
        assert event_handle(event=dm(event_id="m1")) == EventOutcome.REPLIED
    with django_assert_num_queries(0):
        assert event_handle(event=dm(event_id="m2")) == EventOutcome.REPLIED
    assert [c.body["message"]["text"] for c in graph.calls()] == ["DM: prices here"] * 2
    assert {c.token for c in graph.calls()} == {TOKEN}
    assert stats() == {"workspace": (1, 1), "automation": (1, 1), "user_state": (0, 2)}


def test_comment_automation_is_cached_per_post(
    graph: FakeGraphAPI, automations: dict[str, Automation], django_assert_num_queries: Any
) -> None:
    automations["comment"].media_id = "17900000000000001"
    automations["comment"].save()
    with django_assert_num_queries(2):
        assert event_handle(event=comment()) == EventOutcome.REPLIED
    with django_assert_num_queries(1):  # another post: its own entry, the workspace is cached
        assert event_handle(event=comment(media_id="17900000000000777")) == EventOutcome.NO_MATCH
    with django_assert_num_queries(0):
        assert event_handle(event=comment(event_id="c2")) == EventOutcome.REPLIED
        assert event_handle(event=comment(media_id="17900000000000777")) == EventOutcome.NO_MATCH


def test_nothing_matches_is_cached_too(workspace: Workspace, django_assert_num_queries: Any) -> None:
    """An account without a comment automation costs no query per comment, nor does an unknown account."""
    with django_assert_num_queries(2):
        assert event_handle(event=comment()) == EventOutcome.NO_MATCH
    with django_assert_num_queries(0):
        for _ in range(3):
            assert event_handle(event=comment()) == EventOutcome.NO_MATCH
    unknown = InstagramEvent(kind=EventKind.DM, account_id="999", event_id="m9", sender_id="1", text="hi")
    with django_assert_num_queries(1):
        assert event_handle(event=unknown) == EventOutcome.UNKNOWN_ACCOUNT
    with django_assert_num_queries(0):
        assert event_handle(event=unknown) == EventOutcome.UNKNOWN_ACCOUNT
    assert stats()["automation"] == (3, 1)
    assert stats()["workspace"] == (4, 2)


def test_cache_holds_plain_data_and_never_shows_the_token(workspace: Workspace, clean_redis: Any) -> None:
    cached = workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID)
    assert cached is not None and cached.access_token == TOKEN
    assert TOKEN not in repr(cached)
    import pickle

    [key] = clean_redis.scan_iter(match="instabot-test:cache:1:workspace:*")
    generation, value = pickle.loads(clean_redis.get(key))  # noqa: S301
    assert isinstance(generation, str)
    assert type(value) is dict and value["access_token"] == TOKEN


def test_a_cold_key_is_filled_once_under_concurrent_lookups() -> None:
    fills: list[int] = []
    results: list[Any] = []

    def fill() -> dict[str, Any]:
        fills.append(1)
        time.sleep(0.2)  # a slow query: the others must wait for it, not repeat it
        return {"id": 7}

    def lookup() -> None:
        results.append(workspace_cached(instagram_account_id="cold", fill=fill))

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(fills) == 1
    assert results == [{"id": 7}] * 8
    assert stats()["workspace"] == (7, 1)


@pytest.mark.django_db(transaction=True)
def test_saves_and_deletes_from_code_reach_the_next_lookup(automations: dict[str, Automation]) -> None:
    workspace = automations["dm"].workspace
    match = automation_find_match(workspace_id=workspace.pk, kind=EventKind.DM, text="price")
    assert match is not None and match.reply_text == "DM: prices here"

    automations["dm"].reply_text = "New text"
    automations["dm"].save()
    match = automation_find_match(workspace_id=workspace.pk, kind=EventKind.DM, text="price")
    assert match is not None and match.reply_text == "New text"

    # A change inside a transaction is invalidated when it commits, not before. (MongoDB through
    # django-mongodb-backend 5.2 has no transactions: there the delete commits, and invalidates, at once.)
    with transaction.atomic():
        Automation.objects.get(pk=automations["dm"].pk).delete()
        still_cached = automation_find_match(workspace_id=workspace.pk, kind=EventKind.DM, text="price") is not None
        assert still_cached is connection.features.supports_transactions
    assert automation_find_match(workspace_id=workspace.pk, kind=EventKind.DM, text="price") is None

    workspace.is_active = False
    workspace.save()
    assert workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID) is None


@pytest.mark.django_db(transaction=True)
def test_a_moved_automation_and_a_changed_account_id_invalidate_old_and_new_places(
    automations: dict[str, Automation],
) -> None:
    shop = automations["dm"].workspace
    other = Workspace.objects.create(name="Other", instagram_account_id="555", access_token="t2")
    assert automation_find_match(workspace_id=shop.pk, kind=EventKind.DM, text="price") is not None
    assert automation_find_match(workspace_id=other.pk, kind=EventKind.DM, text="price") is None

    automations["dm"].workspace = other
    automations["dm"].save()
    assert automation_find_match(workspace_id=shop.pk, kind=EventKind.DM, text="price") is None
    assert automation_find_match(workspace_id=other.pk, kind=EventKind.DM, text="price") is not None

    assert workspace_get_active_by_instagram_id(instagram_account_id="555") is not None
    assert workspace_get_active_by_instagram_id(instagram_account_id="556") is None
    other.instagram_account_id = "556"
    other.save()
    assert workspace_get_active_by_instagram_id(instagram_account_id="555") is None
    cached = workspace_get_active_by_instagram_id(instagram_account_id="556")
    assert cached is not None and cached.id == other.pk


def test_cache_stats_command_and_operations_page_show_hits_and_misses(
    automations: dict[str, Automation], admin_client: Client, capsys: Any
) -> None:
    for _ in range(4):
        workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID)
    call_command("cache_stats")
    out = capsys.readouterr().out
    assert "workspace             3          1     75.0%" in out
    assert "user_state            0          0         -" in out

    # On the admin's operations page; no longer on the staff-facing automation list.
    page = admin_client.get("/admin/operations/").content.decode()
    assert 'id="cache-stats"' in page
    assert '<td>workspace</td><td class="num">3</td><td class="num">1</td>\n      <td class="num">75.0%</td>' in page
    assert 'id="cache-stats"' not in admin_client.get("/admin/automations/automation/").content.decode()

    call_command("cache_stats", "--reset")
    assert stats()["workspace"] == (0, 0)
