"""The operations page and the admin index, in the real admin in headless Chromium at 1280x800."""

import re
from typing import Any

from django.test import Client
from playwright.sync_api import expect

from automations.models import Workspace
from tests.conftest import ACCOUNT_ID, TOKEN
from tests.support.browser import browser_marks, is_on_top, screenshot
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = browser_marks


def dm(text: str, *, mid: str) -> bytes:
    return encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text=text, event_id=mid))


def test_the_operations_page_shows_jobs_queued_with_no_worker_running(page: Any) -> None:
    Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=TOKEN)
    client = Client()
    for index in range(3):
        post_webhook(client, dm("price", mid=f"mid.queued.{index}"))
    post_webhook(client, "comments__feed")

    page.goto(f"{page.live_server_url}/admin/")
    assert is_on_top(page, "#operations-module a[href$='/admin/operations/']")
    page.click("#operations-module >> text=Operations page")
    page.wait_for_url("**/admin/operations/")
    assert page.inner_text("#queue-high .depth") == "3"
    assert page.inner_text("#queue-default .depth") == "0"
    assert page.inner_text("#queue-low .depth") == "1"
    assert re.fullmatch(r"\d+ s", page.inner_text("#queue-high .age"))
    assert page.inner_text("#queue-default .age") == "-"
    assert "No worker is running" in page.inner_text("#workers")
    assert page.inner_text("#card-workers .value") == "0"
    assert page.locator("#jobs-chart rect").count() == 60
    assert page.locator("#cache-stats tbody tr").count() >= 1
    screenshot(page, "operations")


def test_every_link_on_the_admin_index_is_visible_and_clickable(page: Any) -> None:
    page.goto(f"{page.live_server_url}/admin/")
    screenshot(page, "admin-index")
    links = page.locator("#content a[href]")
    assert links.count() >= 10
    hidden = []
    for index in range(links.count()):
        link = links.nth(index)
        if not link.is_visible():
            continue  # "None available" lists have no links; a hidden link is caught below
        link.scroll_into_view_if_needed()
        selector = f"#content a[href] >> nth={index}"
        if not is_on_top(page, selector):
            hidden.append(link.inner_text())
    assert hidden == []
    assert all(links.nth(i).is_visible() for i in range(links.count()))
    # The Operations box is drawn beside Recent actions, not under it.
    operations = page.locator("#operations-module").bounding_box()
    recent = page.locator("#recent-actions-module").bounding_box()
    assert operations["x"] + operations["width"] <= recent["x"]
    for name in ["Operations page", "Activity log", "Misses", "Dead letters", "Queues and workers (RQ)"]:
        page.goto(f"{page.live_server_url}/admin/")
        with page.expect_navigation():
            page.click(f"#operations-module >> text={name}")
        expect(page.locator("#content")).to_be_visible()
        assert "Server Error" not in page.content(), name
