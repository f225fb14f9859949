"""Acknowledged means replicated (`REDIS_MIN_REPLICAS_ACK`): writes confirmed on replicas with WAIT.

Redis replicates asynchronously: a master killed right after a write may take it with it, and
Sentinel then promotes a replica that never had it. Redis's `WAIT <replicas> <timeout>` blocks until
that many replicas have acknowledged every write made so far *on the calling connection*. A pooled
client may send two commands on two connections, and across a failover to two servers, so the check
and the WAIT travel together in one pipeline (one connection, one server): a script that counts the
keys that must be there and writes one counter (so that the connection has a write of its own to
wait for), then WAIT. Replication keeps the order of writes: replicas that acknowledged the counter
hold the checked keys too.
"""

from collections.abc import Sequence

import redis
from django.conf import settings

from instabot.redis import key

# KEYS[1]: the counter written; KEYS[2..]: the keys that must exist. Returns how many of them do.
CONFIRM_SCRIPT = """
local present = 0
for i = 2, #KEYS do present = present + redis.call('EXISTS', KEYS[i]) end
redis.call('INCR', KEYS[1])
return present
"""


class NotReplicated(redis.RedisError):
    """The write is on the master but not (yet) on REDIS_MIN_REPLICAS_ACK replicas: a failover now could lose it."""


def replicas_required() -> int:
    return int(settings.REDIS_MIN_REPLICAS_ACK)


def wait_timeout_ms() -> int:
    return max(1, int(settings.REDIS_REPLICAS_ACK_TIMEOUT_SECONDS * 1000))


def confirm_counter_key() -> str:
    return key("replication", "confirm")


def keys_replicated(*, client: redis.Redis, keys: Sequence[str], replicas: int) -> bool:
    """Whether every key exists on the master and `replicas` replicas acknowledged it, within
    REDIS_REPLICAS_ACK_TIMEOUT_SECONDS. Redis errors propagate."""
    unique = list(dict.fromkeys(keys))
    with client.pipeline(transaction=False) as pipe:
        pipe.eval(CONFIRM_SCRIPT, 1 + len(unique), confirm_counter_key(), *unique)
        pipe.execute_command("WAIT", replicas, wait_timeout_ms())
        present, acknowledged = pipe.execute()
    return int(present) == len(unique) and int(acknowledged) >= replicas
