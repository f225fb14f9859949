"""The delivery ledger: one entry per (account, event id, action), remembered for days.

An entry goes `pending:<time>:<nonce>` (claimed by one attempt) -> `done:<message id>` (Meta took it),
or is deleted (the send provably did not happen: safe to try again), or becomes `uncertain` (the
request was written and its answer lost: Meta may have acted on it, so it is never re-sent without a
person's decision). Entries live in Redis under Instabot's prefix, or in Django's in-process cache when
Redis is disabled.
"""

import asyncio
import logging
import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache

from automations.context import EventContext
from automations.send_limits import MAX_INLINE_WAIT_SECONDS, pause_key, send_windows
from instabot.redis import key
from instabot.replication import replicas_required, wait_timeout_ms

logger = logging.getLogger(__name__)

UNCERTAIN = "uncertain"


class LedgerWait(Exception):
    """The account is paused or at its send limit for `seconds` more: send later."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"account paused or at its send limit for {seconds:.1f}s")
        self.seconds = seconds


def ledger_key(*, account_id: str, event_id: str, action: str) -> str:
    return key("sent", account_id, event_id, action)


# One call per send: was it claimed already, may the account send now, and if so claim it and take a
# slot of each sliding window. KEYS: the entry, the account's pause key, the window sorted sets.
# ARGV: the claim, the entry's TTL (s), now (ms), then (limit, window ms) for each window.
# Returns {0} claimed; {1, existing entry}; {2, ms to wait} (nothing recorded then).
# Finding its own claim (sent again after a lost answer), it rewrites the TTL: a write of this connection
# for a WAIT that follows (REDIS_MIN_REPLICAS_ACK) to wait for.
_CLAIM_SCRIPT = """
local existing = redis.call('GET', KEYS[1])
if existing then
  if existing == ARGV[1] then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2])) end
  return {1, existing}
end
local now = tonumber(ARGV[3])
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {2, pause} end
local wait = 0
for i = 3, #KEYS do
  local limit = tonumber(ARGV[2 * i - 2])
  local window = tonumber(ARGV[2 * i - 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return {2, wait} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i - 1]))
end
return {0}
"""


class LedgerNotReplicated(Exception):
    """The claim is on the master but on fewer than REDIS_MIN_REPLICAS_ACK replicas (it was released):
    after a failover the send could be claimed again and go out twice, so it must wait."""


class LedgerEntry:
    """One entry, read and written through the context's Redis (or Django's cache without Redis).

    During inline processing (`context.unguarded_sends`) an unreachable Redis reads as empty and
    accepts claims; anywhere else a Redis error propagates and the job is retried.
    """

    def __init__(self, *, context: EventContext, account_id: str, event_id: str, action: str) -> None:
        self.context = context
        self.account_id = account_id
        self.key = ledger_key(account_id=account_id, event_id=event_id, action=action)
        self.ttl = settings.DELIVERY_LEDGER_TTL_SECONDS
        self.available = True

    async def _redis(self, *args: Any, default: Any = None) -> Any:
        if self.context.redis is None or not self.available:
            return default
        try:
            return await self.context.redis_command(*args)
        except redis.RedisError as exc:
            if not self.context.unguarded_sends:
                raise
            self.available = False
            logger.warning("delivery ledger unavailable (%s): %s is sent unguarded", type(exc).__name__, self.key)
            return default

    async def claim(self, value: str, *, private_reply: bool) -> str | None:
        """Claim the send and take a slot of the account's send limits, in one round trip.

        Returns the existing entry when the send was claimed before (nothing taken); waits up to
        MAX_INLINE_WAIT_SECONDS for a free slot, else raises `LedgerWait`. With REDIS_MIN_REPLICAS_ACK
        the claim counts only once that many replicas acknowledged it (WAIT), for up to
        MAX_INLINE_WAIT_SECONDS; then it is released and `LedgerNotReplicated` raised.
        """
        if self.context.redis is None:
            if await self.context.run_sync(lambda: cache.add(self.key, value, timeout=self.ttl)):
                return None
            return _text(await self.context.run_sync(lambda: cache.get(self.key)))
        window_keys, window_args = send_windows(account_id=self.account_id, private_reply=private_reply)
        keys = [self.key, pause_key(account_id=self.account_id), *window_keys]
        # Inline processing during an outage sends unguarded anyway: no replica to wait for.
        replicas = 0 if self.context.unguarded_sends else replicas_required()
        deadline = time.monotonic() + MAX_INLINE_WAIT_SECONDS
        while True:
            now_ms = int(time.time() * 1000)
            command = ("EVAL", _CLAIM_SCRIPT, len(keys), *keys, value, self.ttl, now_ms, *window_args)
            if replicas:
                result, acknowledged = await self.context.redis_command_replicated(
                    *command, replicas=replicas, timeout_ms=wait_timeout_ms()
                )
            else:
                result, acknowledged = await self._redis(*command, default=[0]), 0
            code = int(result[0])
            if code == 1 and _text(result[1]) != value:
                return _text(result[1])
            if code != 2:  # ours: claimed now, or by this attempt before its answer was lost
                if acknowledged >= replicas:
                    return None if code == 0 else value
                if time.monotonic() >= deadline:
                    await self._release_unreplicated(value)
                    raise LedgerNotReplicated(f"{self.key}: claimed, but not on {replicas} replica(s)")
                await asyncio.sleep(0.05)
                continue
            wait = int(result[1]) / 1000
            if time.monotonic() + wait > deadline:
                raise LedgerWait(wait)
            await asyncio.sleep(wait)

    async def _release_unreplicated(self, claim: str) -> None:
        try:
            await self.release(claim)
        except redis.RedisError as exc:  # the claim then turns uncertain once its lease ends: parked, not doubled
            logger.warning("could not release the unreplicated claim %s (%s)", self.key, type(exc).__name__)

    async def set(self, value: str) -> None:
        if self.context.redis is None:
            await self.context.run_sync(lambda: cache.set(self.key, value, timeout=self.ttl))
            return
        await self._redis("SET", self.key, value, "EX", self.ttl)

    async def release(self, claim: str) -> None:
        """Give up our own claim (never someone else's): the send provably did not happen."""
        if self.context.redis is None:
            if _text(await self.context.run_sync(lambda: cache.get(self.key))) == claim:
                await self.context.run_sync(lambda: cache.delete(self.key))
            return
        await self._redis("EVAL", _RELEASE_SCRIPT, 1, self.key, claim)


_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None
