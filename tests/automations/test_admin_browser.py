"""Staff edit automations in the real admin, in headless Chromium; the next webhook uses the edit."""

from typing import Any

from django.test import Client

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import TOKEN, run_worker_burst
from tests.support.browser import browser_marks, screenshot
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = browser_marks


def test_admin_edit_of_an_automation_is_used_by_the_next_webhook(page: Any, graph: FakeGraphAPI) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id="17841400000000001", access_token=TOKEN)
    automation = Automation.objects.create(
        workspace=workspace, name="DM price", type="dm", keywords=["price"], reply_text="Old text"
    )
    client = Client()
    assert post_webhook(client, "messages__text").status_code == 200
    run_worker_burst()
    assert [c.body["message"]["text"] for c in graph.calls()] == ["Old text"]

    page.goto(f"{page.live_server_url}/admin/automations/automation/")
    assert "Direct message\tprice\t" in page.locator("#result_list").inner_text()
    page.click("text=DM price")
    assert page.input_value("#id_keywords") == "price"
    page.fill("#id_keywords", "price, cost")
    page.fill("#id_reply_text", "New text from the admin")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    automation.refresh_from_db()
    assert automation.keywords == ["price", "cost"]
    # A new message (the same one again would be a redelivery, answered only once).
    fresh = sample_event_payload(kind=EventKind.DM, account_id="17841400000000001", text="what does it cost")
    assert post_webhook(client, encode_payload(fresh)).status_code == 200
    run_worker_burst()
    assert [c.body["message"]["text"] for c in graph.calls()] == ["Old text", "New text from the admin"]


def test_admin_never_shows_the_token_and_keeps_it_when_left_empty(page: Any) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id="1784", access_token="very-secret-token")
    page.goto(f"{page.live_server_url}/admin/automations/workspace/")
    assert "very-secret-token" not in page.content()
    page.goto(f"{page.live_server_url}/admin/automations/workspace/{workspace.pk}/change/")
    assert "very-secret-token" not in page.content()
    assert page.input_value("#id_access_token") == ""
    page.fill("#id_name", "Shop renamed")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    workspace.refresh_from_db()
    assert (workspace.name, workspace.access_token) == ("Shop renamed", "very-secret-token")


def test_admin_creates_an_automation_with_search_and_filters(page: Any) -> None:
    Workspace.objects.create(name="Shop", instagram_account_id="1784", access_token="t")
    page.goto(f"{page.live_server_url}/admin/automations/automation/add/")
    page.select_option("#id_workspace", label="Shop (1784)")
    page.fill("#id_name", "Reel link")
    page.select_option("#id_type", "comment")
    page.fill("#id_media_id", "17900000000000001")
    page.fill("#id_keywords", "link,  LINK please ")
    page.fill("#id_reply_text", "Here it is")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    automation = Automation.objects.get(name="Reel link")
    assert automation.keywords == ["link", "LINK please"]

    page.goto(f"{page.live_server_url}/admin/automations/automation/?type__exact=dm")
    assert "Reel link" not in page.inner_text("#changelist")
    page.goto(f"{page.live_server_url}/admin/automations/automation/?q=Reel")
    assert "Reel link" in page.inner_text("#result_list")


def test_the_form_shows_comment_only_fields_for_comment_automations_only(page: Any) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id="1784", access_token="t")
    page.goto(f"{page.live_server_url}/admin/automations/automation/add/")
    comment_only = page.locator("fieldset.comment-only")
    assert "Comment automations only" in comment_only.inner_text()
    page.select_option("#id_type", "dm")
    assert not page.is_visible("#id_media_id") and not page.is_visible("#id_public_reply_text")
    page.select_option("#id_type", "comment")
    assert page.is_visible("#id_media_id") and page.is_visible("#id_public_reply_text")
    page.select_option("#id_type", "story")
    assert not page.is_visible("#id_media_id")
    # Every field says what it is for.
    rows = page.locator(".form-row")
    for index in range(rows.count()):
        row = rows.nth(index)
        if row.is_visible():
            assert row.locator(".help").inner_text().strip(), row.inner_text()
    screenshot(page, "automation-form-story")

    # A comment automation turned into a DM one loses its comment-only values instead of being refused.
    page.select_option("#id_workspace", label="Shop (1784)")
    page.fill("#id_name", "Reel link")
    page.select_option("#id_type", "comment")
    page.fill("#id_media_id", "17900000000000001")
    page.fill("#id_public_reply_text", "Check your DMs")
    page.fill("#id_reply_text", "Here it is")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert page.is_visible("#id_media_id")
    page.select_option("#id_type", "dm")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    automation = Automation.objects.get(workspace=workspace)
    assert (automation.type, automation.media_id, automation.public_reply_text) == ("dm", "", "")


def test_the_server_still_refuses_comment_only_fields_on_a_dm_automation(page: Any) -> None:
    """Without the page's script (or from another client), the form is checked on the server."""
    workspace = Workspace.objects.create(name="Shop", instagram_account_id="1784", access_token="t")
    client = Client()
    client.login(username="staff", password="pw-123456")
    response = client.post(
        "/admin/automations/automation/add/",
        {
            "workspace": workspace.pk,
            "name": "Bad",
            "type": "dm",
            "media_id": "123",
            "keywords": "",
            "reply_text": "x",
            "public_reply_text": "",
            "position": 100,
            "is_active": "on",
            "confirmation_text": "",
        },
    )
    assert response.status_code == 200
    assert "Only comment automations watch a post." in response.content.decode()
    assert not Automation.objects.exists()
