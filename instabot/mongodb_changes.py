"""Follow MongoDB change streams of some collections, resuming where the last run stopped.

The seam for `manage.py cache_sync` on MongoDB: a feed there wraps a `ChangeStreamFollower` and turns
its callbacks into cache invalidations. The follower knows nothing of caches:

- `listener.on_change(collection=..., document_key=..., full_document=...)` for every insert, update,
  replace and delete in a watched collection (`full_document` is the document after the change, looked
  up at read time, or None when it is gone);
- `listener.on_history_lost()` when the follower cannot know what changed: on the first start (no
  saved token), when the saved token can no longer be resumed from (the oplog has moved past it), and
  when the stream is invalidated (a watched collection dropped or renamed). The listener should then
  treat everything as changed.

After each batch the follower saves the stream's resume token in the collection `TOKENS_COLLECTION`
(one document per follower name), so that a restart resumes from there without missing an edit.
Change streams need a replica set (a single-node one is enough) or a sharded cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pymongo.change_stream import DatabaseChangeStream
from pymongo.database import Database
from pymongo.errors import OperationFailure

logger = logging.getLogger(__name__)

TOKENS_COLLECTION = "instabot_change_stream_tokens"
DOCUMENT_EVENTS = frozenset({"insert", "update", "replace", "delete"})
# Events after which the stream is closed or the collection's history is meaningless.
STREAM_ENDING_EVENTS = frozenset({"drop", "rename", "dropDatabase", "invalidate"})


class ChangeListener(Protocol):
    def on_change(
        self, *, collection: str, document_key: Mapping[str, Any], full_document: Mapping[str, Any] | None
    ) -> None: ...

    def on_history_lost(self) -> None: ...


class ResumeTokenStore:
    """Resume tokens, one per follower name, in a collection of the followed database."""

    def __init__(self, *, database: Database[Any], collection: str = TOKENS_COLLECTION) -> None:
        self._collection = database[collection]

    def load(self, *, name: str) -> Mapping[str, Any] | None:
        document = self._collection.find_one({"_id": name})
        return document["token"] if document else None

    def save(self, *, name: str, token: Mapping[str, Any]) -> None:
        self._collection.replace_one({"_id": name}, {"_id": name, "token": token}, upsert=True)

    def clear(self, *, name: str) -> None:
        self._collection.delete_one({"_id": name})


class ChangeStreamFollower:
    """Deliver the changes of `collections` in `database` to `listener`; `open()`, then `poll()` in a loop."""

    def __init__(
        self,
        *,
        database: Database[Any],
        collections: Sequence[str],
        listener: ChangeListener,
        name: str = "cache_sync",
        tokens: ResumeTokenStore | None = None,
        max_wait_seconds: float = 0.5,
    ) -> None:
        self.database = database
        self.collections = list(collections)
        self.listener = listener
        self.name = name
        self.tokens = tokens or ResumeTokenStore(database=database)
        # How long one poll() waits for a first change when there is none.
        self.max_wait_ms = max(1, int(max_wait_seconds * 1000))
        self._stream: DatabaseChangeStream[Any] | None = None
        self._saved: Mapping[str, Any] | None = None

    def open(self) -> None:
        """Start following: from the saved token when it can be resumed from, from now otherwise."""
        token = self.tokens.load(name=self.name)
        if token is not None:
            try:
                self._stream = self._watch(resume_after=token)
                self._saved = token
                logger.info("change stream %s resumed from its saved token", self.name)
                return
            except OperationFailure as exc:
                # ChangeStreamHistoryLost (286) and kin: what happened since the token is unknown.
                logger.warning("change stream %s cannot resume (%s): treating everything as changed", self.name, exc)
        self._start_from_now()

    def poll(self) -> int:
        """Deliver what changed since the last poll, waiting at most about `max_wait_seconds` for a first
        change; return how many changes were delivered."""
        if self._stream is None:
            raise RuntimeError("open() the follower first")
        delivered = 0
        stream = self._stream
        while True:
            change = stream.try_next()
            if change is None:
                break
            operation = change.get("operationType")
            if operation in DOCUMENT_EVENTS:
                self.listener.on_change(
                    collection=change["ns"]["coll"],
                    document_key=change["documentKey"],
                    full_document=change.get("fullDocument"),
                )
                delivered += 1
            elif operation in STREAM_ENDING_EVENTS:
                logger.warning("change stream %s got %s: treating everything as changed", self.name, operation)
                self.close()
                self._start_from_now()
                return delivered
            stream_token = stream.resume_token
            if stream_token is not None and stream_token != self._saved:
                self._save(stream_token)
        # An idle stream's token still moves forward: saving it keeps a restart inside the oplog's window.
        if stream.resume_token is not None and stream.resume_token != self._saved:
            self._save(stream.resume_token)
        return delivered

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _start_from_now(self) -> None:
        self.tokens.clear(name=self.name)
        self._saved = None
        self._stream = self._watch(resume_after=None)
        # Whatever changed before now is unknown to this follower.
        self.listener.on_history_lost()
        if self._stream.resume_token is not None:
            self._save(self._stream.resume_token)

    def _watch(self, *, resume_after: Mapping[str, Any] | None) -> DatabaseChangeStream[Any]:
        pipeline = [
            {
                "$match": {
                    "$or": [
                        {"ns.coll": {"$in": self.collections}},
                        {"operationType": {"$in": sorted(STREAM_ENDING_EVENTS)}},
                    ]
                }
            }
        ]
        return self.database.watch(
            pipeline, full_document="updateLookup", resume_after=resume_after, max_await_time_ms=self.max_wait_ms
        )

    def _save(self, token: Mapping[str, Any]) -> None:
        self.tokens.save(name=self.name, token=token)
        self._saved = token
