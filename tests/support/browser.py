"""Headless Chromium (Playwright + Debian's /usr/bin/chromium) logged into the real admin.

Use `pytestmark = BROWSER_MARKS` and the `page` fixture (import it into the test module). Playwright's
sync API runs an event loop in the test's thread: start workers as processes there, never in-thread.
"""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections

from queueing.queues import QUEUE_NAMES
from tests.support.processes import run_manage

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not os.environ.get("CI"),
        reason="Chromium not installed (CI installs it and never skips)",
    ),
]


def run_worker_process() -> None:
    """A real `rqworker --burst` (this thread runs Playwright's event loop, so no worker runs in it)."""
    result = run_manage("rqworker", *QUEUE_NAMES, "--burst")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def page(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A page logged into /admin/ as a superuser; `page.live_server_url` is the server's address."""
    from playwright.sync_api import sync_playwright

    # Django's live server runs beside Playwright's event loop in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser("staff", password="pw-123456")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "pw-123456")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        page.live_server_url = live_server.url
        yield page
        browser.close()
        # Queries the test made while Playwright ran used connections of their own context: closed
        # here, or PostgreSQL cannot drop the test database at the end of the run.
        connections.close_all()
