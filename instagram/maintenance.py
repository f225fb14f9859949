"""What workers run for connected accounts from their maintenance loop: the daily token refresh.

`accounts_maintenance_run_if_due()` is cheap (one Redis `SET NX EX` while not due), synchronous,
idempotent and never raises, so every worker of a deployment may call it on every maintenance tick:
the first caller in each 24 hours queues the refresh job, the others do nothing.
"""

import logging
from datetime import UTC, datetime

import redis
from rq import Queue

from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)

TOKEN_REFRESH_EVERY_SECONDS = 24 * 3600
# The lowest-priority queue every worker listens to: the refresh never delays a DM.
TOKEN_REFRESH_QUEUE = "low"  # noqa: S105 - a queue name, not a secret
# Refreshing is one Graph call per account, each bounded by the Graph timeouts.
TOKEN_REFRESH_JOB_TIMEOUT_SECONDS = 1800


def token_refresh_due_key() -> str:
    return key("accounts", "token_refresh", "last_queued")


def accounts_maintenance_run_if_due() -> bool:
    """Queue the token refresh if no process of this deployment (same Redis and prefix) did in the last
    24 hours; True if this call queued it."""
    client = get_redis()
    try:
        claimed = client.set(
            token_refresh_due_key(), datetime.now(UTC).isoformat(), nx=True, ex=TOKEN_REFRESH_EVERY_SECONDS
        )
        if not claimed:
            return False
        try:
            Queue(TOKEN_REFRESH_QUEUE, connection=client).enqueue(
                "instagram.jobs.tokens_refresh_job",
                job_timeout=TOKEN_REFRESH_JOB_TIMEOUT_SECONDS,
                result_ttl=24 * 3600,
                failure_ttl=7 * 24 * 3600,
                description="daily refresh of Instagram access tokens",
            )
        except redis.RedisError:
            # Not queued: let the next tick (of any worker) try again.
            client.delete(token_refresh_due_key())
            raise
    except redis.RedisError as exc:
        logger.warning("daily token refresh not queued: Redis unavailable (%s)", type(exc).__name__)
        return False
    logger.info("queued the daily refresh of Instagram access tokens")
    return True
