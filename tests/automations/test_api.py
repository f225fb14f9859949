from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automations.models import Automation, Workspace

pytestmark = pytest.mark.django_db


def create_workspace(api: APIClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Shop", "instagram_account_id": "17841400000000001", "access_token": "secret-tok", **overrides}
    response = api.post("/api/v1/workspaces/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_workspace_crud_never_returns_the_token(api: APIClient) -> None:
    created = create_workspace(api)
    assert "access_token" not in created
    assert created["is_active"] is True
    assert Workspace.objects.get().access_token == "secret-tok"

    listed = api.get("/api/v1/workspaces/").json()
    assert b"secret-tok" not in api.get("/api/v1/workspaces/").content
    assert listed["results"][0]["instagram_account_id"] == "17841400000000001"

    url = f"/api/v1/workspaces/{created['id']}/"
    response = api.patch(url, {"name": "Renamed", "access_token": "new-tok"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert Workspace.objects.get().access_token == "new-tok"
    assert b"new-tok" not in response.content

    assert api.delete(url).status_code == 204
    assert not Workspace.objects.exists()


def test_workspace_account_id_is_unique_and_token_required(api: APIClient) -> None:
    create_workspace(api)
    response = api.post(
        "/api/v1/workspaces/", {"name": "Other", "instagram_account_id": "17841400000000001"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"instagram_account_id", "access_token"}


def test_automation_crud(api: APIClient) -> None:
    workspace = create_workspace(api)
    body = {
        "workspace": workspace["id"],
        "name": "Price",
        "type": "comment",
        "media_id": "17900000000000001",
        "keywords": ["price", "cost"],
        "reply_text": "DM text",
        "public_reply_text": "Check DMs",
    }
    response = api.post("/api/v1/automations/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert {k: created[k] for k in body} == body
    assert created["is_active"] is True

    url = f"/api/v1/automations/{created['id']}/"
    assert api.patch(url, {"keywords": ["link"], "is_active": False}, format="json").status_code == 200
    automation = Automation.objects.get()
    assert (automation.keywords, automation.is_active) == (["link"], False)

    filtered = api.get(f"/api/v1/automations/?workspace={workspace['id']}").json()
    assert [a["id"] for a in filtered["results"]] == [created["id"]]
    assert api.get("/api/v1/automations/?workspace=999999").json()["results"] == []

    assert api.delete(url).status_code == 204
    assert not Automation.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"type": "email"}, {"type"}),
        ({"keywords": "price"}, {"keywords"}),
        ({"keywords": ["ok", ""]}, {"keywords"}),
        ({"keywords": [1, {"a": 2}]}, {"keywords"}),
        ({"reply_text": ""}, {"reply_text"}),
        ({"reply_text": "é" * 501}, {"reply_text"}),
        ({"type": "dm", "media_id": "123"}, {"media_id"}),
        ({"type": "story", "public_reply_text": "hi"}, {"public_reply_text"}),
        ({"workspace": 999999}, {"workspace"}),
        ({"name": ""}, {"name"}),
    ],
)
def test_invalid_automation_input_gets_per_field_errors(
    api: APIClient, overrides: dict[str, Any], fields: set[str]
) -> None:
    workspace = create_workspace(api)
    body = {"workspace": workspace["id"], "name": "N", "type": "comment", "keywords": [], "reply_text": "r"}
    response = api.post("/api/v1/automations/", {**body, **overrides}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert not Automation.objects.exists()


def test_partial_update_is_validated_against_the_stored_type(api: APIClient) -> None:
    workspace = create_workspace(api)
    response = api.post(
        "/api/v1/automations/",
        {"workspace": workspace["id"], "name": "N", "type": "dm", "reply_text": "r"},
        format="json",
    )
    url = f"/api/v1/automations/{response.json()['id']}/"
    assert api.patch(url, {"media_id": "1"}, format="json").status_code == 400


def test_anonymous_and_non_staff_users_are_refused(db: None) -> None:
    assert APIClient().get("/api/v1/workspaces/").status_code == 401
    user = User.objects.create_user("plain", password="pw-123456")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/v1/automations/").status_code == 403


def test_drf_create_token_command_issues_a_working_token(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    User.objects.create_user("ops", password="pw-123456", is_staff=True)
    call_command("drf_create_token", "ops")
    key = Token.objects.get(user__username="ops").key
    assert key in capsys.readouterr().out
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/workspaces/").status_code == 200
