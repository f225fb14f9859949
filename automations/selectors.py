"""Reads. Each returns what a job needs and nothing else."""

from automations.matching import keywords_match
from automations.models import Automation, AutomationType, Workspace
from instabot.ids import PrimaryKey
from webhooks.events import EventKind

AUTOMATION_TYPE_FOR_KIND: dict[EventKind, AutomationType] = {
    EventKind.DM: AutomationType.DM,
    EventKind.STORY_REPLY: AutomationType.STORY,
    EventKind.STORY_MENTION: AutomationType.STORY,
    EventKind.COMMENT: AutomationType.COMMENT,
    EventKind.LIVE_COMMENT: AutomationType.COMMENT,
}


def workspace_get_active_by_instagram_id(*, instagram_account_id: str) -> Workspace | None:
    return Workspace.objects.filter(instagram_account_id=instagram_account_id, is_active=True).first()


def automation_list_active(*, workspace_id: PrimaryKey, type: AutomationType) -> list[Automation]:
    """Active automations of one type, in the order they are tried."""
    return list(
        Automation.objects.filter(workspace_id=workspace_id, type=type, is_active=True).order_by("position", "id")
    )


def automation_find_match(
    *, workspace_id: PrimaryKey, kind: EventKind, text: str, media_id: str = ""
) -> Automation | None:
    """The first active automation for this kind of event whose media and keywords fit."""
    automation_type = AUTOMATION_TYPE_FOR_KIND[kind]
    for automation in automation_list_active(workspace_id=workspace_id, type=automation_type):
        if automation_type == AutomationType.COMMENT and automation.media_id and automation.media_id != media_id:
            continue
        if keywords_match(keywords=automation.keywords, text=text):
            return automation
    return None
