from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from pymongo.database import Database

ON_MONGODB = connection.vendor == "mongodb"


def server_is_secantusd() -> bool:
    """True when the tests run on secantusd, the MongoDB stand-in, rather than a real MongoDB."""
    if not ON_MONGODB:
        return False
    connection.ensure_connection()
    return "secantusVersion" in connection.connection.server_info()  # type: ignore[attr-defined]


@pytest.fixture
def mongo(db: None) -> Database[Any]:
    """The test database, through pymongo: what another service (the Node system) would write to."""
    connection.ensure_connection()
    database: Database[Any] = connection.database  # type: ignore[attr-defined]
    return database


def workspace_document(**fields: Any) -> dict[str, Any]:
    """A workspace as another service (the Node system) inserts it: every field, no Django involved."""
    now = datetime.now(UTC)
    return {
        "name": "Node shop",
        "instagram_account_id": "17841400000000777",
        "access_token": "t",
        "is_active": True,
        "created_at": now,
        "updated_at": now,
        **fields,
    }


# cache_sync as a real process, shared with tests/automations/test_cache_sync.py.
from tests.automations.test_cache_sync import start_cache_sync  # noqa: E402,F401
