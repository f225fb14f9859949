"""The MongoDB feed: change streams on the workspace and automation collections.

Resumes from the resume token saved after each batch (instabot/mongodb_changes.py), so a restart
misses no edit; when the history is lost (no token, or the oplog moved past it) everything cached is
invalidated. Change streams need a replica set.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from django.db import connection
from pymongo.errors import PyMongoError

from automations.cache_sync.base import AUTOMATION_TABLE, WORKSPACE_TABLE, Change, ChangeFeed
from instabot.mongodb_changes import ChangeStreamFollower


class MongoChangeStreamFeed(ChangeFeed):
    errors: ClassVar[tuple[type[BaseException], ...]] = (PyMongoError,)

    def __init__(self) -> None:
        self._follower: ChangeStreamFollower | None = None
        self._pending: list[Change] = []

    def connect(self) -> None:
        connection.ensure_connection()
        database = connection.database  # type: ignore[attr-defined]
        self._follower = ChangeStreamFollower(
            database=database, collections=[WORKSPACE_TABLE, AUTOMATION_TABLE], listener=self
        )
        self._follower.open()

    def wait(self, *, timeout: float) -> list[Change]:
        if self._follower is None:
            raise RuntimeError("connect() the feed first")
        self._follower.poll()
        changes, self._pending = self._pending, []
        return changes

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
            self._follower = None

    # The follower's listener interface.
    def on_change(
        self, *, collection: str, document_key: Mapping[str, Any], full_document: Mapping[str, Any] | None
    ) -> None:
        self._pending.append(change_from_document(collection=collection, full_document=full_document))

    def on_history_lost(self) -> None:
        self._pending.append(Change(everything=True))


def change_from_document(*, collection: str, full_document: Mapping[str, Any] | None) -> Change:
    """A deleted document is gone before we read it (no pre-images): its keys are unknown, so all go."""
    if full_document is None:
        return Change(everything=True)
    if collection == WORKSPACE_TABLE:
        account_id = full_document.get("instagram_account_id")
        return Change(
            instagram_account_ids=frozenset([str(account_id)] if account_id else []),
            workspace_ids=frozenset([full_document["_id"]]),
        )
    if collection == AUTOMATION_TABLE and full_document.get("workspace_id") is not None:
        return Change(workspace_ids=frozenset([full_document["workspace_id"]]))
    return Change(everything=True)
