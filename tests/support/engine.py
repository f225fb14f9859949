"""Run the worker engine in the test's own process, bounded in time."""

import signal

from instabot.redis import get_redis
from queueing.queues import QUEUE_NAMES, get_queue
from queueing.workers import InstabotWorker


def _burst_took_too_long(signum: int, frame: object) -> None:
    raise TimeoutError("the worker's burst did not end within 60 s")


def run_engine_burst(*, concurrency: int = 10) -> None:
    """`InstabotWorker(...).work(burst=True)` on the real queues; restores the signal handlers it sets."""
    queues = [get_queue(name) for name in QUEUE_NAMES]
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # A burst that never ends fails the test instead of hanging the run.
    signal.signal(signal.SIGALRM, _burst_took_too_long)
    signal.alarm(60)
    try:
        InstabotWorker(queues, connection=get_redis(), concurrency=concurrency).work(burst=True)
    finally:
        signal.alarm(0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
