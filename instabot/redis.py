"""One Redis connection pool per process, shared by intake, jobs and counters.

`django_rq.get_queue()` without a connection builds a new pool on every call; the web path must not.
Where Redis is (one server, or the master Sentinel names) comes from settings through `redis_target()`;
the clients themselves are built in instabot/redis_config.py.
"""

import threading

import redis
from django.conf import settings

from instabot.redis_config import RedisTarget, sync_client

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_target: RedisTarget | None = None


def redis_target() -> RedisTarget:
    """Read at each call, so that a test pointing REDIS_URL elsewhere is followed."""
    return RedisTarget(
        url=settings.REDIS_URL,
        sentinels=tuple((str(host), int(port)) for host, port in settings.REDIS_SENTINELS),
        master_name=settings.REDIS_SENTINEL_MASTER,
        sentinel_password=settings.REDIS_SENTINEL_PASSWORD,
    )


def get_redis() -> redis.Redis:
    global _client, _client_target
    target = redis_target()
    if _client is None or _client_target != target:
        with _lock:
            if _client is None or _client_target != target:
                _client = sync_client(
                    target,
                    socket_connect_timeout=settings.REDIS_SOCKET_CONNECT_TIMEOUT,
                    socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                    max_connections=max(settings.CONCURRENCY, 50) + 10,
                )
                _client_target = target
    return _client


def key(*parts: str) -> str:
    """A Redis key under Instabot's own prefix."""
    return ":".join((settings.INSTABOT_KEY_PREFIX, *parts))
