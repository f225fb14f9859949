"""Workspaces in the admin: connected Instagram accounts, their tokens (never shown) and subscriptions.

The changelist has the "Connect an Instagram account" button (`/connect/instagram/`) and a *subscribe*
action; a workspace whose token is expired or expiring carries a banner (so does the admin index).
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from automations.models import TOKEN_EXPIRING_WITHIN, TokenStatus, Workspace
from instagram.selectors import dead_letters_url
from instagram.subscriptions import SubscribeError, workspace_subscribe


class WorkspaceForm(forms.ModelForm):
    # Never rendered back: staff may set a new token, not read the old one.
    access_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the current token. It is never displayed. "
        "“Connect an Instagram account” gets one from Instagram instead.",
    )

    class Meta:
        model = Workspace
        fields = ["name", "instagram_account_id", "access_token", "is_active"]

    def clean_access_token(self) -> str:
        token: str = self.cleaned_data.get("access_token", "").strip()
        self.new_token = ""
        self.previous_token_refused = self.instance.token_refused_at is not None
        if not token:
            if self.instance.pk and self.instance.access_token:
                return self.instance.access_token
            raise forms.ValidationError("A new workspace needs an access token.")
        if token != self.instance.access_token:
            # Saving it resets the token's state (Workspace.save): not refused, so its sends resume.
            self.new_token = token
        return token


class TokenStatusFilter(admin.SimpleListFilter):
    title = "token status"
    parameter_name = "token_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(status.value), str(status.label)) for status in TokenStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        soon = now + TOKEN_EXPIRING_WITHIN
        usable = Q(token_refused_at__isnull=True)
        if self.value() == TokenStatus.EXPIRED:
            return queryset.filter(Q(token_refused_at__isnull=False) | Q(token_expires_at__lte=now))
        if self.value() == TokenStatus.EXPIRING:
            return queryset.filter(usable, token_expires_at__gt=now, token_expires_at__lte=soon)
        if self.value() == TokenStatus.OK:
            return queryset.filter(usable).filter(Q(token_expires_at__isnull=True) | Q(token_expires_at__gt=soon))
        return queryset


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    form = WorkspaceForm
    change_list_template = "admin/instagram/workspace/change_list.html"
    change_form_template = "admin/instagram/workspace/change_form.html"
    list_display = [
        "name",
        "instagram_account_id",
        "instagram_username",
        "is_active",
        "token",
        "token_expires_at",
        "subscribed_at",
        "updated_at",
    ]
    list_filter = ["is_active", TokenStatusFilter]
    search_fields = ["name", "instagram_account_id", "instagram_username"]
    readonly_fields = ["instagram_username", "token", "token_issued_at", "token_expires_at", "subscribed_at"]
    actions = ["subscribe"]

    @admin.display(description="Token")
    def token(self, obj: Workspace) -> str:
        # The status only: the token itself is never displayed.
        return str(obj.token_status.label) if obj.pk else "-"

    @admin.action(description="Subscribe selected accounts to webhooks (comments, messages)")
    def subscribe(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        for workspace in queryset:
            try:
                workspace_subscribe(workspace=workspace)
            except SubscribeError as exc:
                self.message_user(request, f"{workspace.name}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{workspace.name}: account {workspace.instagram_account_id} subscribed to comments and messages.",
                    messages.SUCCESS,
                )

    def save_model(self, request: HttpRequest, obj: Workspace, form: WorkspaceForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and form.new_token and form.previous_token_refused:
            self.message_user(
                request,
                format_html(
                    'New token saved: sends resume. <a href="{}">Replay the events parked while the old token '
                    "was refused</a>.",
                    dead_letters_url(instagram_account_id=obj.instagram_account_id),
                ),
                messages.WARNING,
            )
