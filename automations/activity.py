"""Recording what Instabot did (sends and misses) without slowing the work down.

`activity_record` and `miss_record` only append a dict to this process's buffer: no I/O, thread-safe,
callable from threads and coroutines alike. A daemon thread (started on first use in each process)
writes the buffer to the Redis list `{prefix}:activity:entries` in one RPUSH at least every
`ACTIVITY_FLUSH_INTERVAL_SECONDS` (1 s); workers move that list into the database
(`automations.activity_store.activity_drain`). Without Redis (`REDIS_ENABLED=false`, or while it is
unreachable) the thread writes to the database itself.

What a crash may lose: a process killed outright (SIGKILL, OOM) loses what it recorded since its last
flush, at most one interval's worth; a clean exit flushes first (atexit). Once in Redis, entries are as
durable as Redis (appendonly) and are never lost by a drain. Recording never fails the work it records:
if neither Redis nor the database takes the entries, the buffer keeps up to MAX_BUFFERED_ENTRIES and
drops the oldest beyond that, with a warning.
"""

import atexit
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import close_old_connections

from automations.activity_store import ACTIVITY, MISS, activity_entries_store, entries_key, new_record_id
from automations.models import ActivityStatus
from instabot.ids import PrimaryKey
from instabot.redis import get_redis
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)

MAX_BUFFERED_ENTRIES = 100_000
# The most entries one RPUSH carries.
FLUSH_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class SendActivity:
    """Who and what a send is for; `send_once` adds the action, the outcome and the time."""

    workspace_id: PrimaryKey
    automation_id: PrimaryKey | None
    kind: str
    recipient: str
    received_at: float

    @classmethod
    def for_event(
        cls, *, workspace_id: PrimaryKey, automation_id: PrimaryKey | None, event: InstagramEvent
    ) -> "SendActivity":
        """Replies to `event` go to its sender (or commenter)."""
        return cls(
            workspace_id=workspace_id,
            automation_id=automation_id,
            kind=str(event.kind),
            recipient=event.sender_id,
            received_at=event.received_at,
        )


def activity_record(
    *,
    workspace_id: PrimaryKey,
    automation_id: PrimaryKey | None,
    kind: str,
    event_id: str,
    action: str,
    recipient: str,
    status: str,
    graph_message_id: str = "",
    detail: str = "",
    received_at: float = 0.0,
    sent_at: float | None = None,
) -> None:
    """One send made (or decided against) for one event. `received_at`, `sent_at`: epoch seconds."""
    if not settings.ACTIVITY_LOG_ENABLED:
        return
    _recorder.append(
        {
            "type": ACTIVITY,
            "workspace": workspace_id,
            "automation": automation_id,
            "kind": kind,
            "event_id": event_id,
            "action": action,
            "recipient": recipient,
            "status": status,
            "graph_message_id": graph_message_id,
            "detail": detail,
            "received_at": received_at,
            "sent_at": sent_at if sent_at is not None else time.time(),
        }
    )


def send_activity_record(
    activity: SendActivity | None,
    *,
    event_id: str,
    action: str,
    status: ActivityStatus,
    graph_message_id: str = "",
    detail: str = "",
) -> None:
    """`activity_record` for one outcome of `send_once`; nothing when the send has no activity to log."""
    if activity is None:
        return
    activity_record(
        workspace_id=activity.workspace_id,
        automation_id=activity.automation_id,
        kind=activity.kind,
        event_id=event_id,
        action=action,
        recipient=activity.recipient,
        status=str(status),
        received_at=activity.received_at,
        graph_message_id=graph_message_id,
        detail=detail,
    )


def miss_record(
    *, workspace_id: PrimaryKey, kind: str, event_id: str, sender: str, text: str, received_at: float = 0.0
) -> None:
    """An event of this workspace that no automation matched."""
    if not settings.ACTIVITY_LOG_ENABLED:
        return
    _recorder.append(
        {
            "type": MISS,
            "workspace": workspace_id,
            "kind": kind,
            "event_id": event_id,
            "sender": sender,
            "text": text,
            "received_at": received_at,
            "recorded_at": time.time(),
        }
    )


def event_miss_record(*, workspace_id: PrimaryKey, event: InstagramEvent) -> None:
    miss_record(
        workspace_id=workspace_id,
        kind=str(event.kind),
        event_id=event.event_id,
        sender=event.sender_id,
        text=event.text,
        received_at=event.received_at,
    )


def activity_flush() -> int:
    """Write what this process recorded to Redis (or the database) now. Returns how many were written."""
    return _recorder.flush()


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: deque[dict[str, Any]] = deque(maxlen=MAX_BUFFERED_ENTRIES)
        self.dropped = 0
        self.failing = False
        self.flush_lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.wakeup = threading.Event()

    def append(self, entry: dict[str, Any]) -> None:
        if self.thread is None:
            self._start()
        with self.lock:
            if len(self.entries) == MAX_BUFFERED_ENTRIES:
                self.dropped += 1
            self.entries.append(entry)

    def _start(self) -> None:
        with self.lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self._run, name="activity-flusher", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            self.wakeup.wait(settings.ACTIVITY_FLUSH_INTERVAL_SECONDS)
            self.wakeup.clear()
            try:
                self.flush()
            except Exception:  # the thread must survive anything; the entries stay buffered
                logger.exception("activity flush failed")
            finally:
                close_old_connections()  # this thread's, opened only when it wrote to the database

    def _take(self) -> list[dict[str, Any]]:
        with self.lock:
            entries = list(self.entries)
            self.entries.clear()
            dropped, self.dropped = self.dropped, 0
        if dropped:
            logger.warning("activity buffer full: dropped the %d oldest entries", dropped)
        return entries

    def _give_back(self, entries: list[dict[str, Any]]) -> None:
        with self.lock:
            # Older entries go first; beyond the limit the oldest are dropped.
            newer = list(self.entries)
            self.entries.clear()
            for entry in entries + newer:
                if len(self.entries) == MAX_BUFFERED_ENTRIES:
                    self.dropped += 1
                self.entries.append(entry)

    def flush(self) -> int:
        # One flush at a time, so that entries taken by one are never overtaken by the next.
        with self.flush_lock:
            entries = self._take()
            if not entries:
                return 0
            for entry in entries:
                entry.setdefault("record_id", new_record_id())
            try:
                self._write(entries)
            except Exception as exc:  # any backend's failure: keep the entries for the next round
                self._give_back(entries)
                if not self.failing:
                    logger.warning("activity log: could not write %d entries (%s); retrying", len(entries), exc)
                self.failing = True
                return 0
            if self.failing:
                logger.warning("activity log: writing again")
            self.failing = False
            return len(entries)

    def _write(self, entries: list[dict[str, Any]]) -> None:
        if settings.REDIS_ENABLED:
            try:
                encoded = [json.dumps(entry, default=str, separators=(",", ":")) for entry in entries]
                client = get_redis()
                for start in range(0, len(encoded), FLUSH_CHUNK):
                    client.rpush(entries_key(), *encoded[start : start + FLUSH_CHUNK])
                return
            except redis.RedisError as exc:
                logger.debug("activity log: Redis unavailable (%s), writing to the database", exc)
        # No Redis: straight into the database, from this thread (never from the job's).
        activity_entries_store(entries=entries)

    def after_fork_in_child(self) -> None:
        # The parent flushes what it recorded; the child starts empty, with a thread of its own.
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.entries = deque(maxlen=MAX_BUFFERED_ENTRIES)
        self.dropped = 0
        self.thread = None
        self.wakeup = threading.Event()


_recorder = _Recorder()
os.register_at_fork(after_in_child=_recorder.after_fork_in_child)
atexit.register(activity_flush)
