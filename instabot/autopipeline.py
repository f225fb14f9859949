"""`AutoPipeline`: the Redis commands of many concurrent jobs, sent together.

Hundreds of jobs in flight on one event loop each make a few short Redis commands. Sent one by one,
every command pays redis-py's full cost (a pooled connection, a socket write, a read, a timeout
wrapper); collected for one turn of the loop and sent as one pipeline, a hundred commands cost about
what one does. ioredis calls this auto-pipelining (BullMQ runs on it).

Only commands that are safe to send again belong here: when Redis is unreachable or still loading
its data, the commands that did not get an answer are sent again with backoff for up to
`retry_seconds`. Scripts go as EVAL, never EVALSHA, so a restarted Redis with an empty script cache
needs no reload.

`call_replicated` sends a write followed by `WAIT` on the same connection (instabot/replication.py):
such writes of one loop turn go in a pipeline of their own that ends with one WAIT for all of them,
so commands that need no replica never wait for one.
"""

import asyncio
import logging
import time
from typing import Any

import redis.asyncio

logger = logging.getLogger(__name__)

# Errors after which a command may simply be sent again (it did not run, or running it twice is harmless).
RETRYABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)  # BusyLoadingError is one

# One pipeline carries at most this many commands; the rest go in the next one at once.
MAX_BATCH = 1000


class AutoPipeline:
    def __init__(self, client: redis.asyncio.Redis, *, retry_seconds: float = 0.0) -> None:
        self.client = client
        self.retry_seconds = retry_seconds
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        # Writes to confirm with WAIT, by (replicas, timeout in ms).
        self._pending_replicated: dict[tuple[int, int], list[tuple[tuple[Any, ...], asyncio.Future[Any]]]] = {}
        self._scheduled = False
        # asyncio keeps only weak references to tasks: a send task nobody holds may vanish mid-flight,
        # leaving its jobs waiting forever (and its connection checked out).
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, *args: Any) -> Any:
        """Send one command with those issued in the same loop turn; its reply, or its error raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    async def call_replicated(self, *args: Any, replicas: int, timeout_ms: int) -> tuple[Any, int]:
        """Send one command that writes, then WAIT on the same connection: its reply, and how many
        replicas acknowledged it within `timeout_ms` (0 when WAIT failed). The command must write even
        when it changes nothing (WAIT waits for the connection's own writes) and be safe to send twice."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending_replicated.setdefault((replicas, timeout_ms), []).append((args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        result, acknowledged = await future
        return result, acknowledged

    def _flush(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        sends = [self._send(batch)] if batch else []
        for wait, replicated in list(self._pending_replicated.items()):
            sends.append(self._send(replicated[:MAX_BATCH], wait=wait))
            if replicated[MAX_BATCH:]:
                self._pending_replicated[wait] = replicated[MAX_BATCH:]
            else:
                del self._pending_replicated[wait]
        if self._pending or self._pending_replicated:
            self._scheduled = True
            loop.call_soon(self._flush)
        for send in sends:
            task = loop.create_task(send)
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(
        self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]], wait: tuple[int, int] | None = None
    ) -> None:
        deadline = time.monotonic() + self.retry_seconds
        backoff = 0.05
        while True:
            batch = [(args, future) for args, future in batch if not future.done()]  # cancelled jobs drop out
            if not batch:
                return
            commands = [args for args, _ in batch]
            if wait is not None:
                commands.append(("WAIT", *wait))
            try:
                results: list[Any] = await self._execute(commands)
            except RETRYABLE as exc:
                results = [exc] * len(commands)
            except BaseException as exc:  # noqa: B036 - every waiting job must learn what happened
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else redis.exceptions.ConnectionError())
                raise
            acknowledged = 0
            if wait is not None:
                waited = results.pop()
                if isinstance(waited, RETRYABLE):
                    # Replies without their WAIT say nothing about the replicas: send them all again.
                    results = [waited] * len(batch)
                elif isinstance(waited, int):
                    acknowledged = waited
            retry = []
            for (args, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, RETRYABLE) and time.monotonic() < deadline:
                    retry.append((args, future))
                elif isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result((result, acknowledged) if wait is not None else result)
            if not retry:
                return
            logger.warning("Redis unavailable (%s): sending %d command(s) again", type(results[0]).__name__, len(retry))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
            batch = retry

    async def _execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for args in commands:
                pipe.execute_command(*args)
            return list(await pipe.execute(raise_on_error=False))
