"""When a transient failure is tried again."""

import random

# Seeding a new generator reads the OS's entropy: once per process is enough for jitter.
_jitter = random.Random()  # noqa: S311 - jitter, not cryptography


def backoff_intervals(*, attempts: int, base: float, cap: float, rng: random.Random | None = None) -> list[int]:
    """Seconds before each retry: exponential, capped, with up to 50 % jitter so retries spread out.

    RQ's `Retry` takes fixed intervals, so the whole schedule is computed when the job is queued.
    """
    rng = rng or _jitter
    intervals = []
    for attempt in range(max(attempts - 1, 0)):
        delay = min(cap, base * (2**attempt))
        intervals.append(max(1, round(delay * (1 + rng.random() * 0.5))))
    return intervals
