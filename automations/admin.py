from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from automations.activity_selectors import NEVER_FIRED, FiringCounts, automation_firing_counts, miss_automation_initial
from automations.models import ActivityEntry, Automation, AutomationType, Lead, Miss

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
        help_texts = {
            "workspace": "The Instagram account this automation answers for.",
            "name": "For staff only; never sent to anyone.",
            "type": (
                "Which events it answers: direct messages, replies to and mentions in stories, or comments "
                "(on posts, reels and Live)."
            ),
            "media_id": (
                "Comment automations only. The media id of the post or reel to watch; empty watches every post."
            ),
            "reply_text": (
                "The message sent to the person (for a comment automation, the private reply to the commenter). "
                "At most 1000 bytes."
            ),
            "public_reply_text": (
                "Comment automations only. A public reply under the comment (never on Live, where Meta forbids it); "
                "empty sends none."
            ),
            "position": "When several automations match the same event, the lowest position answers. Default 100.",
            "is_active": "Inactive automations never answer.",
            "collect_reply": (
                "Make the reply a question: the person's next DM within 10 minutes is stored as a lead and "
                "answered with the confirmation below."
            ),
            "confirmation_text": "Sent after a lead is stored, when the reply asks a question. Empty sends nothing.",
        }

    COMMENT_ONLY_FIELDS = ("media_id", "public_reply_text")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The page's script disables the comment-only inputs of other types, so they are not posted:
        # that clears them (Django would keep the saved values). Posted values are checked as ever.
        if cleaned.get("type") != AutomationType.COMMENT:
            for name in self.COMMENT_ONLY_FIELDS:
                if name not in self.data:
                    setattr(self.instance, name, "")
        return cleaned


class AutomationChangeList(ChangeList):
    """Reads the fired counts of the page's automations in one go."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        automations = list(self.result_list)
        counts = automation_firing_counts(automation_ids=[a.pk for a in automations])
        for automation in automations:
            automation.firing = counts.get(automation.pk, NEVER_FIRED)
        self.result_list = automations


def _firing(automation: Automation) -> FiringCounts:
    counts: FiringCounts | None = getattr(automation, "firing", None)
    if counts is None:
        counts = automation_firing_counts(automation_ids=[automation.pk]).get(automation.pk, NEVER_FIRED)
    return counts


def _short_time(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def activity_url(**filters: Any) -> str:
    return reverse("admin:automations_activityentry_changelist") + "?" + urlencode(filters)


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    form = AutomationForm
    list_display = [
        "name",
        "workspace_name",
        "type",
        "trigger",
        "position",
        "active",
        "fired",
        "last_fired",
        "updated",
    ]
    list_filter = ["type", "is_active", "workspace"]
    list_select_related = ["workspace"]
    search_fields = ["name", "media_id", "reply_text", "workspace__name"]
    actions = ["activate", "deactivate"]
    readonly_fields = ["firing_summary"]

    class Media:
        # Hides (and disables) the comment-only fields unless the type is Comment.
        js = ["automations/automation_form.js"]
        css = {"all": ["automations/changelist.css"]}

    def get_fieldsets(self, request: HttpRequest, obj: Automation | None = None) -> Any:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ["workspace", "name", "type", "is_active", "position"]}),
            ("When and what", {"fields": ["keywords", "reply_text"]}),
            (
                "Comment automations only",
                {
                    "classes": ["comment-only"],
                    "description": "These apply to comment automations; DM and story automations ignore them.",
                    "fields": ["media_id", "public_reply_text"],
                },
            ),
            ("Follow-up question", {"fields": ["collect_reply", "confirmation_text"]}),
        ]
        if obj is not None:
            fieldsets.append(("Activity", {"fields": ["firing_summary"]}))
        return fieldsets

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AutomationChangeList

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET" and request.GET.get("from_miss"):
            messages.info(
                request,
                "Prefilled from a message no automation answered: keep the keywords that should trigger this "
                "automation, then write the reply.",
            )
        return super().add_view(request, form_url, extra_context)

    @admin.display(description="Workspace", ordering="workspace__name")
    def workspace_name(self, obj: Automation) -> str:
        return obj.workspace.name

    @admin.display(description="Active", boolean=True, ordering="is_active")
    def active(self, obj: Automation) -> bool:
        return obj.is_active

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, obj: Automation) -> str:
        return _short_time(obj.updated_at)

    @admin.display(description="Keywords")
    def trigger(self, obj: Automation) -> str:
        keywords = ", ".join(obj.keywords) if obj.keywords else "(any message)"
        return f"{keywords} (post {obj.media_id})" if obj.media_id else keywords

    @admin.display(description="Fired today / 7 d / all")
    def fired(self, obj: Automation) -> str:
        counts = _firing(obj)
        return f"{counts.today} / {counts.last_7_days} / {counts.total}"

    @admin.display(description="Last fired")
    def last_fired(self, obj: Automation) -> Any:
        last = _firing(obj).last_fired_at
        return _short_time(last) if last else "never"

    @admin.display(description="Fired")
    def firing_summary(self, obj: Automation) -> str:
        counts = _firing(obj)
        last = counts.last_fired_at
        last_text = timezone.localtime(last).strftime("%Y-%m-%d %H:%M %Z") if last else "never"
        return format_html(
            '{} today, {} in the last 7 days, {} in all; last fired {}. <a href="{}">Its activity log</a>',
            counts.today,
            counts.last_7_days,
            counts.total,
            last_text,
            activity_url(automation__id__exact=obj.pk),
        )

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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the workers: staff read them, never add or edit them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ActivityEntry)
class ActivityEntryAdmin(ReadOnlyAdmin):
    """Every send Instabot made or decided against; written by the workers a few seconds after it happened."""

    list_display = [
        "sent_at",
        "workspace",
        "automation",
        "kind",
        "action",
        "recipient",
        "status",
        "latency",
        "event_id",
    ]
    list_filter = ["status", "action", "sent_at", "workspace", "automation"]
    list_select_related = ["workspace", "automation"]
    # Exact matches: both are indexed, a substring search would read the whole log.
    search_fields = ["=recipient", "=event_id"]
    search_help_text = "An Instagram user id (recipient) or an event id (mid or comment id), exactly."
    readonly_fields = [
        "workspace",
        "automation",
        "kind",
        "event_id",
        "action",
        "recipient",
        "status",
        "graph_message_id",
        "detail",
        "received_at",
        "sent_at",
        "latency_ms",
    ]
    show_full_result_count = False

    class Media:
        css = {"all": ["automations/changelist.css"]}

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, obj: ActivityEntry) -> str:
        return f"{obj.latency_ms} ms" if obj.latency_ms is not None else "-"


@admin.register(Miss)
class MissAdmin(ReadOnlyAdmin):
    """Messages and comments no automation matched: each can become a new automation."""

    list_display = ["received_at", "workspace", "kind", "sender", "text", "new_automation"]
    list_filter = ["kind", "received_at", "workspace"]
    list_select_related = ["workspace"]
    search_fields = ["text", "=sender", "=event_id"]
    search_help_text = "Words of the message, or a sender or event id exactly."
    readonly_fields = ["workspace", "kind", "event_id", "sender", "text", "received_at", "new_automation"]
    show_full_result_count = False

    class Media:
        css = {"all": ["automations/changelist.css"]}

    @admin.display(description="Answer it")
    def new_automation(self, obj: Miss) -> str:
        initial = {**miss_automation_initial(miss=obj), "from_miss": str(obj.pk)}
        url = reverse("admin:automations_automation_add") + "?" + urlencode(initial)
        return format_html('<a class="addlink" href="{}">Start an automation</a>', url)
