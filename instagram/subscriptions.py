"""Webhook subscriptions: a connected account sends Instabot nothing until it is subscribed through the API."""

import logging

from django.utils import timezone

from automations.graph import GraphAPIError
from automations.models import Workspace
from automations.tokens import TOKEN_REFUSED_CODE, workspace_token_mark_refused
from instagram.client import SUBSCRIBED_FIELDS, webhooks_subscribe

logger = logging.getLogger(__name__)


class SubscribeError(Exception):
    """Meta refused the subscription; the message says why (an expired token named as such)."""

    def __init__(self, message: str, *, token_refused: bool = False) -> None:
        super().__init__(message)
        self.token_refused = token_refused


def workspace_subscribe(*, workspace: Workspace) -> None:
    """Subscribe the workspace's account to `comments` and `messages`, and record when it was done.

    A token Meta refuses (code 190) marks the workspace `expired`, as a refused send does.
    """
    try:
        webhooks_subscribe(access_token=workspace.access_token)
    except GraphAPIError as exc:
        if exc.code == TOKEN_REFUSED_CODE:
            workspace_token_mark_refused(workspace_id=workspace.pk, access_token=workspace.access_token)
            raise SubscribeError(
                f"the access token of account {workspace.instagram_account_id} has expired or was revoked "
                f"(Meta: {exc.message}, code 190); reconnect the account",
                token_refused=True,
            ) from None
        account_id = workspace.instagram_account_id
        raise SubscribeError(f"Meta refused the subscription of account {account_id}: {exc}") from None
    workspace.subscribed_at = timezone.now()
    workspace.save(update_fields=["subscribed_at", "updated_at"])
    logger.info(
        "subscribed account %s (workspace %s) to %s",
        workspace.instagram_account_id,
        workspace.pk,
        ",".join(SUBSCRIBED_FIELDS),
    )
