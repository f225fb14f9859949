"""One Redis connection pool per process, shared by intake, jobs and counters.

`django_rq.get_queue()` without a connection builds a new pool on every call; the web path must not.
"""

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_url: str | None = None


def get_redis() -> redis.Redis:
    global _client, _client_url
    url = settings.REDIS_URL
    if _client is None or _client_url != url:
        with _lock:
            if _client is None or _client_url != url:
                _client = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=settings.REDIS_SOCKET_CONNECT_TIMEOUT,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    health_check_interval=30,
                    max_connections=max(settings.CONCURRENCY, 50) + 10,
                )
                _client_url = url
    return _client


def key(*parts: str) -> str:
    """A Redis key under Instabot's own prefix."""
    return ":".join((settings.INSTABOT_KEY_PREFIX, *parts))
