"""`POST /api/v1/workspaces/<id>/replay-dead-letters/`: after a new token, replay what its refusal parked."""

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automations.models import Workspace
from automations.tokens import TOKEN_REFUSED_CODE
from instabot.ids import pk_from_string
from queueing.dead_letters import dead_letter_replay_all


class WorkspaceDeadLettersReplayView(APIView):
    """Replays the workspace's dead letters parked because Meta refused its token (code 190), each once;
    answers `{"replayed": <count>}`. Staff only, like the rest of the API."""

    @extend_schema(
        request=None,
        responses=inline_serializer(name="DeadLettersReplayed", fields={"replayed": serializers.IntegerField()}),
    )
    def post(self, request: Request, pk: str, **kwargs: Any) -> Response:
        workspace_pk = pk_from_string(model=Workspace, value=pk)
        account_id = (
            Workspace.objects.filter(pk=workspace_pk).values_list("instagram_account_id", flat=True).first()
            if workspace_pk is not None
            else None
        )
        if account_id is None:
            raise Http404
        replayed = dead_letter_replay_all(account_id=account_id, error_code=TOKEN_REFUSED_CODE).replayed
        return Response({"replayed": replayed})
