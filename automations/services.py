"""Writes and side effects: answering an event through the Graph API."""

import logging
from enum import StrEnum

from automations.activity import SendActivity, event_miss_record
from automations.conversations import conversation_answer, conversation_start
from automations.delivery import ACTION_DM, ACTION_PRIVATE_REPLY, ACTION_PUBLIC_REPLY, SendOutcome, send_once
from automations.graph import GraphClient, get_graph_client
from automations.models import Automation, Workspace
from automations.selectors import (
    AutomationData,
    WorkspaceData,
    automation_find_match,
    workspace_get_active_by_instagram_id,
)
from automations.stats import stat_incr
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


def event_handle(*, event: InstagramEvent, graph: GraphClient | None = None) -> EventOutcome:
    """Answer one event with the first automation that matches it, or explain why not."""
    workspace = workspace_get_active_by_instagram_id(instagram_account_id=event.account_id)
    if workspace is None:
        logger.info("skipped %s %s: no active workspace for account %s", event.kind, event.event_id, event.account_id)
        return _count(EventOutcome.UNKNOWN_ACCOUNT)
    # The parser drops echoes and own comments already; a job re-checks, as it may be replayed.
    if event.sender_id == workspace.instagram_account_id:
        return _count(EventOutcome.OWN_EVENT)
    # A DM may answer an automation's follow-up question (automations/conversations.py).
    if event.kind == EventKind.DM and conversation_answer(
        workspace=workspace, event=event, graph=graph or get_graph_client()
    ):
        return _count(EventOutcome.LEAD_CAPTURED)
    automation = automation_find_match(
        workspace_id=workspace.pk, kind=event.kind, text=event.text, media_id=event.media_id
    )
    if automation is None:
        logger.info("no automation matched %s %s of workspace %s", event.kind, event.event_id, workspace.pk)
        event_miss_record(workspace_id=workspace.pk, event=event)
        return _count(EventOutcome.NO_MATCH)
    sent = automation_reply(workspace=workspace, automation=automation, event=event, graph=graph or get_graph_client())
    if not sent:
        logger.info("%s %s of workspace %s was answered before: not again", event.kind, event.event_id, workspace.pk)
        return _count(EventOutcome.DUPLICATE)
    conversation_start(workspace=workspace, automation=automation, event=event)
    logger.info(
        "answered %s %s of workspace %s with automation %r", event.kind, event.event_id, workspace.pk, automation.name
    )
    return _count(EventOutcome.REPLIED)


def automation_reply(
    *, workspace: WorkspaceData, automation: AutomationData, event: InstagramEvent, graph: GraphClient
) -> bool:
    """Send what the automation says, each send at most once per event, whoever runs it again.

    Returns whether anything was sent now (False: all of it had been sent before).
    """
    token = workspace.access_token
    account_id = workspace.instagram_account_id
    activity = SendActivity.for_event(workspace_id=workspace.pk, automation_id=automation.pk, event=event)
    outcomes = []
    if event.kind in (EventKind.COMMENT, EventKind.LIVE_COMMENT):
        # Meta allows no public replies on Live.
        if automation.public_reply_text and event.kind == EventKind.COMMENT:
            outcome = send_once(
                account_id=account_id,
                event_id=event.event_id,
                action=ACTION_PUBLIC_REPLY,
                activity=activity,
                send=lambda: graph.reply_to_comment(
                    access_token=token, comment_id=event.event_id, text=automation.public_reply_text
                ),
            )
            outcomes.append(outcome)
        outcome = send_once(
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
        outcome = send_once(
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


def _count(outcome: EventOutcome) -> EventOutcome:
    stat_incr(name=str(outcome))
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
