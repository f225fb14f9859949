"""REST API under /api/v1/: staff only, token or session authentication."""

from django.db.models import QuerySet
from rest_framework import routers, viewsets

from automations.models import Automation, Lead, Workspace
from automations.serializers import AutomationSerializer, LeadSerializer, WorkspaceSerializer


class WorkspaceViewSet(viewsets.ModelViewSet):
    queryset = Workspace.objects.order_by("id")
    serializer_class = WorkspaceSerializer


class AutomationViewSet(viewsets.ModelViewSet):
    serializer_class = AutomationSerializer

    def get_queryset(self) -> QuerySet[Automation]:
        queryset = Automation.objects.order_by("id")
        workspace = self.request.query_params.get("workspace")
        if workspace and workspace.isdigit():
            queryset = queryset.filter(workspace_id=int(workspace))
        return queryset


class LeadViewSet(viewsets.ReadOnlyModelViewSet):
    """Answers to follow-up questions; `?workspace=<id>` and `?automation=<id>` filter. Read-only."""

    serializer_class = LeadSerializer

    def get_queryset(self) -> QuerySet[Lead]:
        queryset = Lead.objects.order_by("-created_at", "-id")
        for name in ("workspace", "automation"):
            value = self.request.query_params.get(name)
            if value and value.isdigit():
                queryset = queryset.filter(**{f"{name}_id": int(value)})
        return queryset


router = routers.DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("automations", AutomationViewSet, basename="automation")
router.register("leads", LeadViewSet, basename="lead")
