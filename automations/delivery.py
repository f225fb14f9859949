"""Sending exactly once: `send_once` guards one Graph call with the delivery ledger.

Its parts live next door: what Meta's errors mean (graph_errors), the ledger (ledger), per-account
send limits (send_limits), and the retry schedule queueing uses (retry_schedule).

What a send's failure becomes:
- provably not sent (connection never made, Meta answered with an error): the claim is released;
  transient errors are retried, throttling defers the job, anything else is terminal;
- maybe sent (the request was written and the answer was lost, the job timed out or was cancelled
  mid-send): the entry becomes `uncertain` and the event is parked for a person, never re-sent.
"""

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from django.conf import settings

from automations.activity import SendActivity, send_activity_record
from automations.context import EventContext
from automations.graph import GraphAPIError, GraphResponse
from automations.graph_errors import ErrorClass, classify_graph_error
from automations.ledger import UNCERTAIN, LedgerEntry, LedgerNotReplicated, LedgerWait
from automations.models import ActivityStatus
from automations.send_limits import account_pause

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send did not happen (or may not have). `error` is Meta's error as plain data, if any."""

    def __init__(self, message: str, *, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error = error


class TransientDeliveryError(DeliveryError):
    """Try again later: the send did not happen and may succeed next time."""


class TerminalDeliveryError(DeliveryError):
    """Trying again cannot help (expired token, no permission, user unavailable)."""


class UncertainDeliveryError(TerminalDeliveryError):
    """The send may have reached Meta: parked as "delivery uncertain" for a person to decide."""


class SendDeferred(Exception):
    """Over a send limit or throttled by Meta: run later, neither failed nor dropped."""

    def __init__(self, delay_seconds: float, reason: str) -> None:
        super().__init__(f"deferred {delay_seconds:.1f}s: {reason}")
        self.delay_seconds = delay_seconds
        self.reason = reason


# The sends one event can cause, each remembered on its own in the ledger.
ACTION_DM = "dm"
ACTION_PUBLIC_REPLY = "public_reply"
ACTION_PRIVATE_REPLY = "private_reply"
ACTION_CONFIRMATION = "confirmation"
EVENT_ACTIONS = [ACTION_DM, ACTION_PUBLIC_REPLY, ACTION_PRIVATE_REPLY, ACTION_CONFIRMATION]

UNCERTAIN_REASON = "delivery uncertain"
# A send whose ledger claim no replica acknowledged (REDIS_MIN_REPLICAS_ACK) runs again this much later.
REPLICA_WAIT_DEFER_SECONDS = 2.0


class SendOutcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"


async def send_once(
    *,
    context: EventContext,
    account_id: str,
    event_id: str,
    action: str,
    send: Callable[[], Awaitable[GraphResponse]],
    private_reply: bool = False,
    activity: SendActivity | None = None,
) -> SendOutcome:
    """Run `send` unless this action for this event was already sent; classify what Meta answers.

    Each outcome goes to the activity log when `activity` says for whom (a deferred send is not an
    outcome: it runs again later)."""
    record = functools.partial(send_activity_record, activity, event_id=event_id, action=action)
    entry = LedgerEntry(context=context, account_id=account_id, event_id=event_id, action=action)
    claim = f"pending:{time.time():.3f}:{uuid.uuid4().hex}"
    try:
        existing = await entry.claim(claim, private_reply=private_reply)
    except LedgerWait as wait:
        raise SendDeferred(wait.seconds, f"account {account_id} is paused or at its send limit") from None
    except LedgerNotReplicated:
        raise SendDeferred(REPLICA_WAIT_DEFER_SECONDS, "no Redis replica acknowledged the delivery claim") from None
    # Our own claim comes back when Redis ran the script but its answer was lost and the command retried.
    if existing is not None and existing != claim:
        return _resolve_existing_claim(existing, record=record)
    try:
        response = await send()
    except GraphAPIError as exc:
        return await _settle_error(context=context, entry=entry, claim=claim, record=record, exc=exc)
    except BaseException:  # noqa: B036 - a timeout or cancellation mid-send: the request may have been written
        await asyncio.shield(_mark_uncertain(entry))
        record(status=ActivityStatus.UNCERTAIN, detail="stopped mid-send (job timeout or worker stop)")
        raise
    await entry.set(f"done:{response.message_id}")
    record(status=ActivityStatus.SENT, graph_message_id=response.message_id)
    if response.regain_access_seconds:
        await account_pause(context=context, account_id=account_id, seconds=response.regain_access_seconds)
    return SendOutcome.SENT


async def _settle_error(
    *, context: EventContext, entry: LedgerEntry, claim: str, record: Callable[..., None], exc: GraphAPIError
) -> SendOutcome:
    error_class = classify_graph_error(exc)
    if error_class == ErrorClass.SENT:
        await entry.set("done:meta-reported-error")
        record(status=ActivityStatus.SENT, detail=f"Meta reported an error but sent it: {exc}")
        logger.warning("%s: Meta reported %s but the message was sent; not retried", entry.key, exc)
        return SendOutcome.SENT
    if error_class == ErrorClass.UNCERTAIN:
        await entry.set(UNCERTAIN)
        record(status=ActivityStatus.UNCERTAIN, detail=f"no answer: {exc}")
        raise UncertainDeliveryError(
            f"{UNCERTAIN_REASON}: the request was sent and no answer came back ({exc})", error=exc.as_dict()
        ) from None
    await entry.release(claim)
    if error_class == ErrorClass.THROTTLED:
        pause = exc.regain_access_seconds or settings.THROTTLE_DEFAULT_PAUSE_SECONDS
        await account_pause(context=context, account_id=entry.account_id, seconds=pause)
        raise SendDeferred(pause, f"throttled by Meta ({exc})") from None
    record(status=ActivityStatus.FAILED, detail=f"{error_class}: {exc}")
    if error_class == ErrorClass.TRANSIENT:
        raise TransientDeliveryError(str(exc), error=exc.as_dict()) from None
    raise TerminalDeliveryError(str(exc), error=exc.as_dict()) from None


async def _mark_uncertain(entry: LedgerEntry) -> None:
    try:
        await entry.set(UNCERTAIN)
    except Exception:  # Redis gone too: the pending claim turns uncertain once its lease ends
        logger.warning("could not mark %s uncertain; its lease will", entry.key)


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
    raise UncertainDeliveryError(f"{UNCERTAIN_REASON}: an earlier attempt stopped mid-send and may have sent it")
