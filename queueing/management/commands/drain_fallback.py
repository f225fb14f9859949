from typing import Any

from django.core.management.base import BaseCommand

from queueing.fallback import fallback_relay


class Command(BaseCommand):
    help = "Move webhook events kept in the database fallback store into their priority queues."

    def handle(self, *args: Any, **options: Any) -> None:
        result = fallback_relay()
        self.stdout.write(
            f"relayed {result.relayed} event(s); {result.already_handed_over} already handed over by another relay"
        )
