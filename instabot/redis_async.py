"""Asyncio Redis connections whose writes can be cancelled on every supported Python.

redis-py bounds each socket write with `asyncio.wait_for`. On Python 3.11 that function drops a
cancellation that lands just as the wrapped write completes (fixed in 3.12 by rebuilding it on
`asyncio.timeout`), and a busy task spends much of its time in that window: measured here, 50 tasks
sending commands in a loop all went on after being cancelled. A worker's stop, a job's timeout
and every bounded step rely on cancellation, so the connections below bound the write with
`asyncio.timeout` instead: the same limit, and a cancellation always arrives.
"""

import asyncio
import sys
from collections.abc import Iterable
from typing import Any

import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions


class _CancellableWrites:
    socket_timeout: float | None

    async def send_packed_command(self, command: bytes | str | Iterable[bytes], check_health: bool = True) -> None:
        timeout = self.socket_timeout
        if not timeout:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        # Without a socket timeout redis-py writes directly; the whole send (and a health check's
        # PING) is bounded here instead. The connection is used by one coroutine at a time.
        self.socket_timeout = None
        try:
            async with asyncio.timeout(timeout):
                await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except TimeoutError:
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


class CancellableConnection(_CancellableWrites, redis.asyncio.Connection):
    pass


class CancellableSSLConnection(_CancellableWrites, redis.asyncio.SSLConnection):
    pass


class CancellableSentinelManagedConnection(_CancellableWrites, redis.asyncio.sentinel.SentinelManagedConnection):
    pass


def cancellable_sentinel_connection_options() -> dict[str, Any]:
    """Extra options for a Sentinel-managed pool (redis_config.BlockingSentinelConnectionPool)."""
    if sys.version_info >= (3, 12):
        return {}
    return {"connection_class": CancellableSentinelManagedConnection}


def cancellable_connection_options(url: str) -> dict[str, Any]:
    """Extra options for `redis.asyncio.*ConnectionPool.from_url(url, ...)`."""
    if sys.version_info >= (3, 12):
        return {}
    if url.startswith("rediss://"):
        return {"connection_class": CancellableSSLConnection}
    if url.startswith("redis://"):
        return {"connection_class": CancellableConnection}
    return {}  # unix sockets: redis-py's own class
