"""Follow-up questions: an automation asks ("reply with your email"), the user's next DM answers.

The state lives in the cache only (`user_state:{workspaceId}:{igsid}`, CACHE_USER_STATE_TTL): once it
expires the next DM is a fresh message. After an answer the state remembers which message answered, so a
job that runs twice stores one Lead and treats only a later DM as fresh.
"""

import logging
from typing import Any

from automations.activity import SendActivity
from automations.cache import auser_state_get, user_state_delete, user_state_set
from automations.context import EventContext
from automations.delivery import ACTION_CONFIRMATION, send_once
from automations.models import Lead
from automations.selectors import AutomationData, WorkspaceData, automation_get_collecting
from automations.tokens import workspace_token_require_usable
from webhooks.events import InstagramEvent

logger = logging.getLogger(__name__)


def conversation_start(*, workspace: WorkspaceData, automation: AutomationData, event: InstagramEvent) -> None:
    """After an automation with a follow-up question answered `event`, wait for the sender's reply."""
    if not automation.collect_reply:
        return
    user_state_set(
        workspace_id=workspace.id,
        instagram_user_id=event.sender_id,
        state={"automation_id": automation.id, "asked_in": event.event_id},
    )


async def conversation_answer(*, context: EventContext, workspace: WorkspaceData, event: InstagramEvent) -> bool:
    """True when this DM answered a pending question: stored as a Lead and confirmed; else it is a fresh DM."""
    state = await auser_state_get(context=context, workspace_id=workspace.id, instagram_user_id=event.sender_id)
    if state is None:
        return False
    automation = await context.run_sync(lambda: _answer_store(workspace=workspace, event=event, state=state))
    if automation is None:
        return False
    if automation.confirmation_text:
        workspace_token_require_usable(workspace=workspace)
        await send_once(
            context=context,
            account_id=workspace.instagram_account_id,
            event_id=event.event_id,
            action=ACTION_CONFIRMATION,
            activity=SendActivity.for_event(workspace_id=workspace.id, automation_id=automation.id, event=event),
            send=lambda: context.graph.send_message(
                access_token=workspace.access_token,
                recipient={"id": event.sender_id},
                text=automation.confirmation_text,
            ),
        )
    logger.info("stored the answer %s of workspace %s to automation %r", event.event_id, workspace.id, automation.name)
    return True


def _answer_store(*, workspace: WorkspaceData, event: InstagramEvent, state: dict[str, Any]) -> AutomationData | None:
    """Store the answer as a Lead and remember which message answered; None when it is a fresh DM."""
    answered_by = state.get("answered_by")
    if answered_by is not None and answered_by != event.event_id:
        user_state_delete(workspace_id=workspace.id, instagram_user_id=event.sender_id)
        return None
    automation = automation_get_collecting(automation_id=state["automation_id"], workspace_id=workspace.id)
    if automation is None:  # deleted, deactivated or no longer asking since the question
        user_state_delete(workspace_id=workspace.id, instagram_user_id=event.sender_id)
        return None
    lead_create(workspace=workspace, automation=automation, event=event)
    user_state_set(
        workspace_id=workspace.id, instagram_user_id=event.sender_id, state={**state, "answered_by": event.event_id}
    )
    return automation


def lead_create(*, workspace: WorkspaceData, automation: AutomationData, event: InstagramEvent) -> Lead:
    """Once per answering message, however often its job runs."""
    lead, _ = Lead.objects.get_or_create(
        event_id=event.event_id,
        defaults={
            "workspace_id": workspace.id,
            "automation_id": automation.id,
            "instagram_user_id": event.sender_id,
            "text": event.text,
        },
    )
    return lead
