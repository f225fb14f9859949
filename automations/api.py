"""REST API under /api/v1/: staff only, token or session authentication."""

from typing import Any

from django.db.models import Model, QuerySet
from django.urls import reverse
from rest_framework import routers, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from automations.models import ActivityEntry, ActivityStatus, Automation, Lead, Miss, Workspace
from automations.serializers import (
    ActivityEntrySerializer,
    AutomationSerializer,
    LeadSerializer,
    MissSerializer,
    WorkspaceSerializer,
)
from instabot.ids import pk_from_string


class WorkspaceViewSet(viewsets.ModelViewSet):
    queryset = Workspace.objects.order_by("id")
    serializer_class = WorkspaceSerializer

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        was_refused = self.get_object().token_refused_at is not None
        response = super().update(request, *args, **kwargs)
        workspace = self.get_object()
        if was_refused and workspace.token_refused_at is None:
            # A new token replaced one Meta refused: offer to replay what the refusal parked.
            replay = reverse("workspace-replay-dead-letters", args=[workspace.pk])
            response["Link"] = f'<{request.build_absolute_uri(replay)}>; rel="replay-dead-letters"'
        return response


def filter_by_ids(queryset: QuerySet[Any], *, params: Any, fields: dict[str, type[Model]]) -> QuerySet[Any]:
    """`?<field>=<id>` filters; an id that cannot be one (a word, or a number on MongoDB) matches none."""
    for name, model in fields.items():
        value = params.get(name)
        if value:
            pk = pk_from_string(model=model, value=value)
            queryset = queryset.filter(**{f"{name}_id": pk}) if pk is not None else queryset.none()
    return queryset


class AutomationViewSet(viewsets.ModelViewSet):
    serializer_class = AutomationSerializer

    def get_queryset(self) -> QuerySet[Automation]:
        queryset = Automation.objects.order_by("id")
        return filter_by_ids(queryset, params=self.request.query_params, fields={"workspace": Workspace})


class LeadViewSet(viewsets.ReadOnlyModelViewSet):
    """Answers to follow-up questions; `?workspace=<id>` and `?automation=<id>` filter. Read-only."""

    serializer_class = LeadSerializer

    def get_queryset(self) -> QuerySet[Lead]:
        queryset = Lead.objects.order_by("-created_at", "-id")
        return filter_by_ids(
            queryset, params=self.request.query_params, fields={"workspace": Workspace, "automation": Automation}
        )


class ActivityViewSet(viewsets.ReadOnlyModelViewSet):
    """Sends made or decided against, newest first; `?workspace=`, `?automation=`, `?status=` filter."""

    serializer_class = ActivityEntrySerializer

    def get_queryset(self) -> QuerySet[ActivityEntry]:
        params = self.request.query_params
        queryset = ActivityEntry.objects.order_by("-sent_at", "-id")
        status = params.get("status")
        if status:
            if status not in ActivityStatus.values:
                choices = ", ".join(ActivityStatus.values)
                raise serializers.ValidationError({"status": [f"Unknown status {status!r}: one of {choices}."]})
            queryset = queryset.filter(status=status)
        return filter_by_ids(queryset, params=params, fields={"workspace": Workspace, "automation": Automation})


class MissViewSet(viewsets.ReadOnlyModelViewSet):
    """Events no automation matched, newest first; `?workspace=` filters."""

    serializer_class = MissSerializer

    def get_queryset(self) -> QuerySet[Miss]:
        queryset = Miss.objects.order_by("-received_at", "-id")
        return filter_by_ids(queryset, params=self.request.query_params, fields={"workspace": Workspace})


router = routers.DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("automations", AutomationViewSet, basename="automation")
router.register("leads", LeadViewSet, basename="lead")
router.register("activity", ActivityViewSet, basename="activity")
router.register("misses", MissViewSet, basename="miss")
