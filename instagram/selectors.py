"""Reads for the admin: which workspaces need a person because of their token."""

from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from automations.models import TOKEN_EXPIRING_WITHIN, Workspace
from automations.tokens import TOKEN_REFUSED_CODE


def workspace_list_token_attention() -> QuerySet[Workspace]:
    """Active workspaces whose token is expired, refused by Meta, or expiring within 7 days."""
    soon = timezone.now() + TOKEN_EXPIRING_WITHIN
    return (
        Workspace.objects.filter(is_active=True)
        .filter(Q(token_refused_at__isnull=False) | Q(token_expires_at__lte=soon))
        .order_by("name", "pk")
    )


def dead_letters_url(*, instagram_account_id: str) -> str:
    """The dead-letter page showing the account's events parked because Meta refused its token."""
    query = urlencode({"account": instagram_account_id, "code": TOKEN_REFUSED_CODE})
    return f"{reverse('dead-letters')}?{query}"
