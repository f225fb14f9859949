"""Edits through the REST API reach the very next webhook, with no TTL wait.
(The admin's edit is tested in test_admin_browser.py.)"""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from automations.models import Automation, Workspace
from devtools.fake_graph_api import FakeGraphAPI
from tests.conftest import ACCOUNT_ID, run_worker_burst
from tests.support.webhooks import post_webhook
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_user("staff", password="pw-123456", is_staff=True))
    return client


def send_dm() -> None:
    """A new DM each time (the same message again would be a redelivery, answered only once)."""
    payload = sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, text="price?")
    assert post_webhook(Client(), encode_payload(payload)).status_code == 200
    run_worker_burst()


def test_an_api_edit_is_used_by_the_next_webhook(
    api: APIClient, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    send_dm()
    url = f"/api/v1/automations/{automations['dm'].pk}/"
    assert api.patch(url, {"reply_text": "Edited through the API"}, format="json").status_code == 200
    send_dm()
    assert [c.body["message"]["text"] for c in graph.calls()] == ["DM: prices here", "Edited through the API"]


def test_an_api_delete_is_used_by_the_next_webhook(
    api: APIClient, graph: FakeGraphAPI, automations: dict[str, Automation]
) -> None:
    send_dm()
    assert api.delete(f"/api/v1/automations/{automations['dm'].pk}/").status_code == 204
    send_dm()
    assert len(graph.calls()) == 1


def test_an_api_workspace_deactivation_and_delete_are_used_by_the_next_webhook(
    api: APIClient, graph: FakeGraphAPI, automations: dict[str, Automation], workspace: Workspace
) -> None:
    send_dm()
    url = f"/api/v1/workspaces/{workspace.pk}/"
    assert api.patch(url, {"is_active": False}, format="json").status_code == 200
    send_dm()
    assert api.patch(url, {"is_active": True, "access_token": "rotated"}, format="json").status_code == 200
    send_dm()
    assert [c.token for c in graph.calls()] == ["workspace-token-abc", "rotated"]
    assert api.delete(url).status_code == 204
    send_dm()
    assert len(graph.calls()) == 2
