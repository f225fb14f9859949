"""Sending exactly once: the delivery ledger, Graph error classes, and per-account send limits.

Every send is keyed on (account, event id, action). Its ledger entry goes `pending` (claimed by one
attempt) -> `done` (Meta confirmed it) or is deleted (Meta refused it: safe to try again). An entry
left `pending` past its lease belongs to an attempt that died mid-send: Meta may have acted on it,
so it is never re-sent blindly; the event is parked as a dead letter for a person to decide.
"""

import functools
import logging
import random
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache

from automations.activity import SendActivity, send_activity_record
from automations.graph import GraphAPIConnectionError, GraphAPIError, GraphAPITimeoutError, GraphResponse
from automations.models import ActivityStatus
from instabot.redis import get_redis, key

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send did not happen (or may not have). `error` is Meta's error as plain data, if any."""

    def __init__(self, message: str, *, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error


class TransientDeliveryError(DeliveryError):
    """Try again later: the send did not happen and may succeed next time."""


class TerminalDeliveryError(DeliveryError):
    """Trying again cannot help (expired token, no permission, user unavailable, uncertain outcome)."""


class SendDeferred(Exception):
    """Over a send limit or throttled by Meta: run later, neither failed nor dropped."""

    def __init__(self, delay_seconds: float, reason: str) -> None:
        super().__init__(f"deferred {delay_seconds:.1f}s: {reason}")
        self.delay_seconds = delay_seconds
        self.reason = reason


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    TERMINAL = "terminal"
    # Meta answered with an error but the message went out (or had already gone out).
    SENT = "sent"
    # No answer after the request was sent: it may have gone out.
    UNCERTAIN = "uncertain"


# Rate limits: app, user, page, custom, Instagram and Messenger business-use-case limits.
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80002, 80006, 1996})
TRANSIENT_CODES = frozenset({1, 2})
# (code, subcode) pairs Meta returns although the message was sent, or was sent before.
SENT_ANYWAY = frozenset({(1, 1357046)})
ALREADY_SENT_SUBCODES = frozenset({2534025})  # a private reply was already sent for this comment


def classify_graph_error(exc: GraphAPIError) -> ErrorClass:
    if isinstance(exc, GraphAPITimeoutError):
        return ErrorClass.UNCERTAIN
    if isinstance(exc, GraphAPIConnectionError):
        return ErrorClass.TRANSIENT
    if (exc.code, exc.subcode) in SENT_ANYWAY or exc.subcode in ALREADY_SENT_SUBCODES:
        return ErrorClass.SENT
    if exc.code in THROTTLE_CODES or exc.status == 429:
        return ErrorClass.THROTTLED
    if exc.code in TRANSIENT_CODES or exc.is_transient is True:
        return ErrorClass.TRANSIENT
    if exc.status is not None and exc.status >= 500 and exc.code is None:
        return ErrorClass.TRANSIENT
    # 190 expired token, 10 permission or window, 100 unknown user, 551 unavailable, other 4xx.
    return ErrorClass.TERMINAL


def backoff_intervals(*, attempts: int, base: float, cap: float, rng: random.Random | None = None) -> list[int]:
    """Seconds before each retry: exponential, capped, with up to 50 % jitter so retries spread out.

    RQ's `Retry` takes fixed intervals, so the whole schedule is computed when the job is queued.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    intervals = []
    for attempt in range(max(attempts - 1, 0)):
        delay = min(cap, base * (2**attempt))
        intervals.append(max(1, round(delay * (1 + rng.random() * 0.5))))
    return intervals


# Only inline processing (the web process answering during a Redis outage) may send without the
# ledger and the shared limits; a worker that loses Redis fails the job, which RQ then recovers.
unguarded_sends_allowed: ContextVar[bool] = ContextVar("unguarded_sends_allowed", default=False)


# --- The ledger ------------------------------------------------------------------------------------


# The sends one event can cause, each remembered on its own in the ledger.
ACTION_DM = "dm"
ACTION_PUBLIC_REPLY = "public_reply"
ACTION_PRIVATE_REPLY = "private_reply"
ACTION_CONFIRMATION = "confirmation"
EVENT_ACTIONS = [ACTION_DM, ACTION_PUBLIC_REPLY, ACTION_PRIVATE_REPLY, ACTION_CONFIRMATION]


class SendOutcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"


def ledger_key(*, account_id: str, event_id: str, action: str) -> str:
    return key("sent", account_id, event_id, action)


def ledger_clear_unfinished(*, account_id: str, event_id: str, actions: list[str]) -> int:
    """Forget pending or uncertain claims (never `done` ones), so a replay may send again."""
    cleared = 0
    for action in actions:
        ledger = _Ledger(ledger_key(account_id=account_id, event_id=event_id, action=action))
        value = ledger.get()
        if isinstance(value, str) and not value.startswith("done"):
            ledger.delete()
            cleared += 1
    return cleared


def send_once(
    *,
    account_id: str,
    event_id: str,
    action: str,
    send: Callable[[], GraphResponse],
    private_reply: bool = False,
    activity: SendActivity | None = None,
) -> SendOutcome:
    """Run `send` unless this action for this event was already sent; classify what Meta answers.

    Without a reachable cache (inline processing during a Redis outage) the ledger cannot be
    consulted: the send goes out unguarded and says so in the log. Each outcome goes to the activity
    log when `activity` says for whom (a deferred send is not an outcome: it runs again later).
    """
    record = functools.partial(send_activity_record, activity, event_id=event_id, action=action)
    entry_key = ledger_key(account_id=account_id, event_id=event_id, action=action)
    ledger = _Ledger(entry_key)
    claim = f"pending:{time.time():.3f}:{uuid.uuid4().hex}"
    existing = ledger.claim(claim, account_id=account_id, private_reply=private_reply)
    if existing is not None:
        return _resolve_existing_claim(existing, record=record)
    try:
        response = send()
    except GraphAPIError as exc:
        error_class = classify_graph_error(exc)
        if error_class == ErrorClass.SENT:
            ledger.set("done:meta-reported-error")
            record(status=ActivityStatus.SENT, detail=f"Meta reported an error but sent it: {exc}")
            logger.warning("%s for %s: Meta reported %s but the message was sent; not retried", action, event_id, exc)
            return SendOutcome.SENT
        if error_class == ErrorClass.UNCERTAIN:
            ledger.set("uncertain")
            record(status=ActivityStatus.UNCERTAIN, detail=f"no answer in time: {exc}")
            raise TerminalDeliveryError(
                "delivery uncertain: Meta did not answer in time and may have sent it", error=exc.as_dict()
            ) from None
        ledger.release(claim)
        if error_class == ErrorClass.THROTTLED:
            pause = exc.regain_access_seconds or settings.THROTTLE_DEFAULT_PAUSE_SECONDS
            account_pause(account_id=account_id, seconds=pause)
            raise SendDeferred(pause, f"throttled by Meta ({exc})") from None
        record(status=ActivityStatus.FAILED, detail=f"{error_class}: {exc}")
        if error_class == ErrorClass.TRANSIENT:
            raise TransientDeliveryError(str(exc), error=exc.as_dict()) from None
        raise TerminalDeliveryError(str(exc), error=exc.as_dict()) from None
    except BaseException:
        ledger.release(claim)
        raise
    ledger.set(f"done:{response.message_id}")
    record(status=ActivityStatus.SENT, graph_message_id=response.message_id)
    if response.regain_access_seconds:
        account_pause(account_id=account_id, seconds=response.regain_access_seconds)
    return SendOutcome.SENT


class _Ledger:
    """One ledger entry: in Redis (raw strings under Instabot's prefix), or in Django's in-process
    cache when Redis is disabled. During inline processing an unreachable Redis reads as empty and
    accepts claims; anywhere else a Redis error propagates (the job fails and is retried)."""

    def __init__(self, entry_key: str) -> None:
        self.key = entry_key
        self.ttl = settings.DELIVERY_LEDGER_TTL_SECONDS
        self.redis = get_redis() if settings.REDIS_ENABLED else None
        self.available = True

    def _guard(self, operation: Callable[[], Any], default: Any) -> Any:
        if not self.available:
            return default
        try:
            return operation()
        except redis.RedisError as exc:
            if not unguarded_sends_allowed.get():
                raise
            self.available = False
            logger.warning("delivery ledger unavailable (%s): %s is sent unguarded", type(exc).__name__, self.key)
            return default

    def claim(self, claim: str, *, account_id: str, private_reply: bool) -> str | None:
        """Claim the send and take a slot of the account's send limits, in one round trip.

        Returns the existing entry when the send was claimed before (nothing taken); raises
        `SendDeferred` when the account is paused or at its limit for longer than a short wait.
        """
        if self.redis is None:
            if cache.add(self.key, claim, timeout=self.ttl):
                return None
            return _text(cache.get(self.key))
        keys = [self.key, pause_key(account_id=account_id), key("rate", account_id, "send")]
        args: list[Any] = [settings.SEND_LIMIT_PER_SECOND, 1000]
        if private_reply:
            keys.append(key("rate", account_id, "private_reply"))
            args += [settings.PRIVATE_REPLY_LIMIT_PER_HOUR, 3600 * 1000]
        deadline = time.monotonic() + MAX_INLINE_WAIT_SECONDS
        client = self.redis
        while True:
            now_ms = int(time.time() * 1000)
            result = self._guard(
                lambda: client.eval(_CLAIM_SCRIPT, len(keys), *keys, claim, self.ttl, now_ms, *args),  # noqa: B023
                [0],
            )
            if int(result[0]) == 0:
                return None
            if int(result[0]) == 1:
                return _text(result[1])
            wait = int(result[1]) / 1000
            if time.monotonic() + wait > deadline:
                raise SendDeferred(wait, f"account {account_id} is paused or at its send limit")
            time.sleep(wait)

    def get(self) -> str | None:
        if self.redis is None:
            return _text(cache.get(self.key))
        client = self.redis
        return _text(self._guard(lambda: client.get(self.key), None))

    def set(self, value: str) -> None:
        if self.redis is None:
            cache.set(self.key, value, timeout=self.ttl)
            return
        client = self.redis
        self._guard(lambda: client.set(self.key, value, ex=self.ttl), None)

    def delete(self) -> None:
        if self.redis is None:
            cache.delete(self.key)
            return
        client = self.redis
        self._guard(lambda: client.delete(self.key), None)

    def release(self, claim: str) -> None:
        """Give up our own claim (never someone else's)."""
        if self.get() == claim:
            self.delete()


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else None


def _resolve_existing_claim(value: str, *, record: Callable[..., None]) -> SendOutcome:
    if value.startswith("done"):
        record(status=ActivityStatus.SKIPPED_DUPLICATE)
        return SendOutcome.ALREADY_SENT
    if value.startswith("pending:"):
        claimed_at = float(value.split(":")[1])
        if time.time() - claimed_at < settings.DELIVERY_LEASE_SECONDS:
            # Another attempt is sending right now; look again once it has had time to finish.
            raise TransientDeliveryError("another attempt is sending this right now")
    record(status=ActivityStatus.UNCERTAIN, detail="an earlier attempt stopped mid-send")
    raise TerminalDeliveryError("delivery uncertain: an earlier attempt stopped mid-send and may have sent it")


# --- Send limits and pauses ----------------------------------------------------------------------

# One call per send: was it claimed already, may the account send now, and if so claim it and take
# a slot of each sliding window. KEYS: the ledger entry, the account's pause key, the window sorted
# sets. ARGV: the claim, the ledger TTL (s), now (ms), then (limit, window ms) for each window.
# Returns {0} claimed; {1, existing entry}; {2, ms to wait} (nothing recorded then).
_CLAIM_SCRIPT = """
local existing = redis.call('GET', KEYS[1])
if existing then return {1, existing} end
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

# Short waits are spent in the job; longer ones hand the job back to run later.
MAX_INLINE_WAIT_SECONDS = 1.0


def pause_key(*, account_id: str) -> str:
    return key("pause", account_id)


def account_pause(*, account_id: str, seconds: float) -> None:
    if not settings.REDIS_ENABLED:
        return
    try:
        get_redis().set(pause_key(account_id=account_id), "1", px=max(1, int(seconds * 1000)))
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
