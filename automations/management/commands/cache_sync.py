import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from automations.cache_sync.base import cache_sync_run, feed_get


class Command(BaseCommand):
    help = (
        "Follow the database's changes and invalidate the cache entries they make stale "
        "(writes that bypass Django's signals). Runs until SIGTERM or Ctrl-C."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        cache_sync_run(feed=feed_get(), stop=stop, reconnect_delay=settings.CACHE_SYNC_RECONNECT_DELAY)
