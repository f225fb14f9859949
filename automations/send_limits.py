"""Per-account send limits and pauses, shared by every worker through Redis.

Meta allows an account about 100 sends a second and 750 private replies an hour; throttling errors
pause an account for as long as Meta says. The windows are sorted sets checked and taken by the
ledger's claim script (automations/ledger.py) in the same round trip as the claim.
"""

import logging
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from automations.context import EventContext
from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)

# Short waits for a free slot are spent in the job; longer ones hand the job back to run later.
MAX_INLINE_WAIT_SECONDS = 1.0


def pause_key(*, account_id: str) -> str:
    return key("pause", account_id)


def send_windows(*, account_id: str, private_reply: bool) -> tuple[list[str], list[Any]]:
    """The sliding windows a send takes a slot of: their keys, and (limit, window ms) for each."""
    keys = [key("rate", account_id, "send")]
    args: list[Any] = [settings.SEND_LIMIT_PER_SECOND, 1000]
    if private_reply:
        keys.append(key("rate", account_id, "private_reply"))
        args += [settings.PRIVATE_REPLY_LIMIT_PER_HOUR, 3600 * 1000]
    return keys, args


async def account_pause(*, context: EventContext, account_id: str, seconds: float) -> None:
    if context.redis is None:
        return
    try:
        await context.redis_command("SET", pause_key(account_id=account_id), "1", "PX", max(1, int(seconds * 1000)))
    except redis.RedisError:
        logger.warning("could not record a pause for account %s: Redis unavailable", account_id)
        return
    logger.warning("sends for account %s paused for %.0f s", account_id, seconds)


@dataclass(frozen=True)
class AccountHold:
    account_id: str
    seconds_left: float


def account_holds_list() -> list[AccountHold]:
    """Accounts whose sends are paused right now (Meta throttling)."""
    client = get_redis()
    holds = []
    prefix = key("pause", "")
    for raw in client.scan_iter(match=prefix + "*", count=500):
        name = raw.decode()
        ttl = client.pttl(name)
        if isinstance(ttl, int) and ttl > 0:
            holds.append(AccountHold(account_id=name[len(prefix) :], seconds_left=ttl / 1000))
    return holds
