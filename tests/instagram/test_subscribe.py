"""`manage.py subscribe_account` and the admin's subscribe action, against the fake over real HTTP."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client

from automations.models import TokenStatus, Workspace
from devtools.fake_graph_api import FakeGraphAPI, graph_error
from tests.conftest import ACCOUNT_ID
from tests.support.processes import run_manage


@pytest.fixture
def connected(graph: FakeGraphAPI, db: None) -> Workspace:
    token = graph.issue_token(user_id=ACCOUNT_ID, username="shop")
    return Workspace.objects.create(name="Shop", instagram_account_id=ACCOUNT_ID, access_token=token)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_subscribe_account_subscribes_with_the_workspace_token_and_exits_0(
    graph: FakeGraphAPI, connected: Workspace
) -> None:
    result = run_manage("subscribe_account", ACCOUNT_ID)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"subscribed account {ACCOUNT_ID} (workspace 'Shop') to comments, messages"
    assert graph.subscribed_fields(ACCOUNT_ID) == ["comments", "messages"]
    [request] = graph.requests("subscribed_apps")
    assert (request.method, request.token, request.params) == (
        "POST",
        connected.access_token,
        {"subscribed_fields": "comments,messages"},
    )
    assert Workspace.objects.get().subscribed_at is not None
    assert connected.access_token not in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_subscribe_account_names_an_expired_token_and_exits_non_zero(graph: FakeGraphAPI, connected: Workspace) -> None:
    graph.expire_token(connected.access_token)

    result = run_manage("subscribe_account", ACCOUNT_ID)

    assert result.returncode == 1
    assert "has expired or was revoked" in result.stderr
    assert "Session has expired" in result.stderr and "code 190" in result.stderr
    assert connected.access_token not in result.stdout + result.stderr
    workspace = Workspace.objects.get()
    assert workspace.subscribed_at is None
    assert workspace.token_status == TokenStatus.EXPIRED  # as a refused send would mark it


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_subscribe_account_passes_on_metas_message(graph: FakeGraphAPI, connected: Workspace) -> None:
    graph.answer_next_at("subscribed_apps", graph_error(10, "Application does not have permission for this action"))

    result = run_manage("subscribe_account", ACCOUNT_ID)

    assert result.returncode == 1
    assert "Application does not have permission for this action" in result.stderr
    assert Workspace.objects.get().token_status == TokenStatus.OK


def test_subscribe_account_of_an_unknown_account_exits_non_zero(graph: FakeGraphAPI, connected: Workspace) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no workspace has Instagram account id 999"):
        call_command("subscribe_account", "999")
    assert graph.requests() == []


def test_the_admin_action_subscribes_each_selected_account_and_reports_each(
    graph: FakeGraphAPI, connected: Workspace, settings: Any
) -> None:
    expired = Workspace.objects.create(name="Old", instagram_account_id="1784", access_token="old-token")
    graph.expire_token("old-token")
    client = Client()
    client.force_login(User.objects.create_user("staff", password="pw-123456", is_staff=True, is_superuser=True))

    response = client.post(
        "/admin/automations/workspace/",
        {"action": "subscribe", "_selected_action": [connected.pk, expired.pk]},
    )

    assert response.status_code == 302
    messages = sorted(str(m) for m in get_messages(response.wsgi_request))
    assert messages[0].startswith("Old: the access token of account 1784 has expired or was revoked")
    assert messages[1] == f"Shop: account {ACCOUNT_ID} subscribed to comments and messages."
    assert graph.subscribed_fields(ACCOUNT_ID) == ["comments", "messages"]
    assert Workspace.objects.get(pk=expired.pk).token_status == TokenStatus.EXPIRED
