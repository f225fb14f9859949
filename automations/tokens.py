"""What sending does about a token Meta refuses (code 190: expired, revoked, or invalid).

The first refusal marks the workspace (`token_refused_at`, shown as token status `expired`); from then on
its sends are parked as dead letters without calling Meta, until a new token is saved (admin, API, or
reconnecting), which clears the mark. Getting new tokens is the `instagram` app's business.
"""

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from automations.cache import cache_invalidate
from automations.delivery import DeliveryError, TerminalDeliveryError
from automations.models import Workspace
from automations.selectors import WorkspaceData
from instabot.ids import PrimaryKey

logger = logging.getLogger(__name__)

# Meta's code for an access token that expired, was revoked or is otherwise invalid.
TOKEN_REFUSED_CODE = 190


def token_refused_error(*, account_id: str) -> dict[str, Any]:
    """The error a parked send carries: Meta's code, so a replay after reconnecting can find it."""
    return {
        "message": f"the access token of account {account_id} was refused by Meta; reconnect it or save a new token",
        "code": TOKEN_REFUSED_CODE,
        "subcode": None,
        "type": "OAuthException",
        "fbtrace_id": "",
    }


def is_token_refusal(exc: DeliveryError) -> bool:
    return exc.error is not None and exc.error.get("code") == TOKEN_REFUSED_CODE


def workspace_token_require_usable(*, workspace: WorkspaceData) -> None:
    """Raise (park the event, no retry) instead of sending with a token Meta already refused."""
    if workspace.token_refused:
        raise TerminalDeliveryError(
            "access token refused by Meta (code 190): parked until a new token is saved",
            error=token_refused_error(account_id=workspace.instagram_account_id),
        )


def workspace_token_mark_refused(*, workspace_id: PrimaryKey, access_token: str) -> bool:
    """Record that Meta refused `access_token`; True if this call marked it.

    Only the token that was refused is marked: if a new one was saved meanwhile (the send was in
    flight while someone reconnected), nothing changes. The write is conditional on the row being
    unchanged since it was read, so it cannot mark a token saved between the read and the write.
    """
    row = (
        Workspace.objects.filter(pk=workspace_id)
        .values("instagram_account_id", "access_token", "updated_at", "token_refused_at")
        .first()
    )
    if row is None or row["access_token"] != access_token or row["token_refused_at"] is not None:
        return False
    marked = workspace_update_if_unchanged(
        workspace_id=workspace_id,
        instagram_account_id=row["instagram_account_id"],
        seen_updated_at=row["updated_at"],
        fields={"token_refused_at": timezone.now()},
    )
    if marked:
        logger.warning(
            "Meta refused the access token of workspace %s (account %s): "
            "its sends are parked until a new token is saved",
            workspace_id,
            row["instagram_account_id"],
        )
    return marked


def workspace_update_if_unchanged(
    *, workspace_id: PrimaryKey, instagram_account_id: str, seen_updated_at: datetime, fields: dict[str, Any]
) -> bool:
    """Write `fields` only if the row is as it was read (`updated_at` unchanged); True if written.

    For writes decided from a token read earlier (a refusal, a refresh): a token saved in between wins.
    The cache is invalidated as the save signals would, once the write is visible.
    """
    now = timezone.now()
    written = Workspace.objects.filter(pk=workspace_id, updated_at=seen_updated_at).update(**fields, updated_at=now)
    if written:
        transaction.on_commit(
            lambda: cache_invalidate(instagram_account_ids={instagram_account_id}, workspace_ids={workspace_id}),
            robust=True,
        )
    return bool(written)
