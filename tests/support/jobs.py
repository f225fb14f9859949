"""Job functions for worker tests: importable by path, as RQ needs."""

import time

from instabot.redis import get_redis, key


def record(name: str, seconds: float = 0.0) -> str:
    """Sleep, then append `name` to a Redis list the test reads."""
    if seconds:
        time.sleep(seconds)
    get_redis().rpush(key("test", "ran"), name)
    return name


def fail(name: str) -> None:
    get_redis().rpush(key("test", "ran"), name)
    raise RuntimeError(f"{name} failed on purpose")


def spin(seconds: float) -> None:
    """Busy in Python code (not in a C call), so an asynchronous timeout can land."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def ran() -> list[str]:
    return [item.decode() for item in get_redis().lrange(key("test", "ran"), 0, -1)]
