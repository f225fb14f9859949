"""A token Meta refuses (code 190) is visible at once, parks the account's sends, and a new token resumes them."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from automations.models import Automation, Lead, TokenStatus, Workspace, token_status
from automations.tokens import workspace_token_mark_refused
from devtools.fake_graph_api import FakeGraphAPI
from queueing.dead_letters import dead_letter_list
from tests.conftest import ACCOUNT_ID, TOKEN, run_until_settled
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = pytest.mark.django_db


def dm(text: str = "price?", *, sender: str = "user-1") -> bytes:
    return encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, sender_id=sender))


def test_the_first_190_marks_the_workspace_and_later_sends_are_parked_without_calling_meta(
    graph: FakeGraphAPI, automations: dict[str, Automation], api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    graph.expire_token(TOKEN)
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(Client(), dm(sender="first"))
        run_until_settled()

    workspace = Workspace.objects.get()
    assert workspace.token_refused_at is not None and workspace.token_status == TokenStatus.EXPIRED
    [listed] = api.get("/api/v1/workspaces/").json()["results"]
    assert listed["token_status"] == "expired"

    graph.reset()  # from now on Meta would accept the token: nothing must be sent with it anyway
    post_webhook(Client(), dm(sender="second"))
    post_webhook(Client(), dm(text="hello, no automation matches this", sender="third"))
    run_until_settled()

    assert graph.calls() == []
    letters = dead_letter_list()
    assert len(letters) == 2  # the unmatched DM is not parked: nothing would be sent for it
    assert all(letter.error and letter.error["code"] == 190 for letter in letters)
    assert "parked until a new token is saved" in letters[1].reason
    assert all(TOKEN not in repr(letter) for letter in letters)


def test_a_new_token_through_the_api_resumes_sends_and_the_parked_ones_replay_once(
    graph: FakeGraphAPI, automations: dict[str, Automation], api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    graph.expire_token(TOKEN)
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(Client(), dm(sender="first"))
        run_until_settled()
        post_webhook(Client(), dm(sender="second"))
        run_until_settled()
    workspace = Workspace.objects.get()
    url = f"/api/v1/workspaces/{workspace.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(url, {"access_token": "new-token", "token_status": "ok"}, format="json")

    assert response.status_code == 200
    assert response.json()["token_status"] == "ok"
    assert b"new-token" not in response.content
    replay_url = f"http://testserver/api/v1/workspaces/{workspace.pk}/replay-dead-letters/"
    assert response["Link"] == f'<{replay_url}>; rel="replay-dead-letters"'
    assert "Link" not in api.patch(url, {"name": "Renamed"}, format="json")  # offered once, for the new token
    replay = api.post(f"/api/v1/workspaces/{workspace.pk}/replay-dead-letters/")
    assert replay.json() == {"replayed": 2}
    assert api.post(f"/api/v1/workspaces/{workspace.pk}/replay-dead-letters/").json() == {"replayed": 0}
    run_until_settled()
    assert sorted(call.body["recipient"]["id"] for call in graph.calls()) == ["first", "second"]
    assert {call.token for call in graph.calls()} == {"new-token"}
    assert dead_letter_list() == []


def test_token_status_and_expiry_are_read_only_in_the_api(api: APIClient, workspace: Workspace) -> None:
    expires = timezone.now() + timezone.timedelta(days=3)
    Workspace.objects.filter(pk=workspace.pk).update(token_expires_at=expires)
    url = f"/api/v1/workspaces/{workspace.pk}/"

    response = api.patch(url, {"token_status": "ok", "token_expires_at": "2099-01-01T00:00:00Z"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["token_status"] == "expiring"
    assert body["token_expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M"))
    assert "access_token" not in body


def test_token_status_rules() -> None:
    now = timezone.now()
    day = timezone.timedelta(days=1)
    assert token_status(expires_at=None, refused_at=None, now=now) == TokenStatus.OK
    assert token_status(expires_at=now + 8 * day, refused_at=None, now=now) == TokenStatus.OK
    assert token_status(expires_at=now + 7 * day, refused_at=None, now=now) == TokenStatus.EXPIRING
    assert token_status(expires_at=now, refused_at=None, now=now) == TokenStatus.EXPIRED
    assert token_status(expires_at=now + 30 * day, refused_at=now, now=now) == TokenStatus.EXPIRED


def test_a_refusal_of_an_old_token_never_marks_a_new_one(workspace: Workspace) -> None:
    workspace.access_token = "replaced-meanwhile"
    workspace.save()

    assert workspace_token_mark_refused(workspace_id=workspace.pk, access_token=TOKEN) is False
    assert Workspace.objects.get().token_refused_at is None
    assert workspace_token_mark_refused(workspace_id=workspace.pk, access_token="replaced-meanwhile") is True
    assert workspace_token_mark_refused(workspace_id=workspace.pk, access_token="replaced-meanwhile") is False


def test_any_save_of_a_new_token_clears_the_refusal_and_starts_its_clock(workspace: Workspace) -> None:
    Workspace.objects.filter(pk=workspace.pk).update(token_refused_at=timezone.now())
    loaded = Workspace.objects.get()
    loaded.name = "Renamed"
    loaded.save()
    assert Workspace.objects.get().token_status == TokenStatus.EXPIRED  # same token: still refused

    loaded.access_token = "fresh"
    loaded.save(update_fields=["access_token", "updated_at"])

    saved = Workspace.objects.get()
    assert (saved.token_status, saved.token_expires_at) == (TokenStatus.OK, None)
    assert saved.token_issued_at is not None and timezone.now() - saved.token_issued_at < timezone.timedelta(minutes=1)


def test_a_follow_up_answer_is_kept_but_its_confirmation_parked_while_the_token_is_refused(
    graph: FakeGraphAPI, workspace: Workspace, django_capture_on_commit_callbacks: Any
) -> None:
    Automation.objects.create(
        workspace=workspace,
        name="Ask",
        type="dm",
        keywords=["guide"],
        reply_text="Your email?",
        collect_reply=True,
        confirmation_text="Thanks!",
    )
    post_webhook(Client(), dm("guide please"))
    run_until_settled()
    with django_capture_on_commit_callbacks(execute=True):  # the cache learns it on commit
        workspace_token_mark_refused(workspace_id=workspace.pk, access_token=TOKEN)

    post_webhook(Client(), dm("me@example.com"))
    run_until_settled()

    assert Lead.objects.get().text == "me@example.com"
    assert [call.body["message"]["text"] for call in graph.calls()] == ["Your email?"]
    [letter] = dead_letter_list()
    assert letter.error is not None and letter.error["code"] == 190


def test_the_admin_shows_the_refusal_on_the_index_and_the_workspace_and_offers_the_replay(
    graph: FakeGraphAPI, workspace: Workspace
) -> None:
    Workspace.objects.filter(pk=workspace.pk).update(token_refused_at=timezone.now())
    soon = Workspace.objects.create(name="Soon", instagram_account_id="1784", access_token="t")
    Workspace.objects.filter(pk=soon.pk).update(token_expires_at=timezone.now() + timezone.timedelta(days=2))
    client = Client()
    client.force_login(User.objects.create_user("staff", password="pw-123456", is_staff=True, is_superuser=True))

    index = client.get("/admin/").content.decode()
    assert 'id="token-alerts"' in index
    assert "Shop</a> (17841400000000001):\n    access token expired or refused by Meta" in index
    assert "Soon</a> (1784):\n    access token expires on" in index

    change_url = f"/admin/automations/workspace/{workspace.pk}/change/"
    page = client.get(change_url).content.decode()
    assert 'id="token-banner"' in page and "was refused by Meta" in page
    assert TOKEN not in page

    response = client.post(
        change_url, {"name": "Shop", "instagram_account_id": ACCOUNT_ID, "access_token": "pasted", "is_active": "on"}
    )
    assert response.status_code == 302
    [offer, saved] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "was changed successfully" in saved
    assert f'href="/admin/dead-letters/?account={ACCOUNT_ID}&amp;code=190"' in offer
    assert Workspace.objects.get(pk=workspace.pk).token_status == TokenStatus.OK
    assert 'id="token-banner"' not in client.get(change_url).content.decode()

    listed = client.get("/admin/automations/workspace/?token_status=expiring").content.decode()
    assert "Soon" in listed and ">Shop<" not in listed
