"""Writes and side effects: answering an event through the Graph API."""

import logging
from enum import StrEnum

from automations.activity import SendActivity, event_miss_record
from automations.context import EventContext, run_with_context
from automations.conversations import conversation_answer, conversation_start
from automations.delivery import (
    ACTION_DM,
    ACTION_PRIVATE_REPLY,
    ACTION_PUBLIC_REPLY,
    SendOutcome,
    TerminalDeliveryError,
    send_once,
)
from automations.models import Automation, Workspace
from automations.selectors import (
    AutomationData,
    WorkspaceData,
    aautomation_find_match,
    aworkspace_get_active_by_instagram_id,
)
from automations.stats import stat_incr
from automations.tokens import is_token_refusal, workspace_token_mark_refused, workspace_token_require_usable
from instabot.metrics import event_outcome_incr
from webhooks.events import EventKind, InstagramEvent

logger = logging.getLogger(__name__)


class EventOutcome(StrEnum):
    REPLIED = "replied"
    UNKNOWN_ACCOUNT = "skipped_unknown_account"
    OWN_EVENT = "skipped_own_event"
    NO_MATCH = "no_match"
    # Every send this event asks for had been made before (a redelivery or a second run).
    DUPLICATE = "duplicate"
    LEAD_CAPTURED = "lead_captured"


# `instabot_events_total`'s outcome label: events for no active workspace, or the account's own, are
# "ignored" there (`queue_status` keeps the two apart).
METRIC_OUTCOME = {EventOutcome.UNKNOWN_ACCOUNT: "ignored", EventOutcome.OWN_EVENT: "ignored"}


async def aevent_handle(*, context: EventContext, event: InstagramEvent) -> EventOutcome:
    """Answer one event with the first automation that matches it, or explain why not."""
    workspace = await aworkspace_get_active_by_instagram_id(context=context, instagram_account_id=event.account_id)
    if workspace is None:
        logger.info("skipped %s %s: no active workspace for account %s", event.kind, event.event_id, event.account_id)
        return _count(EventOutcome.UNKNOWN_ACCOUNT, kind=event.kind)
    # The parser drops echoes and own comments already; a job re-checks, as it may be replayed.
    if event.sender_id == workspace.instagram_account_id:
        logger.info("skipped %s %s: written by account %s itself", event.kind, event.event_id, event.account_id)
        return _count(EventOutcome.OWN_EVENT, kind=event.kind)
    try:
        return await _event_answer(context=context, workspace=workspace, event=event)
    except TerminalDeliveryError as exc:
        if is_token_refusal(exc) and not workspace.token_refused:
            await context.run_sync(lambda: _token_mark_refused(workspace=workspace))
        raise


def _token_mark_refused(*, workspace: WorkspaceData) -> None:
    try:
        workspace_token_mark_refused(workspace_id=workspace.pk, access_token=workspace.access_token)
    except Exception:  # the event is parked either way; the next refusal tries again
        logger.exception("could not mark the token of workspace %s as refused", workspace.pk)


async def _event_answer(*, context: EventContext, workspace: WorkspaceData, event: InstagramEvent) -> EventOutcome:
    # A DM may answer an automation's follow-up question (automations/conversations.py).
    if event.kind == EventKind.DM and await conversation_answer(context=context, workspace=workspace, event=event):
        return _count(EventOutcome.LEAD_CAPTURED, kind=event.kind)
    automation = await aautomation_find_match(
        context=context, workspace_id=workspace.pk, kind=event.kind, text=event.text, media_id=event.media_id
    )
    if automation is None:
        logger.info("no automation matched %s %s of workspace %s", event.kind, event.event_id, workspace.pk)
        event_miss_record(workspace_id=workspace.pk, event=event)
        return _count(EventOutcome.NO_MATCH, kind=event.kind)
    # Nothing is sent with a token Meta already refused: the event is parked until a new one arrives.
    workspace_token_require_usable(workspace=workspace)
    sent = await automation_reply(context=context, workspace=workspace, automation=automation, event=event)
    if not sent:
        logger.info("%s %s of workspace %s was answered before: not again", event.kind, event.event_id, workspace.pk)
        return _count(EventOutcome.DUPLICATE, kind=event.kind)
    if automation.collect_reply:
        await context.run_sync(lambda: conversation_start(workspace=workspace, automation=automation, event=event))
    logger.debug(
        "answered %s %s of workspace %s with automation %r", event.kind, event.event_id, workspace.pk, automation.name
    )
    return _count(EventOutcome.REPLIED, kind=event.kind)


def event_handle(*, event: InstagramEvent, unguarded_sends: bool = False) -> EventOutcome:
    """`aevent_handle` for synchronous callers (inline processing, rq's own workers, tests)."""
    return run_with_context(
        lambda context: aevent_handle(context=context, event=event), unguarded_sends=unguarded_sends
    )


async def automation_reply(
    *, context: EventContext, workspace: WorkspaceData, automation: AutomationData, event: InstagramEvent
) -> bool:
    """Send what the automation says, each send at most once per event, whoever runs it again.

    Returns whether anything was sent now (False: all of it had been sent before).
    """
    token = workspace.access_token
    account_id = workspace.instagram_account_id
    graph = context.graph
    activity = SendActivity.for_event(workspace_id=workspace.pk, automation_id=automation.pk, event=event)
    outcomes = []
    if event.kind in (EventKind.COMMENT, EventKind.LIVE_COMMENT):
        # Meta allows no public replies on Live.
        if automation.public_reply_text and event.kind == EventKind.COMMENT:
            outcome = await send_once(
                context=context,
                account_id=account_id,
                event_id=event.event_id,
                action=ACTION_PUBLIC_REPLY,
                activity=activity,
                send=lambda: graph.reply_to_comment(
                    access_token=token, comment_id=event.event_id, text=automation.public_reply_text
                ),
            )
            outcomes.append(outcome)
        outcome = await send_once(
            context=context,
            account_id=account_id,
            event_id=event.event_id,
            action=ACTION_PRIVATE_REPLY,
            private_reply=True,
            activity=activity,
            send=lambda: graph.send_message(
                access_token=token, recipient={"comment_id": event.event_id}, text=automation.reply_text
            ),
        )
    else:
        outcome = await send_once(
            context=context,
            account_id=account_id,
            event_id=event.event_id,
            action=ACTION_DM,
            activity=activity,
            send=lambda: graph.send_message(
                access_token=token, recipient={"id": event.sender_id}, text=automation.reply_text
            ),
        )
    outcomes.append(outcome)
    return SendOutcome.SENT in outcomes


def _count(outcome: EventOutcome, *, kind: str) -> EventOutcome:
    stat_incr(name=str(outcome))
    event_outcome_incr(kind=kind, outcome=METRIC_OUTCOME.get(outcome, str(outcome)))
    return outcome


DEMO_ACCOUNT_ID = 17841400000000001


def demo_data_create(*, username: str, password: str, accounts: int = 1) -> Workspace:
    """The Quick start's data: one staff user and `accounts` workspaces (Instagram account ids
    17841400000000001, ...0002, ...), each with one automation per type. Returns the first."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if not user_model.objects.filter(username=username).exists():
        user_model.objects.create_superuser(username=username, email="", password=password)
    workspaces = [
        Workspace.objects.get_or_create(
            instagram_account_id=str(DEMO_ACCOUNT_ID + index),
            defaults={"name": "Demo shop" if index == 0 else f"Demo shop {index + 1}", "access_token": "demo-token"},
        )[0]
        for index in range(max(1, accounts))
    ]
    demo_automations: list[dict[str, object]] = [
        {"name": "DM price", "type": "dm", "keywords": ["price"], "reply_text": "Our prices: https://example.com/p"},
        {"name": "Story thanks", "type": "story", "keywords": [], "reply_text": "Thanks for the story love!"},
        {
            "name": "Comment price",
            "type": "comment",
            "keywords": ["price"],
            "reply_text": "Here is the price list: https://example.com/p",
            "public_reply_text": "Sent you a DM!",
        },
    ]
    for workspace in workspaces:
        for fields in demo_automations:
            Automation.objects.get_or_create(workspace=workspace, name=fields["name"], defaults=fields)
    return workspaces[0]
