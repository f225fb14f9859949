"""A signed webhook in, a real RQ worker on real Redis, the fake Graph API over real HTTP out."""

import pytest
from django.test import Client

from automations.cache import cache_invalidate
from automations.models import Automation, Workspace
from automations.stats import stats_get
from devtools.fake_graph_api import FakeGraphAPI
from queueing.dead_letters import dead_letter_list
from queueing.queues import QUEUE_NAMES, get_queue
from tests.conftest import ACCOUNT_ID, TOKEN, run_worker_burst
from tests.support.webhooks import fixture_bytes, post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = pytest.mark.django_db


def send(client: Client, fixture: str | bytes) -> None:
    assert post_webhook(client, fixture).status_code == 200
    run_worker_burst()


def test_dm_is_answered_with_one_send_to_the_sender(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    send(client, "messages__text")
    [call] = graph.calls()
    assert call.path == "/v21.0/me/messages"
    assert call.token == TOKEN
    assert call.body == {"recipient": {"id": "1234567890123456"}, "message": {"text": "DM: prices here"}}


def test_story_reply_is_answered_by_the_story_automation(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    send(client, "messages__story_reply")
    [call] = graph.calls()
    assert call.path == "/v21.0/me/messages"
    assert call.body == {"recipient": {"id": "2234567890123456"}, "message": {"text": "Story: thanks!"}}


def test_comment_gets_a_public_reply_and_a_private_reply(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    send(client, "comments__feed")
    public, private = graph.calls()
    assert public.path == "/v21.0/17865799348089039/replies"
    assert public.body == {"message": "Public: check your DMs"}
    assert private.path == "/v21.0/me/messages"
    assert private.body == {
        "recipient": {"comment_id": "17865799348089039"},
        "message": {"text": "Private: prices here"},
    }
    assert {public.token, private.token} == {TOKEN}


def test_comment_without_public_text_gets_only_the_private_reply(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    Automation.objects.filter(pk=automations["comment"].pk).update(public_reply_text="")
    send(client, "comments__feed")
    [call] = graph.calls()
    assert call.body["recipient"] == {"comment_id": "17865799348089039"}


def test_live_comment_gets_no_public_reply(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    Automation.objects.filter(pk=automations["comment"].pk).update(keywords=["code"])
    send(client, "live_comments__live")
    [call] = graph.calls()
    assert call.body == {"recipient": {"comment_id": "17865799348089041"}, "message": {"text": "Private: prices here"}}


@pytest.mark.parametrize("fixture", ["messages__echo", "comments__own"])
def test_echoes_and_own_comments_are_never_answered(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], fixture: str
) -> None:
    Automation.objects.update(keywords=[])
    send(client, fixture)
    assert graph.calls() == []


def test_comment_automation_for_another_post_does_not_fire(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    Automation.objects.filter(pk=automations["comment"].pk).update(media_id="17900000000000999")
    send(client, "comments__feed")
    assert graph.calls() == []
    Automation.objects.filter(pk=automations["comment"].pk).update(media_id="17900000000000001")
    # QuerySet.update() sends no signal: invalidate as `manage.py cache_sync` would.
    cache_invalidate(workspace_ids=[automations["comment"].workspace_id])
    send(client, "comments__feed")
    assert len(graph.calls()) == 2


def test_first_matching_automation_by_position_answers(
    client: Client, graph: FakeGraphAPI, workspace: Workspace
) -> None:
    Automation.objects.create(workspace=workspace, name="later", type="dm", keywords=[], reply_text="B", position=5)
    Automation.objects.create(workspace=workspace, name="first", type="dm", keywords=[], reply_text="A", position=1)
    Automation.objects.create(
        workspace=workspace, name="off", type="dm", keywords=[], reply_text="C", position=0, is_active=False
    )
    send(client, "messages__text")
    assert [c.body["message"]["text"] for c in graph.calls()] == ["A"]


def test_unknown_and_inactive_workspaces_are_skipped_and_counted(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], workspace: Workspace
) -> None:
    send(client, encode_payload(sample_event_payload(kind=EventKind.DM, account_id="999", text="price")))
    Workspace.objects.filter(pk=workspace.pk).update(is_active=False)
    send(client, "messages__text")
    assert graph.calls() == []
    assert stats_get()["skipped_unknown_account"] == 2


def test_message_without_a_matching_keyword_is_not_answered(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    send(client, encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="prices?")))
    assert graph.calls() == []
    assert stats_get()["no_match"] == 1


def test_batch_answers_each_event_of_a_known_account_once(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    Automation.objects.update(keywords=[])
    send(client, "messages__batch")
    # The third event belongs to an account Instabot does not know.
    assert sorted(c.body["recipient"]["id"] for c in graph.calls()) == ["7234567890123456", "7234567890123457"]


def test_strict_priority_dms_then_story_replies_then_comments(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    """Queue everything with the worker stopped, then run it: the order of Graph calls is the priority."""
    Automation.objects.update(keywords=[], public_reply_text="")
    kinds = [EventKind.COMMENT, EventKind.STORY_REPLY, EventKind.DM] * 5
    for i, kind in enumerate(kinds):
        payload = sample_event_payload(kind=kind, account_id=ACCOUNT_ID, text="hi", sender_id=f"{kind}-{i}")
        assert post_webhook(client, encode_payload(payload)).status_code == 200
    assert {name: get_queue(name).count for name in QUEUE_NAMES} == {"high": 5, "default": 5, "low": 5}
    run_worker_burst()
    texts = [c.body["message"]["text"] for c in graph.calls()]
    assert texts == ["DM: prices here"] * 5 + ["Story: thanks!"] * 5 + ["Private: prices here"] * 5


def test_expired_token_parks_the_event_in_the_dead_letters_without_the_token(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    graph.expire_token(TOKEN)
    send(client, "messages__text")
    assert get_queue("high").failed_job_registry.count == 0
    [letter] = dead_letter_list()
    assert letter.origin_queue == "high"
    assert letter.error is not None and letter.error["code"] == 190
    assert letter.error["fbtrace_id"] == "AbCdEf123"
    assert TOKEN not in repr(letter)


def test_inline_processing_when_the_queue_system_is_off(
    client: Client, graph: FakeGraphAPI, automations: dict[str, Automation], settings: object
) -> None:
    settings.USE_QUEUE_SYSTEM = False  # type: ignore[attr-defined]
    assert post_webhook(client, "messages__text").status_code == 200
    assert len(graph.calls()) == 1
    assert sum(get_queue(name).count for name in QUEUE_NAMES) == 0


def test_unicode_keywords_match_whole_words(client: Client, graph: FakeGraphAPI, workspace: Workspace) -> None:
    # The message says "Préis? äöå 😍 PRICE": "äö" is only part of a word, "ÄÖÅ" is a whole one in
    # another case.
    Automation.objects.create(workspace=workspace, name="part", type="dm", keywords=["äö"], reply_text="no", position=1)
    Automation.objects.create(
        workspace=workspace, name="whole", type="dm", keywords=["ÄÖÅ"], reply_text="Danke! äöå 😍", position=2
    )
    send(client, fixture_bytes("messages__unicode"))
    [call] = graph.calls()
    assert call.path == "/v21.0/me/messages"
    assert call.body == {"recipient": {"id": "1234567890123456"}, "message": {"text": "Danke! äöå 😍"}}
