from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from automations.activity_selectors import NEVER_FIRED, FiringCounts, automation_firing_counts
from automations.models import ActivityEntry, Automation, Lead, Miss, TokenStatus, Workspace
from instabot.ids import ModelSerializer


class WorkspaceSerializer(ModelSerializer):
    # Write-only: the API accepts a token and never returns one. As in the admin, an update without one
    # (absent or blank) keeps the current token.
    access_token = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        max_length=4096,
        help_text="Required when creating a workspace. On update, omit it (or send it blank) to keep the current "
        "token. Never returned.",
    )
    # `ok`, `expiring` (within 7 days) or `expired` (past its expiry, or refused by Meta: sends are parked).
    token_status = serializers.ChoiceField(choices=TokenStatus.choices, read_only=True)

    class Meta:
        model = Workspace
        fields = [
            "id",
            "name",
            "instagram_account_id",
            "access_token",
            "is_active",
            "token_status",
            "token_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["token_expires_at", "created_at", "updated_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is None:  # creating: a workspace cannot answer anyone without a token
            fields["access_token"].required = True
            fields["access_token"].allow_blank = False  # type: ignore[attr-defined]
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("access_token"):
            attrs.pop("access_token", None)  # an update without a token keeps the current one
        return attrs


class AutomationListSerializer(serializers.ListSerializer):
    """Reads the fired counts of a whole page in one go, not once per automation."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        automations = list(data.all() if hasattr(data, "all") else data)
        self.child.firing_counts = automation_firing_counts(automation_ids=[a.pk for a in automations])  # type: ignore[union-attr]
        return super().to_representation(automations)


class AutomationSerializer(ModelSerializer):
    keywords = serializers.ListField(
        child=serializers.CharField(max_length=100, allow_blank=False, trim_whitespace=True),
        required=False,
        max_length=200,
    )
    # Events the automation answered (its DM or private reply sent), per UTC day; read-only.
    fired_today = serializers.SerializerMethodField()
    fired_7d = serializers.SerializerMethodField()
    last_fired_at = serializers.SerializerMethodField()

    firing_counts: dict[Any, FiringCounts] | None = None

    class Meta:
        model = Automation
        list_serializer_class = AutomationListSerializer
        fields = [
            "id",
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
            "created_at",
            "updated_at",
            "fired_today",
            "fired_7d",
            "last_fired_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def _firing(self, automation: Automation) -> FiringCounts:
        if self.firing_counts is None:  # one automation (retrieve, create, update); a list sets them all
            self.firing_counts = automation_firing_counts(automation_ids=[automation.pk])
        return self.firing_counts.get(automation.pk, NEVER_FIRED)

    def get_fired_today(self, automation: Automation) -> int:
        return self._firing(automation).today

    def get_fired_7d(self, automation: Automation) -> int:
        return self._firing(automation).last_7_days

    def get_last_fired_at(self, automation: Automation) -> str | None:
        last = self._firing(automation).last_fired_at
        return serializers.DateTimeField().to_representation(last) if last else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The model's own rules (comment-only fields, text length) apply to API writes too.
        instance = Automation(**{**self._current_values(), **attrs})
        try:
            instance.clean()
            instance.clean_fields(exclude=["workspace"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _current_values(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        names = ["workspace", "name", "type", "media_id", "keywords", "reply_text", "public_reply_text"]
        names += ["collect_reply", "confirmation_text"]
        return {name: getattr(self.instance, name) for name in names}


class LeadSerializer(ModelSerializer):
    class Meta:
        model = Lead
        fields = ["id", "workspace", "automation", "instagram_user_id", "text", "event_id", "created_at"]
        read_only_fields = fields


class ActivityEntrySerializer(ModelSerializer):
    class Meta:
        model = ActivityEntry
        fields = [
            "id",
            "workspace",
            "automation",
            "kind",
            "event_id",
            "action",
            "recipient",
            "status",
            "graph_message_id",
            "received_at",
            "sent_at",
            "latency_ms",
        ]
        read_only_fields = fields


class MissSerializer(ModelSerializer):
    class Meta:
        model = Miss
        fields = ["id", "workspace", "kind", "event_id", "sender", "text", "received_at"]
        read_only_fields = fields
