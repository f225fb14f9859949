"""`EventContext`: what the code answering an event needs from where it runs.

The worker engine builds one per process (async Redis with retries, a keep-alive Graph client, a
small thread pool for the database); synchronous callers (inline processing in the web process,
`rq`'s own workers, tests) get a short-lived one from `run_with_context`: its event loop runs in a
helper thread (asgiref's `async_to_sync`) while synchronous work runs in the calling thread.
"""

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import close_old_connections

from automations.graph import AsyncGraphClient, graph_client_config
from instabot.autopipeline import AutoPipeline
from instabot.redis import redis_target
from instabot.redis_config import async_connection_pool

T = TypeVar("T")


@dataclass
class EventContext:
    # None when Redis is disabled (REDIS_ENABLED=false): the ledger and cache use Django's cache then.
    redis: redis.asyncio.Redis | None
    graph: AsyncGraphClient
    # Runs synchronous work (the ORM) in a bounded thread pool, or inline when None.
    executor: Executor | None = None
    # Inline processing during a Redis outage: send even when the ledger cannot be consulted.
    unguarded_sends: bool = False
    # How long Redis commands are sent again while Redis is unreachable or loading (0: fail at once).
    redis_retry_seconds: float = 0.0

    def __post_init__(self) -> None:
        self._pipeline = (
            AutoPipeline(self.redis, retry_seconds=self.redis_retry_seconds) if self.redis is not None else None
        )

    async def redis_command(self, *args: Any) -> Any:
        """One Redis command, sent in a pipeline with those of other jobs (instabot/autopipeline.py).
        Only for commands that are safe to send twice; requires `redis`."""
        if self._pipeline is None:
            raise RuntimeError("Redis is disabled")
        return await self._pipeline.call(*args)

    async def redis_command_replicated(self, *args: Any, replicas: int, timeout_ms: int) -> tuple[Any, int]:
        """`redis_command` for a write that must reach replicas: its reply, and how many replicas
        acknowledged it (Redis WAIT on the same connection, shared by the writes of one loop turn)."""
        if self._pipeline is None:
            raise RuntimeError("Redis is disabled")
        return await self._pipeline.call_replicated(*args, replicas=replicas, timeout_ms=timeout_ms)

    async def run_sync(self, function: Callable[[], T]) -> T:
        if self.executor is None:
            # In the thread that called run_with_context: its database connection (and, in tests,
            # its open transaction) is the one to use.
            return await sync_to_async(function, thread_sensitive=True)()
        return await asyncio.get_running_loop().run_in_executor(self.executor, _run_in_pool, function)

    async def close(self) -> None:
        await self.graph.close()
        if self.redis is not None:
            await self.redis.aclose()


def _run_in_pool(function: Callable[[], T]) -> T:
    # Pool threads live long: drop database connections that broke or outlived CONN_MAX_AGE first.
    close_old_connections()
    return function()


def async_redis_client(*, max_connections: int, retry_seconds: float = 0.0) -> redis.asyncio.Redis:
    """An asyncio Redis client on the configured Redis (one server or Sentinel's master), bounded to
    `max_connections` (callers wait for one).

    With `retry_seconds`, commands that fail because Redis is unreachable or still loading its data
    are tried again with backoff for about that long: a Redis restart stalls jobs instead of failing
    them.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    retries = max(0, int(retry_seconds / 0.5)) if retry_seconds else 0
    pool = async_connection_pool(
        redis_target(),  # one Redis, or Sentinel's current master
        max_connections=max_connections,
        # Waiting longer than this for a free connection means one leaked: fail loudly, not forever.
        timeout=60,
        socket_connect_timeout=settings.REDIS_SOCKET_CONNECT_TIMEOUT,
        socket_timeout=max(settings.REDIS_SOCKET_TIMEOUT, 5.0) if retries else settings.REDIS_SOCKET_TIMEOUT,
        health_check_interval=30,
    )
    kwargs: dict[str, Any] = {"connection_pool": pool}
    if retries:
        kwargs["retry"] = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries)
        kwargs["retry_on_error"] = [
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
        ]
    return redis.asyncio.Redis(**kwargs)


def run_with_context(function: Callable[[EventContext], Awaitable[T]], *, unguarded_sends: bool = False) -> T:
    """Run `function` on a fresh event loop with a short-lived context (one event's worth of work)."""

    async def main() -> T:
        context = EventContext(
            redis=async_redis_client(max_connections=4) if settings.REDIS_ENABLED else None,
            graph=AsyncGraphClient(graph_client_config(pool_size=4)),
            unguarded_sends=unguarded_sends,
        )
        try:
            return await function(context)
        finally:
            await context.close()

    try:
        blocked_loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        blocked_loop = None
    if blocked_loop is None:
        return async_to_sync(main)()
    # A framework runs its event loop in this thread and is blocked in this synchronous call (Playwright's
    # sync API in the browser tests does that). Hide that loop while ours runs, so the synchronous work
    # still happens in this thread, on its database connection.
    asyncio.events._set_running_loop(None)
    try:
        return async_to_sync(main)()
    finally:
        asyncio.events._set_running_loop(blocked_loop)
