"""Where Redis is, and every kind of client Instabot builds for it.

A `RedisTarget` is one Redis (`REDIS_URL`), or the master Redis Sentinel names (`REDIS_SENTINELS`,
`REDIS_SENTINEL_MASTER`, `REDIS_SENTINEL_PASSWORD`); with Sentinel, REDIS_URL gives only the
database number and the data nodes' credentials (`redis://:password@anything/0`). Everything that
talks to Redis is built here from one target: the shared synchronous client (instabot/redis.py), the
asyncio pool of workers and inline processing (automations/context.py), django-rq's RQ_QUEUES and
django-redis's CACHES (instabot/settings.py).

A Sentinel-backed pool asks the sentinels where the master is whenever it opens a connection, and a
connection that fails, or finds its server demoted to a replica, is closed: after a failover every
process reaches the new master with its next connection, without a restart. This module reads no
settings; callers pass what it needs.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.connection import parse_url

from instabot.redis_async import cancellable_connection_options, cancellable_sentinel_connection_options

# django-redis takes the master's name from its LOCATION's host part, which urllib lowercases.
_MASTER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class RedisTarget:
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    sentinel_password: str = ""

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def data_node_options(self) -> dict[str, Any]:
        """The database number and credentials of the data nodes, from REDIS_URL (Sentinel only)."""
        parts = parse_url(self.url)
        return {
            "db": int(parts.get("db", 0)),
            "username": parts.get("username"),
            "password": parts.get("password"),
        }

    def sentinel_options(self, *, socket_connect_timeout: float, socket_timeout: float) -> dict[str, Any]:
        """How to reach the sentinels themselves: the same timeouts, their own password."""
        return {
            "socket_connect_timeout": socket_connect_timeout,
            "socket_timeout": socket_timeout,
            "password": self.sentinel_password or None,
        }


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` as pairs; ValueError naming the item that is not one."""
    pairs = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        host = host.strip("[]")  # [::1]:26379
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
        pairs.append((host, int(port)))
    return tuple(pairs)


def validate_target(target: RedisTarget) -> None:
    """ValueError saying what is wrong with a Sentinel configuration (a single Redis is not checked here)."""
    if not target.uses_sentinel:
        return
    if not target.master_name:
        raise ValueError("REDIS_SENTINEL_MASTER must name the master when REDIS_SENTINELS is set")
    if not _MASTER_NAME.match(target.master_name):
        raise ValueError(
            "REDIS_SENTINEL_MASTER must be lowercase letters, digits, '.', '_' or '-' "
            f"(django-redis reads it as a host name), not {target.master_name!r}"
        )
    if urlsplit(target.url).scheme != "redis":
        raise ValueError("with REDIS_SENTINELS, REDIS_URL must be a redis:// URL (TLS and sockets are not supported)")


def sync_client(
    target: RedisTarget,
    *,
    socket_connect_timeout: float,
    socket_timeout: float,
    max_connections: int,
    health_check_interval: int = 30,
) -> redis.Redis:
    """A thread-safe client with its own pool, on the single Redis or on Sentinel's current master."""
    options: dict[str, Any] = {
        "socket_connect_timeout": socket_connect_timeout,
        "socket_timeout": socket_timeout,
        "health_check_interval": health_check_interval,
        "max_connections": max_connections,
    }
    if not target.uses_sentinel:
        return redis.Redis.from_url(target.url, **options)
    sentinel = redis.sentinel.Sentinel(
        list(target.sentinels),
        sentinel_kwargs=target.sentinel_options(
            socket_connect_timeout=socket_connect_timeout, socket_timeout=socket_timeout
        ),
    )
    client: redis.Redis = sentinel.master_for(target.master_name, **options, **target.data_node_options())
    return client


class BlockingSentinelConnectionPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """Sentinel's pool (connections to whichever server is master now) that makes callers wait for a free
    connection instead of failing, as the single-Redis pool of the worker does."""

    async def release(self, connection: Any) -> None:
        # A connection busy when the pool learnt of a new master still points at the old one, which may
        # be alive and take writes until Sentinel demotes it (a partition that healed): drop it, so that
        # it reconnects through the sentinels. redis-py's synchronous pool does this itself.
        if self.master_address is not None and (connection.host, connection.port) != self.master_address:
            await connection.disconnect()
        await super().release(connection)


def async_connection_pool(
    target: RedisTarget,
    *,
    max_connections: int,
    timeout: float,
    socket_connect_timeout: float,
    socket_timeout: float,
    health_check_interval: int = 30,
) -> redis.asyncio.ConnectionPool:
    """A bounded asyncio pool: callers wait up to `timeout` seconds for a free connection. Its connections'
    writes can be cancelled on Python 3.11 too (instabot/redis_async.py)."""
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "socket_timeout": socket_timeout,
        "health_check_interval": health_check_interval,
    }
    if not target.uses_sentinel:
        return redis.asyncio.BlockingConnectionPool.from_url(
            target.url, **options, **cancellable_connection_options(target.url)
        )
    sentinel = redis.asyncio.sentinel.Sentinel(
        list(target.sentinels),
        sentinel_kwargs=target.sentinel_options(
            socket_connect_timeout=socket_connect_timeout, socket_timeout=socket_timeout
        ),
    )
    return BlockingSentinelConnectionPool(
        target.master_name,
        sentinel,
        is_master=True,
        **options,
        **target.data_node_options(),
        **cancellable_sentinel_connection_options(),
    )


def rq_queue_config(
    target: RedisTarget, *, default_timeout: int, socket_connect_timeout: float, socket_timeout: float
) -> dict[str, Any]:
    """One entry of django-rq's RQ_QUEUES (the connection of `rqworker` and of the /admin/rq/ pages)."""
    if not target.uses_sentinel:
        return {"URL": target.url, "DEFAULT_TIMEOUT": default_timeout}
    node = target.data_node_options()
    return {
        "SENTINELS": [list(pair) for pair in target.sentinels],
        "MASTER_NAME": target.master_name,
        "DB": node["db"],
        "USERNAME": node["username"],
        "PASSWORD": node["password"],
        # No SOCKET_TIMEOUT: RQ sets its own on the connections it blocks on.
        "CONNECTION_KWARGS": {"socket_connect_timeout": socket_connect_timeout, "health_check_interval": 30},
        "SENTINEL_KWARGS": target.sentinel_options(
            socket_connect_timeout=socket_connect_timeout, socket_timeout=socket_timeout
        ),
        "DEFAULT_TIMEOUT": default_timeout,
    }


def cache_config(
    target: RedisTarget, *, key_prefix: str, socket_connect_timeout: float, socket_timeout: float
) -> dict[str, Any]:
    """django-redis's CACHES["default"]; under Sentinel it reads and writes the master only (a replica
    may lag behind an invalidation)."""
    options: dict[str, Any] = {"SOCKET_CONNECT_TIMEOUT": socket_connect_timeout, "SOCKET_TIMEOUT": socket_timeout}
    location = target.url
    if target.uses_sentinel:
        parts = urlsplit(target.url)
        credentials = parts.netloc.rpartition("@")[0]
        location = f"redis://{credentials + '@' if credentials else ''}{target.master_name}{parts.path or '/0'}"
        options |= {
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": list(target.sentinels),
            "SENTINEL_KWARGS": target.sentinel_options(
                socket_connect_timeout=socket_connect_timeout, socket_timeout=socket_timeout
            ),
        }
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": key_prefix,
        "OPTIONS": options,
    }
