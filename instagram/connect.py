"""Connect with Instagram (Business Login for Instagram): from the admin's button to a subscribed, active
workspace holding a 60-day token.

1. `connect_start` signs a single-use `state` (bound to the staff user, valid 10 minutes) and returns
   Instagram's authorization window URL.
2. Instagram sends the browser back with `code` and `state`. `connect_state_consume` accepts a state
   once, for the user it was made for; `workspace_connect` then exchanges the code for a short-lived
   token, that for a long-lived one, reads the account's id and username, subscribes it to webhooks,
   and only then creates or updates the workspace: a failure at any step leaves nothing behind.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from automations.models import Workspace
from instagram.client import (
    InstagramAccount,
    IssuedToken,
    account_read,
    authorize_url,
    code_exchange,
    long_lived_token_exchange,
    webhooks_subscribe,
)

logger = logging.getLogger(__name__)

STATE_SALT = "instabot.instagram.connect"
# Long enough to log in and consent; a state older than this is refused.
STATE_MAX_AGE = timedelta(minutes=10)


START_AGAIN = "start again with “Connect an Instagram account”."


class ConnectError(Exception):
    """The connection cannot go on; the message is for the staff user (never holds a secret)."""


def _state_key(nonce: str) -> str:
    return f"instagram:connect_state:{nonce}"


def connect_start(*, user_id: str, redirect_uri: str) -> str:
    """The authorization window's URL, carrying a fresh signed state for this user."""
    nonce = secrets.token_urlsafe(24)
    cache.set(_state_key(nonce), user_id, timeout=int(STATE_MAX_AGE.total_seconds()))
    state = signing.dumps({"nonce": nonce, "user": user_id}, salt=STATE_SALT)
    return authorize_url(state=state, redirect_uri=redirect_uri)


def connect_state_consume(*, state: str, user_id: str) -> None:
    """Accept `state` once: signed by us, recent, made for this user, not used before."""
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.SignatureExpired:
        raise ConnectError(f"This connection attempt expired; {START_AGAIN}") from None
    except signing.BadSignature:
        raise ConnectError("This connection attempt is not valid (wrong state); nothing was connected.") from None
    if not isinstance(payload, dict) or payload.get("user") != user_id:
        raise ConnectError("This connection attempt was started by another user; nothing was connected.")
    # Deleting the nonce is the single use: of two callbacks with the same state, one deletes it.
    if not cache.delete(_state_key(str(payload.get("nonce")))):
        raise ConnectError(f"This connection attempt was used already; {START_AGAIN}")


@dataclass(frozen=True)
class ConnectResult:
    workspace: Workspace
    created: bool
    # The token it replaced had been refused by Meta: sends parked meanwhile can be replayed now.
    was_refused: bool


def workspace_connect(*, code: str, redirect_uri: str) -> ConnectResult:
    """Everything Meta must do first, then one write. Raises GraphAPIError when Meta refuses a step."""
    short = code_exchange(code=code, redirect_uri=redirect_uri)
    long = long_lived_token_exchange(short_lived_token=short.access_token)
    account = account_read(access_token=long.access_token)
    webhooks_subscribe(access_token=long.access_token)
    try:
        result = _workspace_save_connected(account=account, token=long)
    except IntegrityError:
        # Another connection of the same new account created it first: update theirs.
        result = _workspace_save_connected(account=account, token=long)
    workspace = result.workspace
    logger.info(
        "connected account %s (@%s) as workspace %s (%s)",
        account.user_id,
        account.username,
        workspace.pk,
        "new" if result.created else "updated",
    )
    return result


def _workspace_save_connected(*, account: InstagramAccount, token: IssuedToken) -> ConnectResult:
    with transaction.atomic():
        workspace = Workspace.objects.filter(instagram_account_id=account.user_id).first()
        created = workspace is None
        if workspace is None:
            workspace = Workspace(name=account.username or account.user_id, instagram_account_id=account.user_id)
        was_refused = workspace.token_refused_at is not None
        workspace.instagram_username = account.username
        workspace.set_access_token(token.access_token, expires_in_seconds=token.expires_in)
        workspace.subscribed_at = timezone.now()
        workspace.is_active = True
        workspace.save()
    return ConnectResult(workspace=workspace, created=created, was_refused=was_refused)
