from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from automations.cache import DATASETS
from automations.stats import cache_stats_get, cache_stats_reset


class Command(BaseCommand):
    help = "Hits and misses of the worker's cache per dataset, as counted by Instabot in Redis."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="set the counters to zero after printing them")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{'dataset':<12} {'hits':>10} {'misses':>10} {'hit rate':>9}")
        for row in cache_stats_get(datasets=DATASETS):
            rate = "-" if row["hit_rate"] is None else f"{row['hit_rate']}%"
            self.stdout.write(f"{row['dataset']!s:<12} {row['hits']!s:>10} {row['misses']!s:>10} {rate:>9}")
        if options["reset"]:
            cache_stats_reset()
            self.stdout.write("counters reset")
