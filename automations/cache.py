"""What a job reads, served from Django's cache (django-redis), with the key function next to each getter.

Guarantees:
- Entries hold plain data (dicts and lists), never model instances; a hit makes no database query.
- "Nothing matches" is cached as well (None, an empty list).
- Each entry is stored with the generation token that was current when its data was read, and is read
  in one round trip together with the current token (MGET): it counts only if the two match.
  Invalidating deletes the generation key, so the next reader makes a fresh random one, and no entry
  filled from data read before the invalidation can be served after it. Generations also let one delete
  cover every `automation:{workspaceId}:{type}:{postId}` entry of a workspace without listing them.
- A cold key is filled by one process holding a short Redis lock; the others wait for its value
  (bounded by CACHE_FILL_LOCK_TIMEOUT) instead of all querying the database.
- Hits and misses per dataset are counted in a Redis hash (`automations.stats`).
- If the cache is unreachable, lookups fall back to the database: a cache outage slows jobs, never fails them.
"""

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django_redis.exceptions import ConnectionInterrupted

from automations.context import EventContext
from automations.stats import cache_stat_incr

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Stored in place of "absent" so that a cached None (nothing matches) is told apart from a miss.
_ABSENT = object()
# What the cache raises when Redis is down.
CACHE_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, ConnectionInterrupted, OSError)
# Generation keys outlive the entries under them; losing one only costs misses (a new one is random).
GENERATION_TTL = 24 * 3600
# How often a process waiting for another one's fill looks for the value, in seconds.
_FILL_POLL_SECONDS = 0.01

WORKSPACE = "workspace"
AUTOMATION = "automation"
USER_STATE = "user_state"
DATASETS = (WORKSPACE, AUTOMATION, USER_STATE)


# --- generations ---------------------------------------------------------------------------------


def workspace_generation_key(*, instagram_account_id: str) -> str:
    return f"gen:workspace:{instagram_account_id}"


def automation_generation_key(*, workspace_id: int) -> str:
    return f"gen:automation:{workspace_id}"


def _new_generation(generation_key: str) -> str:
    """Make a generation token where there is none (atomically: the first writer wins)."""
    cache.add(generation_key, secrets.token_hex(6), timeout=GENERATION_TTL)
    return str(cache.get(generation_key))


# --- the fill: one process queries, the others wait -----------------------------------------------


def _read(key: str, generation_key: str) -> tuple[str | None, Any]:
    """The current generation and the entry's value if it was filled under it (else _ABSENT)."""
    found = cache.get_many([generation_key, key])
    generation = found.get(generation_key)
    entry = found.get(key)
    if generation is not None and isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
        return str(generation), entry[1]
    return (str(generation) if generation is not None else None), _ABSENT


def _cached(*, dataset: str, key: str, generation_key: str, timeout: int, fill: Callable[[], T]) -> T:
    generation, value = _read(key, generation_key)
    if value is not _ABSENT:
        cache_stat_incr(dataset=dataset, outcome="hit")
        return cast(T, value)
    lock_key = f"lock:{key}"
    lock_timeout = settings.CACHE_FILL_LOCK_TIMEOUT
    if not cache.add(lock_key, 1, timeout=max(1, round(lock_timeout))):
        deadline = time.monotonic() + lock_timeout
        while time.monotonic() < deadline:
            time.sleep(_FILL_POLL_SECONDS)
            generation, value = _read(key, generation_key)
            if value is not _ABSENT:
                cache_stat_incr(dataset=dataset, outcome="hit")
                return cast(T, value)
        logger.warning("waited %.1fs for another process to fill %s; reading the database", lock_timeout, key)
    try:
        cache_stat_incr(dataset=dataset, outcome="miss")
        # The generation is taken before the database is read: an invalidation after this point
        # replaces it, and the entry written below is then never served.
        generation = generation or _new_generation(generation_key)
        result = fill()
        cache.set(key, (generation, result), timeout=timeout)
    finally:
        cache.delete(lock_key)
    return result


def _cached_or_database(*, dataset: str, key: str, generation_key: str, timeout: int, fill: Callable[[], T]) -> T:
    try:
        return _cached(dataset=dataset, key=key, generation_key=generation_key, timeout=timeout, fill=fill)
    except CACHE_ERRORS:
        logger.warning("cache unavailable for %s; reading the database", dataset)
        return fill()


def _decode(raw: Any, backend: Any) -> Any:
    return None if raw is None else backend.client.decode(raw)


async def _acached(
    *, context: EventContext, dataset: str, key: str, generation_key: str, timeout: int, fill: Callable[[], T]
) -> T:
    """`_cached_or_database` for the event loop: a hit is one async MGET; a miss fills in the context's
    thread pool (lock, database read and all), so the loop never waits on the database."""
    if context.redis is not None:
        backend = caches["default"]  # once: each use of the `cache` proxy looks it up again
        try:
            raw_generation, raw_entry = await context.redis_command(
                "MGET", backend.make_key(generation_key), backend.make_key(key)
            )
        except CACHE_ERRORS:
            raw_generation = raw_entry = None
        if raw_generation is not None and raw_entry is not None:
            generation, entry = _decode(raw_generation, backend), _decode(raw_entry, backend)
            if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == generation:
                cache_stat_incr(dataset=dataset, outcome="hit")
                return cast(T, entry[1])
    return await context.run_sync(
        lambda: _cached_or_database(dataset=dataset, key=key, generation_key=generation_key, timeout=timeout, fill=fill)
    )


# --- workspaces by Instagram account id ---------------------------------------------------------


def workspace_key(*, instagram_account_id: str) -> str:
    return f"workspace:{instagram_account_id}"


def workspace_cached(*, instagram_account_id: str, fill: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    """The active workspace's fields as a dict, or None when no active workspace has this account id."""
    return _cached_or_database(
        dataset=WORKSPACE,
        key=workspace_key(instagram_account_id=instagram_account_id),
        generation_key=workspace_generation_key(instagram_account_id=instagram_account_id),
        timeout=settings.CACHE_WORKSPACE_TTL,
        fill=fill,
    )


async def aworkspace_cached(
    *, context: EventContext, instagram_account_id: str, fill: Callable[[], dict[str, Any] | None]
) -> dict[str, Any] | None:
    return await _acached(
        context=context,
        dataset=WORKSPACE,
        key=workspace_key(instagram_account_id=instagram_account_id),
        generation_key=workspace_generation_key(instagram_account_id=instagram_account_id),
        timeout=settings.CACHE_WORKSPACE_TTL,
        fill=fill,
    )


# --- automations for a workspace, type and post -----------------------------------------------------


def automation_key(*, workspace_id: Any, type: str, media_id: str) -> str:
    # Automations of other types do not depend on the post: one entry each, whatever the post.
    return f"automation:{workspace_id}:{type}:{media_id or '-'}"


def automations_cached(
    *, workspace_id: int, type: str, media_id: str, fill: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The active automations that may answer an event on this post, in the order they are tried."""
    return _cached_or_database(
        dataset=AUTOMATION,
        key=automation_key(workspace_id=workspace_id, type=type, media_id=media_id),
        generation_key=automation_generation_key(workspace_id=workspace_id),
        timeout=settings.CACHE_AUTOMATION_TTL,
        fill=fill,
    )


async def aautomations_cached(
    *, context: EventContext, workspace_id: Any, type: str, media_id: str, fill: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    return await _acached(
        context=context,
        dataset=AUTOMATION,
        key=automation_key(workspace_id=workspace_id, type=type, media_id=media_id),
        generation_key=automation_generation_key(workspace_id=workspace_id),
        timeout=settings.CACHE_AUTOMATION_TTL,
        fill=fill,
    )


# --- conversation states: they live in the cache only -----------------------------------------------


def user_state_key(*, workspace_id: int, instagram_user_id: str) -> str:
    return f"user_state:{workspace_id}:{instagram_user_id}"


def user_state_get(*, workspace_id: int, instagram_user_id: str) -> dict[str, Any] | None:
    try:
        value: dict[str, Any] | None = cache.get(
            user_state_key(workspace_id=workspace_id, instagram_user_id=instagram_user_id)
        )
        cache_stat_incr(dataset=USER_STATE, outcome="miss" if value is None else "hit")
    except CACHE_ERRORS:
        logger.warning("cache unavailable: conversation state of workspace %s not read", workspace_id)
        return None
    return value


async def auser_state_get(*, context: EventContext, workspace_id: Any, instagram_user_id: str) -> dict[str, Any] | None:
    if context.redis is None:
        return await context.run_sync(
            lambda: user_state_get(workspace_id=workspace_id, instagram_user_id=instagram_user_id)
        )
    key = user_state_key(workspace_id=workspace_id, instagram_user_id=instagram_user_id)
    backend = caches["default"]
    try:
        value: dict[str, Any] | None = _decode(await context.redis_command("GET", backend.make_key(key)), backend)
    except CACHE_ERRORS:
        logger.warning("cache unavailable: conversation state of workspace %s not read", workspace_id)
        return None
    cache_stat_incr(dataset=USER_STATE, outcome="miss" if value is None else "hit")
    return value


def user_state_set(*, workspace_id: int, instagram_user_id: str, state: dict[str, Any]) -> None:
    """Expires after CACHE_USER_STATE_TTL: an unanswered question is forgotten."""
    key = user_state_key(workspace_id=workspace_id, instagram_user_id=instagram_user_id)
    cache.set(key, state, timeout=settings.CACHE_USER_STATE_TTL)


def user_state_delete(*, workspace_id: int, instagram_user_id: str) -> None:
    cache.delete(user_state_key(workspace_id=workspace_id, instagram_user_id=instagram_user_id))


# --- invalidation: signals and cache_sync call these ----------------------------------------------


def cache_invalidate(*, instagram_account_ids: Iterable[str] = (), workspace_ids: Iterable[Any] = ()) -> None:
    """Make every cached workspace of these account ids and every cached automation of these workspaces stale."""
    keys = [workspace_generation_key(instagram_account_id=i) for i in sorted(set(instagram_account_ids)) if i]
    keys += [automation_generation_key(workspace_id=i) for i in sorted(set(workspace_ids)) if i is not None]
    if keys:
        cache.delete_many(keys)
        logger.debug("invalidated %s", keys)


def cache_invalidate_all() -> None:
    """Every cached workspace and automation (not conversation states): for changes nobody described."""
    delete_pattern = getattr(cache, "delete_pattern", None)
    if delete_pattern is None:  # the in-process cache used without Redis
        cache.clear()
        return
    for pattern in ("gen:*", "workspace:*", "automation:*"):
        delete_pattern(pattern)
