"""`AutoPipeline`: the Redis commands of many concurrent jobs, sent together.

Hundreds of jobs in flight on one event loop each make a few short Redis commands. Sent one by one,
every command pays redis-py's full cost (a pooled connection, a socket write, a read, a timeout
wrapper); collected for one turn of the loop and sent as one pipeline, a hundred commands cost about
what one does. ioredis calls this auto-pipelining (BullMQ runs on it).

Only commands that are safe to send again belong here: the pipeline is retried as a whole when the
connection fails (Redis restarting, `LOADING`) under the client's retry policy. Scripts go as EVAL,
never EVALSHA, so a restarted Redis with an empty script cache needs no reload.
"""

import asyncio
from typing import Any

import redis.asyncio

# One pipeline carries at most this many commands; the rest go in the next one at once.
MAX_BATCH = 1000


class AutoPipeline:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False

    async def call(self, *args: Any) -> Any:
        """Send one command with those issued in the same loop turn; its reply, or its error raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.execute_command(*args)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # noqa: B036 - every waiting job must learn what happened
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else redis.exceptions.ConnectionError())
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its job was cancelled meanwhile
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
