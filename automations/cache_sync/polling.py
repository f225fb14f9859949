"""Any database: poll the `updated_at` high-water mark of the workspace and automation tables.

Every CACHE_SYNC_POLL_INTERVAL seconds it reads the rows whose `updated_at` is at or after the highest
seen, less a lookback (a transaction may commit a while after it stamped its rows); a row seen before
with the same stamp is skipped. It remembers each row's account id or workspace, so a row moved by a
write is invalidated where it was too. Deletes leave no stamp: a row count lower than the rows it knows
makes it compare ids and invalidate what disappeared.

`updated_at` must change with every write. Django's save() stamps it; on SQLite and PostgreSQL triggers
(migration 0003) stamp the rows that QuerySet.update() and raw SQL change without doing so. On other
databases, writers outside Django must set it themselves.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.db.models import Model

from automations.cache_sync.base import AUTOMATION_TABLE, WORKSPACE_TABLE, Change, ChangeFeed, change_from_rows
from automations.models import Automation, Workspace

LOOKBACK = timedelta(seconds=10)


@dataclass
class _TableState:
    """What the feed knows of one table: each row's cache-relevant value and stamp, and the highest stamp."""

    model: type[Model]
    table: str
    # The column that names the affected entries: `instagram_account_id` or `workspace_id`.
    column: str
    rows: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    mark: datetime | None = None

    def _read(self, *, since: datetime | None = None) -> dict[int, tuple[str, datetime]]:
        queryset = self.model._default_manager.all()
        if since is not None:
            queryset = queryset.filter(updated_at__gte=since)
        return {pk: (str(value), stamp) for pk, value, stamp in queryset.values_list("pk", self.column, "updated_at")}

    def load(self) -> None:
        self.rows = self._read()
        self.mark = max((stamp for _, stamp in self.rows.values()), default=None)

    def poll(self) -> Change | None:
        """The change since the last poll, if any."""
        touched: list[dict[str, object]] = []
        since = self.mark - LOOKBACK if self.mark is not None else None
        for pk, (value, stamp) in self._read(since=since).items():
            previous = self.rows.get(pk)
            if previous == (value, stamp):
                continue
            touched.append({"id": pk, self.column: value})
            if previous is not None and previous[0] != value:
                touched.append({"id": pk, self.column: previous[0]})
            self.rows[pk] = (value, stamp)
            self.mark = stamp if self.mark is None else max(self.mark, stamp)
        if self.model._default_manager.count() != len(self.rows):
            # Rows were deleted (or inserted with an old stamp): compare ids.
            current = self._read()
            for pk in self.rows.keys() ^ current.keys():
                value = (self.rows.get(pk) or current[pk])[0]
                touched.append({"id": pk, self.column: value})
            self.rows = current
        if not touched:
            return None
        return change_from_rows(table=self.table, rows=touched)


class PollingFeed(ChangeFeed):
    errors = (DatabaseError,)

    def __init__(self) -> None:
        self.interval = settings.CACHE_SYNC_POLL_INTERVAL
        self._tables = [
            _TableState(model=Workspace, table=WORKSPACE_TABLE, column="instagram_account_id"),
            _TableState(model=Automation, table=AUTOMATION_TABLE, column="workspace_id"),
        ]
        self._next_poll = 0.0

    def connect(self) -> None:
        connection.ensure_connection()
        for table in self._tables:
            table.load()
        self._next_poll = time.monotonic() + self.interval

    def wait(self, *, timeout: float) -> list[Change]:
        remaining = self._next_poll - time.monotonic()
        if remaining > 0:
            time.sleep(min(remaining, timeout))
            if remaining > timeout:
                return []
        self._next_poll = time.monotonic() + self.interval
        return [change for table in self._tables if (change := table.poll()) is not None]

    def close(self) -> None:
        connection.close()

    def describe(self) -> str:
        return f"polling {connection.vendor} every {self.interval}s"
