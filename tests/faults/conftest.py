"""Fixtures of the fault suite: a private Redis with an append-only file, one DM automation."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automations.models import Automation, Workspace
from tests.conftest import ACCOUNT_ID
from tests.support.stack import PrivateRedis


@pytest.fixture
def redis_server(tmp_path: Path, settings: Any) -> Iterator[PrivateRedis]:
    """A private Redis that this test process, the web server and the workers all use."""
    server = PrivateRedis(tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    yield server
    server.stop()


@pytest.fixture
def dm_automation(db: None) -> Automation:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token="tok")
    return Automation.objects.create(workspace=workspace, name="any", type="dm", keywords=[], reply_text="hello")
