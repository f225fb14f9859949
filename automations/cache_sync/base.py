"""What every change feed provides, the choice of feed, and the loop that runs one.

A feed is a class with `connect()`, `wait(timeout=...)` and `close()`; `errors` names the exceptions that
mean "the connection is gone". The loop reconnects after those (with a growing delay) and, after every
(re)connect including the first, invalidates every cached workspace and automation: whatever changed
while nobody listened is unknown.
"""

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from automations.cache import CACHE_ERRORS, cache_invalidate, cache_invalidate_all

logger = logging.getLogger(__name__)

# The feed each database gets unless CACHE_SYNC_FEED names another.
FEEDS_BY_VENDOR: dict[str, str] = {
    "postgresql": "automations.cache_sync.postgresql.PostgresFeed",
    "mongodb": "automations.cache_sync.mongodb.MongoChangeStreamFeed",
}
# Any database Django supports: polling the `updated_at` high-water mark.
DEFAULT_FEED = "automations.cache_sync.polling.PollingFeed"
MAX_RECONNECT_DELAY = 30.0
# How long one `wait` may block: also how soon a stop request is noticed.
WAIT_SECONDS = 0.5

WORKSPACE_TABLE = "automations_workspace"
AUTOMATION_TABLE = "automations_automation"


@dataclass(frozen=True)
class Change:
    """Which cache entries a change in the database may have made stale."""

    instagram_account_ids: frozenset[str] = field(default_factory=frozenset)
    # Primary keys: ints on SQL, ObjectIds on MongoDB.
    workspace_ids: frozenset[Any] = field(default_factory=frozenset)
    # Nobody said what changed.
    everything: bool = False


def change_from_rows(*, table: str, rows: Iterable[dict[str, Any] | None]) -> Change:
    """A change of rows (old and new versions, as dicts with `id`, and `instagram_account_id` or
    `workspace_id`) of the workspace or automation table."""
    present = [row for row in rows if row]
    if table == WORKSPACE_TABLE:
        return Change(
            instagram_account_ids=frozenset(
                str(r["instagram_account_id"]) for r in present if r.get("instagram_account_id")
            ),
            workspace_ids=frozenset(int(r["id"]) for r in present if r.get("id") is not None),
        )
    if table == AUTOMATION_TABLE:
        return Change(
            workspace_ids=frozenset(int(r["workspace_id"]) for r in present if r.get("workspace_id") is not None)
        )
    return Change(everything=True)


def change_from_json(payload: str) -> Change:
    """`{"table": ..., "op": ..., "old": {...}, "new": {...}}`; anything else invalidates everything."""
    try:
        data = json.loads(payload)
        if data.get("op") == "TRUNCATE":
            return Change(everything=True)
        return change_from_rows(table=str(data["table"]), rows=[data.get("old"), data.get("new")])
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.warning("unreadable change notification %r: invalidating everything", payload[:200])
        return Change(everything=True)


def changes_apply(*, changes: Iterable[Change]) -> None:
    """Invalidate, at once, what a batch of changes may have made stale."""
    account_ids: set[str] = set()
    workspace_ids: set[Any] = set()
    for change in changes:
        if change.everything:
            cache_invalidate_all()
            logger.info("invalidated every cached workspace and automation")
            return
        account_ids |= change.instagram_account_ids
        workspace_ids |= change.workspace_ids
    if account_ids or workspace_ids:
        cache_invalidate(instagram_account_ids=account_ids, workspace_ids=workspace_ids)
        logger.info(
            "invalidated accounts %s and automations of workspaces %s", sorted(account_ids), sorted(workspace_ids)
        )


class ChangeFeed(ABC):
    """One source of change notifications."""

    # Exceptions that mean the connection to the source is lost: the loop reconnects.
    errors: ClassVar[tuple[type[BaseException], ...]] = ()

    @abstractmethod
    def connect(self) -> None:
        """Open the connection and start following changes from now on."""

    @abstractmethod
    def wait(self, *, timeout: float) -> list[Change]:
        """Changes seen since the last call, blocking at most `timeout` seconds when there are none."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; safe to call when not connected."""

    def describe(self) -> str:
        return type(self).__name__


def feed_get() -> ChangeFeed:
    """CACHE_SYNC_FEED when set, otherwise the feed made for the database in use."""
    path = settings.CACHE_SYNC_FEED or FEEDS_BY_VENDOR.get(connection.vendor, DEFAULT_FEED)
    feed_class = import_string(path)
    feed: ChangeFeed = feed_class()
    return feed


def cache_sync_run(*, feed: ChangeFeed, stop: threading.Event, reconnect_delay: float) -> None:
    """Follow `feed` until `stop` is set, invalidating as changes arrive; never gives up on lost connections."""
    lost = (*feed.errors, *CACHE_ERRORS)
    delay = reconnect_delay
    connected = False
    while not stop.is_set():
        try:
            if not connected:
                feed.connect()
                connected = True
                logger.info("cache_sync: following %s", feed.describe())
                # Whatever changed while nobody listened is unknown.
                cache_invalidate_all()
                logger.info("invalidated every cached workspace and automation after connecting")
                delay = reconnect_delay
            changes = feed.wait(timeout=WAIT_SECONDS)
            if changes:
                changes_apply(changes=changes)
        except lost as exc:
            logger.warning(
                "cache_sync: connection lost (%s: %s); reconnecting in %.1fs", type(exc).__name__, exc, delay
            )
            connected = False
            _close_quietly(feed)
            stop.wait(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)
    _close_quietly(feed)
    logger.info("cache_sync: stopped")


def _close_quietly(feed: ChangeFeed) -> None:
    try:
        feed.close()
    except feed.errors:
        logger.debug("closing %s failed", feed.describe(), exc_info=True)
