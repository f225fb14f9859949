"""Tokens that renew themselves, and stay encrypted under the newest key.

Long-lived Instagram tokens last 60 days and can be refreshed once they are 24 hours old, until they
expire. `workspace_tokens_refresh_due` refreshes every active workspace's token older than a given age:
`manage.py refresh_tokens` runs it, and every worker's maintenance loop has it run once a day per
deployment (instagram/maintenance.py).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.db.models import Q
from django.utils import timezone

from automations.graph import GraphAPIError
from automations.models import Workspace
from automations.tokens import TOKEN_REFUSED_CODE, workspace_token_mark_refused, workspace_update_if_unchanged
from instabot.encryption import DecryptionError
from instagram.client import long_lived_token_refresh

logger = logging.getLogger(__name__)

# Meta refreshes a long-lived token only once it is at least this old.
MIN_REFRESH_AGE = timedelta(hours=24)


class RefreshResult(StrEnum):
    REFRESHED = "refreshed"
    # Meta answered 190: the token expired or was revoked; the workspace is marked, a person must reconnect.
    REFUSED = "refused"
    FAILED = "failed"
    # Someone saved a new token while the refresh was under way: theirs is kept.
    CHANGED_MEANWHILE = "changed_meanwhile"


@dataclass(frozen=True)
class RefreshOutcome:
    workspace_name: str
    instagram_account_id: str
    result: RefreshResult
    detail: str = ""


def workspace_token_refresh(*, workspace: Workspace) -> RefreshOutcome:
    """Refresh one workspace's token and store the new one with its expiry (the cache follows)."""

    def outcome(result: RefreshResult, detail: str = "") -> RefreshOutcome:
        return RefreshOutcome(workspace.name, workspace.instagram_account_id, result, detail)

    try:
        issued = long_lived_token_refresh(access_token=workspace.access_token)
    except GraphAPIError as exc:
        if exc.code == TOKEN_REFUSED_CODE:
            workspace_token_mark_refused(workspace_id=workspace.pk, access_token=workspace.access_token)
            logger.warning("token of workspace %s refused by Meta on refresh: %s", workspace.pk, exc)
            return outcome(RefreshResult.REFUSED, f"{exc.message} (code 190): reconnect the account")
        logger.warning("token of workspace %s not refreshed: %s", workspace.pk, exc)
        return outcome(RefreshResult.FAILED, str(exc))
    now = timezone.now()
    written = workspace_update_if_unchanged(
        workspace_id=workspace.pk,
        instagram_account_id=workspace.instagram_account_id,
        seen_updated_at=workspace.updated_at,
        fields={
            "access_token": issued.access_token,
            "token_issued_at": now,
            "token_expires_at": now + timedelta(seconds=issued.expires_in) if issued.expires_in else None,
            "token_refused_at": None,
        },
    )
    if not written:
        return outcome(RefreshResult.CHANGED_MEANWHILE, "the workspace changed meanwhile; its token is kept")
    logger.info("refreshed the token of workspace %s (account %s)", workspace.pk, workspace.instagram_account_id)
    expires = f"expires in {issued.expires_in // 86400} days" if issued.expires_in else "expiry not given"
    return outcome(RefreshResult.REFRESHED, expires)


def workspace_tokens_refresh_due(*, min_age: timedelta = MIN_REFRESH_AGE) -> list[RefreshOutcome]:
    """Refresh the token of every active workspace whose token is older than `min_age` (or of unknown
    age), not refused by Meta and not past its expiry (Meta cannot refresh those: reconnect them)."""
    now = timezone.now()
    due = (
        Workspace.objects.filter(is_active=True, token_refused_at__isnull=True)
        .filter(Q(token_issued_at__isnull=True) | Q(token_issued_at__lte=now - min_age))
        .filter(Q(token_expires_at__isnull=True) | Q(token_expires_at__gt=now))
        .order_by("pk")
    )
    outcomes = []
    for pk in list(due.values_list("pk", flat=True)):
        try:
            workspace = Workspace.objects.get(pk=pk)
        except Workspace.DoesNotExist:  # deleted meanwhile
            continue
        except DecryptionError as exc:
            outcomes.append(RefreshOutcome("", str(pk), RefreshResult.FAILED, str(exc)))
            continue
        outcomes.append(workspace_token_refresh(workspace=workspace))
    return outcomes


@dataclass(frozen=True)
class ReencryptOutcome:
    reencrypted: int
    failed: list[str]


def workspace_tokens_reencrypt() -> ReencryptOutcome:
    """Write every token back encrypted under the newest INSTABOT_ENCRYPTION_KEY (and any still in plain
    text, encrypted at all). After it, older keys can be dropped. Safe to run again."""
    reencrypted = 0
    failed = []
    for pk in list(Workspace.objects.order_by("pk").values_list("pk", flat=True)):
        for _ in range(3):
            try:
                row = Workspace.objects.filter(pk=pk).values("access_token", "updated_at").first()
            except DecryptionError:
                failed.append(str(pk))
                break
            if row is None:  # deleted meanwhile
                break
            # The same token, written again: encrypted afresh with the newest key. Only if nobody saved a
            # new token since it was read (else read it again): an old token must never overwrite a new one.
            if Workspace.objects.filter(pk=pk, updated_at=row["updated_at"]).update(access_token=row["access_token"]):
                reencrypted += 1
                break
        else:
            failed.append(str(pk))
    return ReencryptOutcome(reencrypted=reencrypted, failed=failed)
