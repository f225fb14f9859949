"""PostgreSQL: triggers (migration 0003) NOTIFY on every insert, update, delete and truncate of the
workspace and automation tables; this feed LISTENs on its own connection (psycopg 3).

A notification carries the old and new `id`, `workspace_id` and `instagram_account_id` of the row (never
its token), so only the affected entries are invalidated. Notifications sent while the connection is down
are lost: the loop invalidates everything after reconnecting.
"""

from typing import Any

import psycopg
from django.db import connection

from automations.cache_sync.base import Change, ChangeFeed, change_from_json

# The channel the triggers of migration 0003 notify. Channels are per database.
CHANNEL = "instabot_cache_sync"
# Django-only options that psycopg.connect does not take.
_DJANGO_OPTIONS = {"isolation_level", "server_side_binding", "pool", "assume_role"}


def connection_params() -> dict[str, Any]:
    """psycopg.connect() arguments for Django's default database."""
    db = connection.settings_dict
    params: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "host": db["HOST"],
        "port": db["PORT"],
    }
    params = {name: value for name, value in params.items() if value not in (None, "")}
    params.update({name: value for name, value in db.get("OPTIONS", {}).items() if name not in _DJANGO_OPTIONS})
    params.setdefault("connect_timeout", 5)
    # Names the listener in pg_stat_activity.
    params.setdefault("application_name", "instabot-cache-sync")
    return params


class PostgresFeed(ChangeFeed):
    errors = (psycopg.Error, OSError)

    def __init__(self) -> None:
        self._conn: psycopg.Connection[Any] | None = None

    def connect(self) -> None:
        self._conn = psycopg.connect(**connection_params(), autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, *, timeout: float) -> list[Change]:
        conn = self._conn
        if conn is None:
            raise psycopg.OperationalError("not connected")
        payloads = [notify.payload for notify in conn.notifies(timeout=timeout, stop_after=1)]
        if payloads:
            # Take what else has arrived already, so that a burst is applied as one batch.
            payloads += [notify.payload for notify in conn.notifies(timeout=0.01, stop_after=1000)]
        else:
            # Quiet: make sure the connection is still there, or a lost one would go unnoticed.
            conn.execute("SELECT 1")
        return [change_from_json(payload) for payload in payloads]

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def describe(self) -> str:
        db = connection.settings_dict
        return f"PostgreSQL LISTEN {CHANNEL} on {db['NAME']}@{db['HOST'] or 'localhost'}"
