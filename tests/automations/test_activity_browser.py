"""Staff see what Instabot did, in the real admin in headless Chromium at 1280x800."""

import re
from typing import Any

from django.test import Client
from playwright.sync_api import expect

from automations.activity import activity_flush
from automations.activity_store import activity_drain
from automations.models import ActivityEntry, Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID, TOKEN, run_worker_burst
from tests.support.browser import browser_marks, is_on_top, screenshot
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = browser_marks


def dm(text: str, *, mid: str) -> bytes:
    return encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, event_id=mid))


def answer_and_log(body: bytes) -> None:
    """A signed webhook in, a real worker, then what a worker's housekeeping does every few seconds."""
    assert post_webhook(Client(), body).status_code == 200
    run_worker_burst()
    activity_flush()
    activity_drain()


def shop() -> Workspace:
    return Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=TOKEN)


def test_a_signed_dm_is_answered_and_logged_with_its_automation_and_latency(page: Any, graph: FakeGraphAPI) -> None:
    workspace = shop()
    Automation.objects.create(workspace=workspace, name="Other", type="dm", keywords=["hours"], reply_text="9-5")
    Automation.objects.create(workspace=workspace, name="DM price", type="dm", keywords=["price"], reply_text="$5")
    answer_and_log(dm("what is the price?", mid="mid.browser.1"))
    assert [call.body["message"]["text"] for call in graph.calls()] == ["$5"]
    row = ActivityEntry.objects.get()

    page.goto(f"{page.live_server_url}/admin/automations/activityentry/")
    [line] = page.locator("#result_list tbody tr").all_inner_texts()
    assert "DM price" in line and "Shop" in line and "sent" in line.lower()
    assert f"{row.latency_ms} ms" in line
    assert re.search(r"\b\d+ ms\b", line)
    screenshot(page, "activity-log")

    # Filter by status and search by recipient, as staff would.
    page.goto(f"{page.live_server_url}/admin/automations/activityentry/?status__exact=failed")
    assert page.locator("#result_list tbody tr").count() == 0
    page.goto(f"{page.live_server_url}/admin/automations/activityentry/?q={row.recipient}")
    assert page.locator("#result_list tbody tr").count() == 1

    # The automation list and form show what it did.
    page.goto(f"{page.live_server_url}/admin/automations/automation/")
    price_row = page.locator("#result_list tbody tr", has_text="DM price")
    assert "1 / 1 / 1" in price_row.inner_text()
    assert "0 / 0 / 0" in page.locator("#result_list tbody tr", has_text="Other").inner_text()
    price_row.locator("a", has_text="DM price").click()
    assert "1 today, 1 in the last 7 days, 1 in all" in page.inner_text(".field-firing_summary")
    page.click("text=Its activity log")
    page.wait_for_url("**/activityentry/?automation__id__exact=*")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)


def test_an_unmatched_dm_is_a_miss_that_becomes_a_new_automation(page: Any, graph: FakeGraphAPI) -> None:
    workspace = shop()
    Automation.objects.create(workspace=workspace, name="DM price", type="dm", keywords=["price"], reply_text="$5")
    answer_and_log(dm("Do you ship to Lisbon?", mid="mid.browser.miss"))
    assert graph.calls() == []

    page.goto(f"{page.live_server_url}/admin/")
    page.click("#operations-module >> text=Misses")
    page.wait_for_url("**/admin/automations/miss/")
    [line] = page.locator("#result_list tbody tr").all_inner_texts()
    assert "Do you ship to Lisbon?" in line
    screenshot(page, "misses")
    page.click("text=Start an automation")
    page.wait_for_url("**/automation/add/?*")
    assert page.locator(".messagelist .info").is_visible()
    assert page.input_value("#id_keywords") == "ship, lisbon"
    assert page.input_value("#id_type") == "dm"
    assert page.input_value("#id_workspace") == str(workspace.pk)
    assert page.input_value("#id_name") == "Reply to: Do you ship to Lisbon?"
    page.fill("#id_keywords", "lisbon")
    page.fill("#id_reply_text", "Yes, we ship to Lisbon in 3 days.")
    screenshot(page, "automation-from-miss")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    created = Automation.objects.get(name="Reply to: Do you ship to Lisbon?")
    assert (created.workspace_id, created.type, created.keywords) == (workspace.pk, "dm", ["lisbon"])

    answer_and_log(dm("Shipping to LISBON too?", mid="mid.browser.after"))
    assert [call.body["message"]["text"] for call in graph.calls()] == ["Yes, we ship to Lisbon in 3 days."]


def test_the_automation_list_shows_its_key_columns_at_1280_px(page: Any) -> None:
    workspace = Workspace.objects.create(name="A shop with a long name", instagram_account_id="1", access_token="t")
    Workspace.objects.create(name="Another shop", instagram_account_id="2", access_token="t")  # a workspace filter
    Automation.objects.create(
        workspace=workspace,
        name="Comment on the spring collection reel: send the link",
        type="comment",
        media_id="17900000000000001",
        keywords=["price", "link", "how much", "cost", "shipping"],
        reply_text="Here it is",
    )
    page.goto(f"{page.live_server_url}/admin/automations/automation/")
    screenshot(page, "automation-list")
    assert page.viewport_size == {"width": 1280, "height": 800}
    for column in ["name", "workspace_name", "type", "trigger", "position", "active", "fired", "last_fired", "updated"]:
        assert is_on_top(page, f"#result_list thead th.column-{column}"), column
        assert is_on_top(page, f"#result_list tbody td.field-{column}, #result_list tbody th.field-{column}"), column
    assert page.locator("#cache-stats").count() == 0  # engineering data lives on the operations page
