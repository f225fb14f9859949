from typing import Any

import redis
from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from automations.cache import DATASETS
from automations.models import Automation, Lead
from automations.stats import cache_stats_get

# Workspaces (connected Instagram accounts, their tokens) are administered in instagram/admin.py.


class KeywordsField(forms.CharField):
    """Comma-separated keywords in the form, a list of strings in the model."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [item.strip() for item in text.split(",") if item.strip()]


class AutomationForm(forms.ModelForm):
    keywords = KeywordsField(
        required=False,
        help_text="Comma-separated; matched as whole words, ignoring case. Empty matches every message.",
    )

    class Meta:
        model = Automation
        fields = [
            "workspace",
            "name",
            "type",
            "media_id",
            "keywords",
            "reply_text",
            "public_reply_text",
            "position",
            "is_active",
            "collect_reply",
            "confirmation_text",
        ]


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    form = AutomationForm
    list_display = ["name", "workspace", "type", "trigger_keywords", "media_id", "position", "is_active", "updated_at"]
    list_filter = ["type", "is_active", "workspace"]
    list_select_related = ["workspace"]
    search_fields = ["name", "media_id", "reply_text", "workspace__name"]
    actions = ["activate", "deactivate"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Hits and misses of the worker's cache, as `manage.py cache_stats` prints them.
        try:
            stats = cache_stats_get(datasets=DATASETS)
        except redis.RedisError:
            stats = []
        context = {**(extra_context or {}), "cache_stats": stats}
        return super().changelist_view(request, extra_context=context)

    @admin.display(description="Keywords")
    def trigger_keywords(self, obj: Automation) -> str:
        return ", ".join(obj.keywords) if obj.keywords else "(any message)"

    @admin.action(description="Activate selected automations")
    def activate(self, request: HttpRequest, queryset: QuerySet[Automation]) -> None:
        # Saved one by one so that save signals (cache invalidation) run for each.
        for automation in queryset:
            automation.is_active = True
            automation.save(update_fields=["is_active", "updated_at"])

    @admin.action(description="Deactivate selected automations")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Automation]) -> None:
        for automation in queryset:
            automation.is_active = False
            automation.save(update_fields=["is_active", "updated_at"])


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    """Answers users gave to follow-up questions; recorded by the worker, read here."""

    list_display = ["created_at", "workspace", "automation", "instagram_user_id", "text"]
    list_filter = ["workspace", "automation"]
    list_select_related = ["workspace", "automation"]
    search_fields = ["text", "instagram_user_id"]
    readonly_fields = ["workspace", "automation", "instagram_user_id", "text", "event_id", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Lead | None = None) -> bool:
        return False
