"""Readiness: does this process reach the database and Redis right now, within a short deadline?

Each check runs in its own short-lived thread so that a server that accepts connections but never
answers costs the caller `timeout` seconds, not the driver's own timeouts (MongoDB's 30 s server
selection, a PostgreSQL query without a statement timeout).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections

from instabot.redis import get_redis

logger = logging.getLogger(__name__)

OK = "ok"
DISABLED = "disabled"


@dataclass(frozen=True)
class Readiness:
    # check name -> "ok", "disabled", or why it failed (an exception class name or "timeout").
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return sorted(name for name, result in self.checks.items() if result not in (OK, DISABLED))

    @property
    def ready(self) -> bool:
        return not self.failed


def _database_ping() -> None:
    connection = connections["default"]
    try:
        if connection.vendor == "mongodb":
            connection.database.command("ping")  # type: ignore[attr-defined]
        else:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    finally:
        # This thread ends now: its connection must not outlive it (PostgreSQL counts it until closed).
        connection.close()


def _redis_ping() -> None:
    get_redis().ping()


def _run_with_deadline(checks: dict[str, Callable[[], None]], *, timeout: float) -> dict[str, str]:
    results: dict[str, str] = {}
    lock = threading.Lock()

    def run(name: str, check: Callable[[], None]) -> None:
        try:
            check()
            outcome = OK
        except Exception as exc:  # any driver's error: only its class name is reported (never a URL)
            outcome = type(exc).__name__
        with lock:
            results[name] = outcome

    threads = [threading.Thread(target=run, args=(name, check), daemon=True) for name, check in checks.items()]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return {name: results.get(name, "timeout") for name in checks}


_last_failed: list[str] = []


def readiness_check(*, timeout: float | None = None) -> Readiness:
    """Ping the database and Redis (Redis only where the queue system uses it)."""
    global _last_failed
    checks: dict[str, Callable[[], None]] = {"database": _database_ping}
    if settings.REDIS_ENABLED:
        checks["redis"] = _redis_ping
    results = _run_with_deadline(checks, timeout=settings.READINESS_TIMEOUT_SECONDS if timeout is None else timeout)
    if not settings.REDIS_ENABLED:
        results["redis"] = DISABLED
    readiness = Readiness(checks=results)
    # Logged when it changes, not per probe: a platform probes every few seconds.
    if readiness.failed != _last_failed:
        if readiness.failed:
            logger.warning("not ready: %s", ", ".join(f"{name} {results[name]}" for name in readiness.failed))
        else:
            logger.warning("ready again")
        _last_failed = readiness.failed
    return readiness
