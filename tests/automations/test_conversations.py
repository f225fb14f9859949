"""Follow-up questions end to end: signed webhooks in, a real worker, the fake Graph API out."""

import time
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from automations.cache import user_state_key
from automations.models import Automation, Lead, Workspace
from automations.services import EventOutcome, event_handle
from automations.stats import stats_get
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID, run_worker_burst
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind, InstagramEvent
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = pytest.mark.django_db

USER = "3334567890123456"


@pytest.fixture
def guide(workspace: Workspace) -> Automation:
    return Automation.objects.create(
        workspace=workspace,
        name="Guide",
        type="dm",
        keywords=["guide"],
        reply_text="Reply with your email and we'll send the guide",
        collect_reply=True,
        confirmation_text="Thanks! The guide is on its way.",
    )


def send_dm(client: Client, text: str, *, event_id: str) -> None:
    payload = sample_event_payload(
        kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, sender_id=USER, event_id=event_id
    )
    assert post_webhook(client, encode_payload(payload)).status_code == 200
    run_worker_burst()


def texts(graph: FakeGraphAPI) -> list[str]:
    return [call.body["message"]["text"] for call in graph.calls()]


def test_the_next_dm_answers_the_question_is_stored_and_confirmed(
    client: Client, graph: FakeGraphAPI, guide: Automation
) -> None:
    send_dm(client, "send me the guide", event_id="m1")
    send_dm(client, "me@example.com", event_id="m2")

    assert texts(graph) == ["Reply with your email and we'll send the guide", "Thanks! The guide is on its way."]
    assert {call.body["recipient"]["id"] for call in graph.calls()} == {USER}
    lead = Lead.objects.get()
    assert (lead.workspace_id, lead.automation_id, lead.instagram_user_id, lead.text, lead.event_id) == (
        guide.workspace_id,
        guide.pk,
        USER,
        "me@example.com",
        "m2",
    )
    assert stats_get()["lead_captured"] == 1

    # Answered: the DM after that is a fresh message again.
    send_dm(client, "the guide again?", event_id="m3")
    assert texts(graph)[-1] == "Reply with your email and we'll send the guide"
    assert Lead.objects.count() == 1


def test_an_answer_handled_twice_is_stored_once(graph: FakeGraphAPI, guide: Automation) -> None:
    def dm(text: str, event_id: str) -> InstagramEvent:
        return InstagramEvent(kind=EventKind.DM, account_id=ACCOUNT_ID, event_id=event_id, sender_id=USER, text=text)

    assert event_handle(event=dm("guide", "m1")) == EventOutcome.REPLIED
    assert event_handle(event=dm("me@example.com", "m2")) == EventOutcome.LEAD_CAPTURED
    assert event_handle(event=dm("me@example.com", "m2")) == EventOutcome.LEAD_CAPTURED
    assert Lead.objects.count() == 1


def test_an_expired_question_leaves_the_next_dm_a_fresh_message(
    client: Client, graph: FakeGraphAPI, guide: Automation, settings: Any
) -> None:
    settings.CACHE_USER_STATE_TTL = 1
    send_dm(client, "guide please", event_id="m1")
    key = user_state_key(workspace_id=guide.workspace_id, instagram_user_id=USER)
    assert cache.get(key) is not None
    deadline = time.monotonic() + 5
    while cache.get(key) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.get(key) is None

    send_dm(client, "me@example.com", event_id="m2")
    assert not Lead.objects.exists()
    assert texts(graph) == ["Reply with your email and we'll send the guide"]  # no keyword: no answer at all


def test_a_question_whose_automation_stopped_asking_is_forgotten(
    client: Client, graph: FakeGraphAPI, guide: Automation
) -> None:
    send_dm(client, "guide", event_id="m1")
    Automation.objects.filter(pk=guide.pk).update(collect_reply=False)
    send_dm(client, "guide", event_id="m2")
    assert not Lead.objects.exists()
    assert len(texts(graph)) == 2


def test_leads_and_follow_up_fields_in_the_rest_api(admin_user: Any, guide: Automation) -> None:
    Lead.objects.create(
        workspace=guide.workspace, automation=guide, instagram_user_id=USER, text="me@example.com", event_id="m2"
    )
    api = APIClient()
    api.force_authenticate(admin_user)
    automation = api.get(f"/api/v1/automations/{guide.pk}/").json()
    assert (automation["collect_reply"], automation["confirmation_text"]) == (True, "Thanks! The guide is on its way.")
    [lead] = api.get(f"/api/v1/leads/?workspace={guide.workspace_id}").json()["results"]
    assert {k: lead[k] for k in ("workspace", "automation", "instagram_user_id", "text", "event_id")} == {
        # The API shows ids as the database has them: numbers on SQL, strings on MongoDB.
        "workspace": api_id(guide.workspace_id),
        "automation": api_id(guide.pk),
        "instagram_user_id": USER,
        "text": "me@example.com",
        "event_id": "m2",
    }
    assert api.get("/api/v1/leads/?workspace=999").json()["results"] == []
    assert api.post("/api/v1/leads/", {"text": "x"}, format="json").status_code == 405


def test_leads_in_the_admin_are_read_only(admin_client: Client, guide: Automation) -> None:
    lead = Lead.objects.create(
        workspace=guide.workspace, automation=guide, instagram_user_id=USER, text="me@example.com", event_id="m2"
    )
    assert "me@example.com" in admin_client.get("/admin/automations/lead/").content.decode()
    assert admin_client.get(f"/admin/automations/lead/{lead.pk}/change/").status_code == 200
    assert admin_client.get("/admin/automations/lead/add/").status_code == 403


def api_id(pk: object) -> object:
    return pk if isinstance(pk, int) else str(pk)
