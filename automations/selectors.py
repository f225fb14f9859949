"""Reads. Each returns what a job needs and nothing else, as plain data served from the cache.

A job whose data is cached makes no database query; automations/cache.py says how entries are kept fresh.
"""

from dataclasses import dataclass, field
from typing import Any

from automations.cache import automations_cached, workspace_cached
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


def workspace_get_active_by_instagram_id(*, instagram_account_id: str) -> WorkspaceData | None:
    """The active workspace of this account, served from the cache.

    The cached entry is a plain dict of WorkspaceData's fields: the token is decrypted when the entry is
    filled (EncryptedTextField), so a cache hit costs no decryption. Redis therefore holds usable tokens,
    as it did before encryption at rest: secure it like the database.
    """

    def fill() -> dict[str, Any] | None:
        row = (
            Workspace.objects.filter(instagram_account_id=instagram_account_id, is_active=True)
            .values(*_WORKSPACE_FIELDS)
            .first()
        )
        if row is None:
            return None
        row["token_refused"] = row.pop("token_refused_at") is not None
        return row

    data = workspace_cached(instagram_account_id=instagram_account_id, fill=fill)
    return WorkspaceData(**data) if data is not None else None


def automation_list_active(
    *, workspace_id: PrimaryKey, type: AutomationType, media_id: str = ""
) -> list[AutomationData]:
    """Active automations of one type that may answer an event on `media_id`, in the order they are tried.

    A comment automation watches one post or (empty `media_id`) every post.
    """
    watched_media = media_id if type == AutomationType.COMMENT else ""

    def fill() -> list[dict[str, Any]]:
        queryset = Automation.objects.filter(workspace_id=workspace_id, type=type, is_active=True)
        if type == AutomationType.COMMENT:
            queryset = queryset.filter(media_id__in={"", watched_media})
        return list(queryset.order_by("position", "id").values(*_AUTOMATION_FIELDS))

    rows = automations_cached(workspace_id=workspace_id, type=str(type), media_id=watched_media, fill=fill)
    return [AutomationData(**row) for row in rows]


def automation_find_match(
    *, workspace_id: PrimaryKey, kind: EventKind, text: str, media_id: str = ""
) -> AutomationData | None:
    """The first active automation for this kind of event whose media and keywords fit."""
    automation_type = AUTOMATION_TYPE_FOR_KIND[kind]
    for automation in automation_list_active(workspace_id=workspace_id, type=automation_type, media_id=media_id):
        if keywords_match(keywords=automation.keywords, text=text):
            return automation
    return None


def automation_get_collecting(*, automation_id: PrimaryKey, workspace_id: PrimaryKey) -> AutomationData | None:
    """The automation whose follow-up question is being answered, read fresh: it may have changed since."""
    row = (
        Automation.objects.filter(pk=automation_id, workspace_id=workspace_id, is_active=True, collect_reply=True)
        .values(*_AUTOMATION_FIELDS)
        .first()
    )
    return AutomationData(**row) if row is not None else None
