"""The RQ worker class `manage.py rqworker` uses (settings.RQ["WORKER_CLASS"]).

On top of RQ's own worker it always runs RQ's scheduler (retries with backoff and deferred sends
are scheduled jobs, and operators start workers without extra flags) and, in a background thread,
the relay that moves database fallback events back into the queues once Redis answers again.
"""

import logging
import threading
from typing import Any

from django.conf import settings
from rq.worker import Worker

from queueing.fallback import fallback_relay_safely

logger = logging.getLogger(__name__)


class FallbackRelayThread(threading.Thread):
    def __init__(self, *, interval_seconds: float) -> None:
        super().__init__(name="fallback-relay", daemon=True)
        self.interval_seconds = interval_seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval_seconds):
            fallback_relay_safely()

    def stop(self) -> None:
        self.stopping.set()


class InstabotWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # RQ looks for abandoned jobs of killed workers only during maintenance: every 10 minutes
        # by default, too rare for events people wait on.
        kwargs.setdefault("maintenance_interval", settings.WORKER_MAINTENANCE_INTERVAL_SECONDS)
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker blocks in BLPOP for this long between maintenance rounds (recovering
        # abandoned jobs, taking over the scheduler of a dead worker): RQ's 405 s is too long.
        return max(1, min(int(super().dequeue_timeout), settings.WORKER_MAINTENANCE_INTERVAL_SECONDS))

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        # RQ adds a fixed 60 s of grace to every heartbeat; the setting makes it tunable.
        ttl = int(super().get_heartbeat_ttl(job, working_time)) - 60
        return ttl + settings.WORKER_HEARTBEAT_GRACE_SECONDS

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs["with_scheduler"] = True
        relay = FallbackRelayThread(interval_seconds=settings.FALLBACK_RELAY_INTERVAL_SECONDS)
        relay.start()
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            relay.stop()
