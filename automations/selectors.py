"""Reads. Each returns what a job needs and nothing else, as plain data served from the cache.

A job whose data is cached makes no database query; automations/cache.py says how entries are kept fresh.
"""

from dataclasses import dataclass, field
from typing import Any

from automations.cache import aautomations_cached, automations_cached, aworkspace_cached, workspace_cached
from automations.context import EventContext
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


@dataclass(frozen=True, slots=True)
class WorkspaceData:
    id: PrimaryKey
    name: str
    instagram_account_id: str
    # The usable (decrypted) token. Kept out of repr: a logged or printed WorkspaceData never shows it.
    access_token: str = field(repr=False)
    # Meta refused this token (code 190): its sends are parked until a new token is saved.
    token_refused: bool = False

    @property
    def pk(self) -> PrimaryKey:
        return self.id


@dataclass(frozen=True, slots=True)
class AutomationData:
    id: PrimaryKey
    workspace_id: PrimaryKey
    name: str
    type: str
    media_id: str
    keywords: list[str]
    reply_text: str
    public_reply_text: str
    position: int
    collect_reply: bool
    confirmation_text: str

    @property
    def pk(self) -> PrimaryKey:
        return self.id


_WORKSPACE_FIELDS = ["id", "name", "instagram_account_id", "access_token", "token_refused_at"]
_AUTOMATION_FIELDS = [
    "id",
    "workspace_id",
    "name",
    "type",
    "media_id",
    "keywords",
    "reply_text",
    "public_reply_text",
    "position",
    "collect_reply",
    "confirmation_text",
]


def _workspace_row(instagram_account_id: str) -> dict[str, Any] | None:
    """The active workspace of this account as the cache keeps it: a plain dict of WorkspaceData's fields.

    The token is decrypted here, when the entry is filled (EncryptedTextField), so a cache hit costs no
    decryption. Redis therefore holds usable tokens, as it did before encryption at rest: secure it
    like the database.
    """
    row = (
        Workspace.objects.filter(instagram_account_id=instagram_account_id, is_active=True)
        .values(*_WORKSPACE_FIELDS)
        .first()
    )
    if row is None:
        return None
    row["token_refused"] = row.pop("token_refused_at") is not None
    return row


def workspace_get_active_by_instagram_id(*, instagram_account_id: str) -> WorkspaceData | None:
    data = workspace_cached(
        instagram_account_id=instagram_account_id, fill=lambda: _workspace_row(instagram_account_id)
    )
    return WorkspaceData(**data) if data is not None else None


async def aworkspace_get_active_by_instagram_id(
    *, context: EventContext, instagram_account_id: str
) -> WorkspaceData | None:
    data = await aworkspace_cached(
        context=context, instagram_account_id=instagram_account_id, fill=lambda: _workspace_row(instagram_account_id)
    )
    return WorkspaceData(**data) if data is not None else None


def _automation_rows(*, workspace_id: PrimaryKey, type: AutomationType, watched_media: str) -> list[dict[str, Any]]:
    queryset = Automation.objects.filter(workspace_id=workspace_id, type=type, is_active=True)
    if type == AutomationType.COMMENT:
        queryset = queryset.filter(media_id__in={"", watched_media})
    return list(queryset.order_by("position", "id").values(*_AUTOMATION_FIELDS))


def automation_find_match(
    *, workspace_id: PrimaryKey, kind: EventKind, text: str, media_id: str = ""
) -> AutomationData | None:
    """The first active automation for this kind of event whose media and keywords fit."""
    automation_type = AUTOMATION_TYPE_FOR_KIND[kind]
    watched_media = media_id if automation_type == AutomationType.COMMENT else ""
    rows = automations_cached(
        workspace_id=workspace_id,
        type=str(automation_type),
        media_id=watched_media,
        fill=lambda: _automation_rows(workspace_id=workspace_id, type=automation_type, watched_media=watched_media),
    )
    return _first_match(rows, text=text)


async def aautomation_find_match(
    *, context: EventContext, workspace_id: PrimaryKey, kind: EventKind, text: str, media_id: str = ""
) -> AutomationData | None:
    """`automation_find_match` for the event loop."""
    automation_type = AUTOMATION_TYPE_FOR_KIND[kind]
    watched_media = media_id if automation_type == AutomationType.COMMENT else ""
    rows = await aautomations_cached(
        context=context,
        workspace_id=workspace_id,
        type=str(automation_type),
        media_id=watched_media,
        fill=lambda: _automation_rows(workspace_id=workspace_id, type=automation_type, watched_media=watched_media),
    )
    return _first_match(rows, text=text)


def _first_match(rows: list[dict[str, Any]], *, text: str) -> AutomationData | None:
    for row in rows:
        if keywords_match(keywords=row["keywords"], text=text):
            return AutomationData(**row)
    return None


def automation_get_collecting(*, automation_id: PrimaryKey, workspace_id: PrimaryKey) -> AutomationData | None:
    """The automation whose follow-up question is being answered, read fresh: it may have changed since."""
    row = (
        Automation.objects.filter(pk=automation_id, workspace_id=workspace_id, is_active=True, collect_reply=True)
        .values(*_AUTOMATION_FIELDS)
        .first()
    )
    return AutomationData(**row) if row is not None else None
