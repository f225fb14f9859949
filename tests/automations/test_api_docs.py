"""The API describes itself: OpenAPI 3 at /api/v1/schema/, Swagger UI at /api/v1/docs/, and DRF's
browsable API for staff in a browser."""

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from automations.models import Workspace

pytestmark = pytest.mark.django_db


def test_schema_is_valid_openapi_3_and_lists_every_endpoint(client: Client) -> None:
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)  # raises on anything that is not OpenAPI 3
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/workspaces/",
        "/api/v1/workspaces/{id}/",
        "/api/v1/workspaces/{id}/replay-dead-letters/",
        "/api/v1/automations/",
        "/api/v1/automations/{id}/",
        "/api/v1/leads/",
        "/api/v1/leads/{id}/",
        "/api/v1/activity/",
        "/api/v1/activity/{id}/",
        "/api/v1/misses/",
        "/api/v1/misses/{id}/",
    }
    assert set(schema["paths"]["/api/v1/workspaces/{id}/"]) >= {"get", "put", "patch", "delete"}
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    workspace = schema["components"]["schemas"]["Workspace"]["properties"]
    assert "access_token" not in workspace  # write-only: in requests, never in answers
    assert "access_token" in schema["components"]["schemas"]["WorkspaceRequest"]["properties"]


def test_schema_is_also_served_as_yaml(client: Client) -> None:
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_docs_page_renders_swagger_ui_on_the_schema(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "/api/v1/schema/" in html


def test_browsable_api_for_logged_in_staff(client: Client) -> None:
    Workspace.objects.create(name="Shop", instagram_account_id="17841400000000001", access_token="secret-tok")
    User.objects.create_user("staff", password="pw-123456", is_staff=True)
    User.objects.create_user("customer", password="pw-123456", is_staff=False)

    anonymous = client.get("/api/v1/workspaces/", HTTP_ACCEPT="text/html")
    assert anonymous.status_code == 401
    assert b"/api/v1/auth/login/" in anonymous.content  # the browsable API's "Log in" link
    assert b"secret-tok" not in anonymous.content and b"17841400000000001" not in anonymous.content

    client.login(username="customer", password="pw-123456")
    assert client.get("/api/v1/workspaces/", HTTP_ACCEPT="text/html").status_code == 403

    client.login(username="staff", password="pw-123456")
    page = client.get("/api/v1/workspaces/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert "Workspace List" in html and "17841400000000001" in html
    assert "secret-tok" not in html
    # The root lists the endpoints, and programs still get JSON by default.
    assert "/api/v1/automations/" in client.get("/api/v1/", HTTP_ACCEPT="text/html").content.decode()
    assert client.get("/api/v1/workspaces/")["Content-Type"] == "application/json"


def test_login_page_of_the_browsable_api(client: Client) -> None:
    response = client.get("/api/v1/auth/login/")
    assert response.status_code == 200
    assert b"id_username" in response.content


def test_put_without_a_token_keeps_the_current_one(api: APIClient) -> None:
    workspace = Workspace.objects.create(name="Shop", instagram_account_id="17841400000000001", access_token="tok-1")
    url = f"/api/v1/workspaces/{workspace.pk}/"
    body: dict[str, Any] = {"name": "Renamed", "instagram_account_id": "17841400000000001", "is_active": True}

    response = api.put(url, body, format="json")
    assert response.status_code == 200, response.content
    workspace.refresh_from_db()
    assert (workspace.name, workspace.access_token) == ("Renamed", "tok-1")

    assert api.put(url, {**body, "access_token": "  "}, format="json").status_code == 200
    workspace.refresh_from_db()
    assert workspace.access_token == "tok-1"

    assert api.put(url, {**body, "access_token": "tok-2"}, format="json").status_code == 200
    workspace.refresh_from_db()
    assert workspace.access_token == "tok-2"


def test_creating_a_workspace_still_needs_a_token(api: APIClient) -> None:
    body = {"name": "Shop", "instagram_account_id": "17841400000000002"}
    for extra in ({}, {"access_token": ""}, {"access_token": "   "}):
        response = api.post("/api/v1/workspaces/", {**body, **extra}, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"access_token"}
    assert not Workspace.objects.exists()
