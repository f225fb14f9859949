"""`manage.py cache_sync` on MongoDB: change streams carry writes made with pymongo to the cache."""

import signal
from typing import Any

import pytest
from pymongo.database import Database

from automations.models import Automation
from tests.automations.test_cache_sync import CONNECTED, dm_reply, seconds_until
from tests.mongodb.conftest import ON_MONGODB

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not ON_MONGODB, reason="MongoDB profile only"),
]


def test_pymongo_writes_reach_the_cache_within_a_second(
    start_cache_sync: Any, automations: dict[str, Automation], mongo: Database[Any]
) -> None:
    cache_sync = start_cache_sync()
    assert "MongoChangeStreamFeed" in "".join(cache_sync.lines)
    dm = automations["dm"]
    assert dm_reply(dm.workspace_id) == "DM: prices here"  # cached from here on

    mongo["automations_automation"].update_one({"_id": dm.pk}, {"$set": {"reply_text": "Written by Node"}})
    assert seconds_until(lambda: dm_reply(dm.workspace_id) == "Written by Node") <= 1.0

    mongo["automations_automation"].delete_one({"_id": dm.pk})
    assert seconds_until(lambda: dm_reply(dm.workspace_id) is None) <= 1.0

    cache_sync.process.send_signal(signal.SIGTERM)
    assert cache_sync.process.wait(timeout=15) == 0
    assert CONNECTED in "".join(cache_sync.lines)
