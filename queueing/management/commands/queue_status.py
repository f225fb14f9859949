import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queueing.selectors import queue_status_get


class Command(BaseCommand):
    help = "Queues, dead letters, fallback backlog, workers, event counts and send limits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="One JSON document, for machines.")

    def handle(self, *args: Any, **options: Any) -> None:
        status = queue_status_get()
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
            return
        self.stdout.write(f"{'queue':<10}{'waiting':>9}{'started':>9}{'scheduled':>11}{'failed':>8}{'finished':>10}")
        for name, counts in status["queues"].items():
            self.stdout.write(
                f"{name:<10}{counts['waiting']:>9}{counts['started']:>9}{counts['scheduled']:>11}"
                f"{counts['failed']:>8}{counts['finished']:>10}"
            )
        backlog = status["fallback_backlog"]
        self.stdout.write(f"dead letters ({status['dead_letters']['queue']}): {status['dead_letters']['count']}")
        self.stdout.write(f"fallback backlog: {'unknown (database unavailable)' if backlog is None else backlog}")
        self.stdout.write(f"workers: {len(status['workers'])}")
        for worker in status["workers"]:
            self.stdout.write(f"  {worker['name']}  {worker['state']}  {','.join(worker['queues'])}")
        events = status["events"]
        self.stdout.write("events: " + (", ".join(f"{k}={v}" for k, v in sorted(events.items())) or "none yet"))
        rates = [
            f"{row['dataset']} {row['hit_rate']}% of {row['hits'] + row['misses']}"
            for row in status["cache"]
            if row["hit_rate"] is not None
        ]
        self.stdout.write("cache hit rates: " + (", ".join(rates) or "no lookups yet"))
        limits = status["send_limits"]
        self.stdout.write(
            f"send limits: {len(limits['paused_accounts'])} account(s) paused, "
            f"{limits['deferred_total']} send(s) deferred so far, {limits['scheduled_now']} scheduled now"
        )
