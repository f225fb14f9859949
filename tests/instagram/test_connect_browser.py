"""The connect flow in headless Chromium: the admin's button, the (fake) authorization window, back to the
admin with a subscribed, active workspace; then the next signed DM is answered with the new token."""

from typing import Any

import pytest
from django.test import Client

from automations.models import Automation, TokenStatus, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from queueing.dead_letters import dead_letter_list
from tests.conftest import ACCOUNT_ID, TOKEN, run_until_settled, run_worker_burst
from tests.support.browser import browser_marks
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = browser_marks

NEW_ACCOUNT = "17841400000000042"


@pytest.fixture
def instagram(graph: FakeGraphAPI, page: Any, settings: Any) -> FakeGraphAPI:  # noqa: F811
    settings.INSTAGRAM_REDIRECT_URI = f"{page.live_server_url}/connect/instagram/callback/"
    return graph


def dm(*, account_id: str, sender: str) -> bytes:
    payload = sample_event_payload(kind=EventKind.DM, account_id=account_id, text="price?", sender_id=sender)
    return encode_payload(payload)


def click_connect(page: Any) -> None:  # noqa: F811
    page.goto(f"{page.live_server_url}/admin/automations/workspace/")
    page.click("#connect-instagram")
    page.wait_for_selector("#allow")  # Instagram's (fake) authorization window


def test_connect_creates_a_subscribed_active_workspace_whose_token_answers_the_next_dm(
    page: Any,  # noqa: F811
    instagram: FakeGraphAPI,
) -> None:
    instagram.log_in_as(user_id=NEW_ACCOUNT, username="new_shop")

    click_connect(page)
    assert "@new_shop" in page.inner_text("h1")
    page.click("#allow")
    page.wait_for_selector(".messagelist .success")

    workspace = Workspace.objects.get(instagram_account_id=NEW_ACCOUNT)
    # (The browser keeps the "#_" Instagram appended, as browsers keep a fragment across redirects.)
    assert page.url.removesuffix("#_") == f"{page.live_server_url}/admin/automations/workspace/{workspace.pk}/change/"
    assert "Connected @new_shop" in page.inner_text(".messagelist")
    assert workspace.is_active and workspace.subscribed_at is not None
    assert instagram.subscribed_fields(NEW_ACCOUNT) == ["comments", "messages"]
    assert workspace.access_token not in page.content()
    assert "OK" in page.inner_text(".field-token")

    Automation.objects.create(workspace=workspace, name="DM", type="dm", keywords=["price"], reply_text="Prices")
    assert post_webhook(Client(), dm(account_id=NEW_ACCOUNT, sender="buyer")).status_code == 200
    run_worker_burst()
    [send] = instagram.calls()
    assert (send.token, send.body["recipient"]["id"]) == (workspace.access_token, "buyer")


def test_reconnecting_after_a_refusal_resumes_sends_and_replays_what_was_parked(
    page: Any,  # noqa: F811
    instagram: FakeGraphAPI,
) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=TOKEN)
    Automation.objects.create(workspace=workspace, name="DM", type="dm", keywords=["price"], reply_text="Prices")
    instagram.expire_token(TOKEN)
    post_webhook(Client(), dm(account_id=ACCOUNT_ID, sender="waiting"))
    run_until_settled()
    assert Workspace.objects.get().token_status == TokenStatus.EXPIRED
    [parked] = dead_letter_list()

    page.goto(f"{page.live_server_url}/admin/")
    assert "access token expired or refused by Meta" in page.inner_text("#token-alerts")
    instagram.log_in_as(user_id=ACCOUNT_ID, username="shop")
    click_connect(page)
    page.click("#allow")
    page.wait_for_selector(".messagelist .warning")
    page.click("text=Replay the events parked meanwhile")
    page.wait_for_selector("#dead-letters-filter")
    assert parked.event["event_id"] in page.inner_text("#result_list")
    page.click("input[name=replay_all]")
    page.wait_for_selector(".messagelist .success")
    assert "Replayed 1 dead letter(s)." in page.inner_text(".messagelist")

    run_until_settled()
    new_token = Workspace.objects.get().access_token
    assert new_token != TOKEN
    [send] = instagram.calls()
    assert (send.token, send.body["recipient"]["id"]) == (new_token, "waiting")
    page.goto(f"{page.live_server_url}/admin/")
    assert page.locator("#token-alerts").count() == 0


def test_denied_consent_lands_on_a_clear_message_and_creates_nothing(
    page: Any,  # noqa: F811
    instagram: FakeGraphAPI,
) -> None:
    click_connect(page)
    page.click("#deny")
    page.wait_for_selector(".messagelist .error")

    assert page.url.removesuffix("#_") == f"{page.live_server_url}/admin/automations/workspace/"
    assert "Instagram did not connect the account: The user denied your request" in page.inner_text(".messagelist")
    assert not Workspace.objects.exists()
