"""/api/v1/activity/, /api/v1/misses/ and the automations' fired counts, read through the REST API."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automations.activity import activity_flush, activity_record, miss_record
from automations.activity_store import activity_drain
from automations.models import Automation, AutomationDailyCount, Workspace

pytestmark = pytest.mark.django_db

ACTIVITY_FIELDS = [
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
MISS_FIELDS = ["id", "workspace", "kind", "event_id", "sender", "text", "received_at"]


def send(workspace: Workspace, automation: Automation | None, *, event_id: str, status: str = "sent") -> None:
    now = time.time()
    activity_record(
        workspace_id=workspace.pk,
        automation_id=automation.pk if automation else None,
        kind="comment",
        event_id=event_id,
        action="private_reply",
        recipient="4242",
        status=status,
        graph_message_id="m_1" if status == "sent" else "",
        received_at=now - 0.5,
        sent_at=now,
    )


@pytest.fixture
def logged(automations: dict[str, Automation]) -> dict[str, Automation]:
    """Sends of two workspaces' automations and one miss, in the database."""
    other_workspace = Workspace.objects.create(name="Other", instagram_account_id="2", access_token="t")
    other = Automation.objects.create(workspace=other_workspace, name="O", type="comment", reply_text="r")
    send(automations["comment"].workspace, automations["comment"], event_id="c1")
    send(automations["comment"].workspace, automations["comment"], event_id="c2", status="failed")
    send(other_workspace, other, event_id="c3")
    miss_record(workspace_id=other_workspace.pk, kind="dm", event_id="mid.m", sender="77", text="hello?")
    activity_flush()
    activity_drain()
    return {**automations, "other": other}


def test_activity_lists_every_send_with_the_documented_fields(api: APIClient, logged: dict[str, Automation]) -> None:
    response = api.get("/api/v1/activity/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    newest = body["results"][0]
    assert list(newest) == ACTIVITY_FIELDS
    assert newest["event_id"] == "c3"
    assert str(newest["automation"]) == str(logged["other"].pk)
    assert str(newest["workspace"]) == str(logged["other"].workspace_id)
    assert (newest["kind"], newest["action"], newest["recipient"], newest["status"]) == (
        "comment",
        "private_reply",
        "4242",
        "sent",
    )
    assert newest["graph_message_id"] == "m_1"
    assert newest["latency_ms"] == 500
    sent_at = datetime.fromisoformat(newest["sent_at"].replace("Z", "+00:00"))
    received_at = datetime.fromisoformat(newest["received_at"].replace("Z", "+00:00"))
    assert sent_at - received_at == timedelta(milliseconds=500)


def test_activity_filters_by_workspace_automation_and_status(api: APIClient, logged: dict[str, Automation]) -> None:
    def event_ids(**params: object) -> list[str]:
        response = api.get("/api/v1/activity/", params)
        assert response.status_code == 200, response.content
        return sorted(row["event_id"] for row in response.json()["results"])

    comment = logged["comment"]
    assert event_ids(workspace=comment.workspace_id) == ["c1", "c2"]
    assert event_ids(automation=logged["other"].pk) == ["c3"]
    assert event_ids(status="failed") == ["c2"]
    assert event_ids(workspace=comment.workspace_id, status="sent") == ["c1"]
    assert event_ids(workspace="999999") == []
    assert event_ids(limit=1) == ["c3"]


def test_an_unknown_status_is_a_clear_error(api: APIClient, logged: dict[str, Automation]) -> None:
    response = api.get("/api/v1/activity/", {"status": "delivered"})
    assert response.status_code == 400
    assert response.json() == {
        "status": ["Unknown status 'delivered': one of sent, failed, uncertain, skipped_duplicate."]
    }


def test_activity_and_misses_are_read_only(api: APIClient, logged: dict[str, Automation]) -> None:
    row = api.get("/api/v1/activity/").json()["results"][0]
    assert api.post("/api/v1/activity/", {}, format="json").status_code == 405
    assert api.delete(f"/api/v1/activity/{row['id']}/").status_code == 405
    assert api.get(f"/api/v1/activity/{row['id']}/").json() == row
    assert api.post("/api/v1/misses/", {}, format="json").status_code == 405


def test_misses_list_with_the_documented_fields(api: APIClient, logged: dict[str, Automation]) -> None:
    body = api.get("/api/v1/misses/").json()
    [miss] = body["results"]
    assert list(miss) == MISS_FIELDS
    assert (str(miss["workspace"]), miss["kind"], miss["event_id"], miss["sender"], miss["text"]) == (
        str(logged["other"].workspace_id),
        "dm",
        "mid.m",
        "77",
        "hello?",
    )
    assert api.get("/api/v1/misses/", {"workspace": logged["comment"].workspace_id}).json()["results"] == []


def test_non_staff_users_cannot_read_the_logs(db: None) -> None:
    assert APIClient().get("/api/v1/activity/").status_code == 401
    user = User.objects.create_user("plain", password="pw-123456")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/v1/activity/").status_code == 403
    assert client.get("/api/v1/misses/").status_code == 403


def test_automations_show_read_only_fired_counts(api: APIClient, logged: dict[str, Automation]) -> None:
    comment = logged["comment"]
    AutomationDailyCount.objects.create(
        automation=comment,
        day=(datetime.now(tz=UTC) - timedelta(days=3)).date(),
        fired=4,
        last_fired_at=datetime.now(tz=UTC) - timedelta(days=3),
    )
    listed = {str(row["id"]): row for row in api.get("/api/v1/automations/").json()["results"]}
    mine = listed[str(comment.pk)]
    assert (mine["fired_today"], mine["fired_7d"]) == (1, 5)  # c1 today (c2 failed), 4 three days ago
    assert mine["last_fired_at"] is not None
    assert datetime.now(tz=UTC) - datetime.fromisoformat(mine["last_fired_at"].replace("Z", "+00:00")) < timedelta(
        minutes=5
    )
    never = listed[str(logged["dm"].pk)]
    assert (never["fired_today"], never["fired_7d"], never["last_fired_at"]) == (0, 0, None)

    url = f"/api/v1/automations/{comment.pk}/"
    detail = api.get(url).json()
    assert (detail["fired_today"], detail["fired_7d"]) == (1, 5)
    response = api.patch(url, {"fired_today": 99, "fired_7d": 99, "name": "Renamed"}, format="json")
    assert response.status_code == 200
    assert (response.json()["fired_today"], response.json()["name"]) == (1, "Renamed")
