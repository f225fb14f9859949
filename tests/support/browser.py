"""The real admin in Debian's headless Chromium (Playwright), logged in as staff, at 1280x800."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections

from queueing.queues import QUEUE_NAMES
from tests.support.processes import ROOT, run_manage

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "var" / "screenshots"

browser_marks = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and not os.environ.get("CI"),
        reason="Chromium not installed (CI installs it and never skips)",
    ),
]

BROWSER_MARKS = browser_marks


def run_worker_process() -> None:
    """A real `rqworker --burst`, as a process of its own."""
    result = run_manage("rqworker", *QUEUE_NAMES, "--burst")
    assert result.returncode == 0, result.stdout + result.stderr


# Django's live server runs beside Playwright's event loop in this thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def page(django_db_setup: None, live_server: Any) -> Iterator[Any]:
    """`django_db_setup` first: built before the test database, pytest-django's (session-wide) live
    server takes SQLite's `:memory:` name for an in-memory database and shares the test thread's
    connection with its threads, which crashed Python now and then ("Cannot operate on a closed
    database", segmentation faults)."""
    from playwright.sync_api import sync_playwright

    User.objects.create_superuser("staff", password="pw-123456")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport=VIEWPORT)
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


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot under var/screenshots/ (git-ignored), for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def is_on_top(page: Any, selector: str) -> bool:
    """Whether the element's centre is inside the viewport and the element (not something drawn over
    it) is what a click there would hit."""
    return bool(
        page.eval_on_selector(
            selector,
            """element => {
                const box = element.getBoundingClientRect();
                const x = box.left + box.width / 2, y = box.top + box.height / 2;
                if (box.width === 0 || x < 0 || y < 0 || x > innerWidth || y > innerHeight) return false;
                const hit = document.elementFromPoint(x, y);
                return hit !== null && (hit === element || element.contains(hit));
            }""",
        )
    )
