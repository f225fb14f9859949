"""Staff edit automations in the real admin, in headless Chromium; the next webhook uses the edit."""

from typing import Any

from django.test import Client

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import TOKEN
from tests.support.browser import BROWSER_MARKS, run_worker_process
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = BROWSER_MARKS


def test_admin_edit_of_an_automation_is_used_by_the_next_webhook(page: Any, graph: FakeGraphAPI) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id="17841400000000001", access_token=TOKEN)
    automation = Automation.objects.create(
        workspace=workspace, name="DM price", type="dm", keywords=["price"], reply_text="Old text"
    )
    client = Client()
    assert post_webhook(client, "messages__text").status_code == 200
    run_worker_process()
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
    run_worker_process()
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


def test_admin_refuses_comment_only_fields_on_a_dm_automation(page: Any) -> None:
    Workspace.objects.create(name="Shop", instagram_account_id="1784", access_token="t")
    page.goto(f"{page.live_server_url}/admin/automations/automation/add/")
    page.select_option("#id_workspace", label="Shop (1784)")
    page.fill("#id_name", "Bad")
    page.select_option("#id_type", "dm")
    page.fill("#id_media_id", "123")
    page.fill("#id_reply_text", "x")
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist")
    assert "Only comment automations watch a post." in page.content()
    assert not Automation.objects.exists()
