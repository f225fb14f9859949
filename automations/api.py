"""REST API under /api/v1/: staff only, token or session authentication."""

from django.db.models import QuerySet
from rest_framework import routers, viewsets

from automations.models import Automation, Workspace
from automations.serializers import AutomationSerializer, WorkspaceSerializer
from instabot.ids import pk_from_string


class WorkspaceViewSet(viewsets.ModelViewSet):
    queryset = Workspace.objects.order_by("id")
    serializer_class = WorkspaceSerializer


class AutomationViewSet(viewsets.ModelViewSet):
    serializer_class = AutomationSerializer

    def get_queryset(self) -> QuerySet[Automation]:
        queryset = Automation.objects.order_by("id")
        workspace = self.request.query_params.get("workspace")
        if workspace:
            # An id that cannot be a workspace's (a word, or a number on MongoDB) matches none.
            workspace_id = pk_from_string(model=Workspace, value=workspace)
            queryset = queryset.filter(workspace_id=workspace_id) if workspace_id is not None else queryset.none()
        return queryset


router = routers.DefaultRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("automations", AutomationViewSet, basename="automation")
