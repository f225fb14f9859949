from typing import Any

import pytest
from django.db import connection
from pymongo.database import Database

ON_MONGODB = connection.vendor == "mongodb"


@pytest.fixture
def mongo(db: None) -> Database[Any]:
    """The test database, through pymongo: what another service (the Node system) would write to."""
    connection.ensure_connection()
    database: Database[Any] = connection.database  # type: ignore[attr-defined]
    return database
