import logging
import os
import signal
import socket
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from automations.activity_store import (
    StoreResult,
    activity_drain,
    activity_drainer_announce,
    activity_drainer_withdraw,
    activity_purge,
    activity_purge_if_due,
)

logger = logging.getLogger(__name__)

# The most entries one round of --forever moves (a few seconds of a busy deployment's sends).
ROUND_LIMIT = 20_000


class Command(BaseCommand):
    help = (
        "Move the recorded activity (sends and misses) from Redis into the database now; workers do it every "
        "few seconds. --forever keeps doing it every --interval seconds until SIGTERM or Ctrl-C, and the "
        "workers leave the drain to this process while it runs. --purge also deletes rows older than "
        "ACTIVITY_RETENTION_DAYS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--purge", action="store_true", help="Delete rows past retention too.")
        parser.add_argument("--forever", action="store_true", help="Keep draining until stopped.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between rounds (--forever).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["forever"]:
            self._forever(interval=options["interval"])
            return
        total = _drain_all()
        self.stdout.write(
            f"stored {total.activities} activity entries and {total.misses} misses; skipped {total.skipped}"
        )
        if options["purge"]:
            purged = activity_purge()
            self.stdout.write(f"purged {purged.activities} activity entries and {purged.misses} misses")

    def _forever(self, *, interval: float) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        name = f"{socket.gethostname()}:{os.getpid()}"
        self.stdout.write(f"draining the activity log every {interval:g} s as {name}", ending="\n")
        self.stdout.flush()
        try:
            while not stop.is_set():
                try:
                    # Announced every round, so a round is bounded (ROUND_LIMIT entries) well within
                    # the presence's DRAINER_PRESENCE_SECONDS.
                    activity_drainer_announce(name=name)
                    activity_drain(limit=ROUND_LIMIT)
                    activity_purge_if_due()
                except Exception as exc:  # Redis or the database away: the entries wait in Redis
                    logger.warning("activity drain failed (%s: %s); trying again", type(exc).__name__, exc)
                    close_old_connections()
                stop.wait(interval)
        finally:
            try:
                activity_drainer_withdraw(name=name)
            except Exception:  # noqa: S110 - the presence runs out by itself
                pass
        self.stdout.write("stopped", ending="\n")


def _drain_all() -> StoreResult:
    total = StoreResult()
    while True:
        result = activity_drain()
        total.add(result)
        if not (result.activities or result.misses or result.skipped):
            return total
