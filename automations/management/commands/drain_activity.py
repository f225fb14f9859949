from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from automations.activity_store import StoreResult, activity_drain, activity_purge


class Command(BaseCommand):
    help = (
        "Move the recorded activity (sends and misses) from Redis into the database now; workers do it every "
        "few seconds. --purge also deletes rows older than ACTIVITY_RETENTION_DAYS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--purge", action="store_true", help="Delete rows past retention too.")

    def handle(self, *args: Any, **options: Any) -> None:
        total = StoreResult()
        while True:
            result = activity_drain()
            total.add(result)
            if not (result.activities or result.misses or result.skipped):
                break
        self.stdout.write(
            f"stored {total.activities} activity entries and {total.misses} misses; skipped {total.skipped}"
        )
        if options["purge"]:
            purged = activity_purge()
            self.stdout.write(f"purged {purged.activities} activity entries and {purged.misses} misses")
