"""Connect with Instagram (Business Login) through the real views, against the fake over real HTTP:
the authorization window, code and token exchanges, /me and subscribed_apps as Meta documents them."""

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from automations.models import TokenStatus, Workspace
from devtools.fake_graph_api import FakeGraphAPI, graph_error, oauth_error
from instagram import connect
from instagram.client import SCOPES
from tests.support.raw_tokens import stored_access_token

pytestmark = pytest.mark.django_db

CALLBACK = "/connect/instagram/callback/"
NEW_ACCOUNT = "17841400000000042"


@pytest.fixture
def staff(db: None) -> Client:
    user = User.objects.create_user("staff", password="pw-123456", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def instagram(graph: FakeGraphAPI, settings: Any) -> FakeGraphAPI:
    settings.INSTAGRAM_REDIRECT_URI = "https://instabot.example.com/connect/instagram/callback/"
    graph.log_in_as(user_id=NEW_ACCOUNT, username="new_shop")
    return graph


def start(client: Client) -> str:
    response = client.get("/connect/instagram/")
    assert response.status_code == 302
    return str(response["Location"])


def consent(authorize_url: str, *, decision: str = "allow") -> str:
    """What the account owner does in Instagram's window: returns the callback path and query."""
    window = requests.get(authorize_url, timeout=5)
    assert window.status_code == 200, window.text
    query = {key: values[0] for key, values in parse_qs(urlsplit(authorize_url).query).items()}
    base = authorize_url.split("/oauth/authorize")[0]
    answer = requests.get(
        f"{base}/oauth/authorize/decision", params={**query, "decision": decision}, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert back.path == CALLBACK
    return f"{back.path}?{back.query}"


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_connect_redirects_to_the_authorization_window_with_a_signed_state(
    staff: Client, instagram: FakeGraphAPI, settings: Any
) -> None:
    url = urlsplit(start(staff))
    query = parse_qs(url.query)

    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{instagram.base_url}/oauth/authorize"
    assert query["client_id"] == [settings.INSTAGRAM_APP_ID]
    assert query["redirect_uri"] == [settings.INSTAGRAM_REDIRECT_URI]
    assert query["response_type"] == ["code"]
    assert query["scope"] == [
        "instagram_business_basic,instagram_business_manage_messages,instagram_business_manage_comments"
    ]
    assert ",".join(SCOPES) == query["scope"][0]
    assert len(query["state"][0]) > 40


def test_the_whole_round_trip_creates_a_subscribed_active_workspace_with_a_60_day_token(
    staff: Client, instagram: FakeGraphAPI
) -> None:
    callback = consent(start(staff))

    response = staff.get(callback)

    workspace = Workspace.objects.get(instagram_account_id=NEW_ACCOUNT)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/automations/workspace/{workspace.pk}/change/"
    assert (workspace.name, workspace.instagram_username, workspace.is_active) == ("new_shop", "new_shop", True)
    assert instagram.token_account(workspace.access_token) == NEW_ACCOUNT
    assert workspace.access_token.startswith("IGAA")  # the long-lived token, not the short one
    assert workspace.token_status == TokenStatus.OK
    assert workspace.token_expires_at is not None
    assert timedelta(days=59) < workspace.token_expires_at - timezone.now() < timedelta(days=61)
    assert workspace.subscribed_at is not None
    assert instagram.subscribed_fields(NEW_ACCOUNT) == ["comments", "messages"]
    assert workspace.access_token not in stored_access_token(workspace.pk)
    [message] = messages_of(response)
    assert "Connected @new_shop" in message and "subscribed to comments and messages" in message
    assert workspace.access_token not in message
    # The exchange used the app's secret; the /me call the long-lived token.
    [exchange] = instagram.requests("access_token")
    assert exchange.params["grant_type"] == "ig_exchange_token"
    [me] = instagram.requests("me")
    assert me.token == workspace.access_token and me.params == {"fields": "user_id,username"}


def test_reconnecting_an_account_whose_token_was_refused_replaces_it_and_offers_the_replay(
    staff: Client, instagram: FakeGraphAPI
) -> None:
    old = Workspace.objects.create(
        name="My shop", instagram_account_id=NEW_ACCOUNT, access_token="old", is_active=False
    )
    Workspace.objects.filter(pk=old.pk).update(token_refused_at=timezone.now())

    response = staff.get(consent(start(staff)))

    workspace = Workspace.objects.get(pk=old.pk)
    assert Workspace.objects.count() == 1
    assert workspace.name == "My shop"  # staff's name is kept
    assert workspace.access_token != "old" and workspace.is_active
    assert workspace.token_refused_at is None and workspace.token_status == TokenStatus.OK
    reconnected, offer = messages_of(response)
    assert reconnected.startswith("Reconnected @new_shop")
    assert f"/admin/dead-letters/?account={NEW_ACCOUNT}&amp;code=190" in offer


def test_denied_consent_ends_on_a_clear_message_and_creates_nothing(staff: Client, instagram: FakeGraphAPI) -> None:
    callback = consent(start(staff), decision="deny")
    assert "error=access_denied" in callback

    response = staff.get(callback)

    assert response["Location"] == "/admin/automations/workspace/"
    assert messages_of(response) == [
        "Instagram did not connect the account: The user denied your request (access_denied)."
    ]
    assert not Workspace.objects.exists()
    assert instagram.requests("oauth_access_token") == []


def test_a_wrong_state_is_refused_before_any_call_to_meta(staff: Client, instagram: FakeGraphAPI) -> None:
    query = {key: values[0] for key, values in parse_qs(urlsplit(consent(start(staff))).query).items()}
    signature = query["state"][-2:]
    query["state"] = query["state"][:-2] + ("AA" if signature != "AA" else "BB")

    response = staff.get(CALLBACK, query)

    assert messages_of(response) == ["This connection attempt is not valid (wrong state); nothing was connected."]
    assert not Workspace.objects.exists()
    assert instagram.requests("oauth_access_token") == []


def test_a_state_is_used_once(staff: Client, instagram: FakeGraphAPI) -> None:
    callback = consent(start(staff))
    assert staff.get(callback).status_code == 302
    token = Workspace.objects.get().access_token

    again = staff.get(callback)

    # (The first success message is still waiting to be shown, in front.)
    assert messages_of(again)[-1] == (
        "This connection attempt was used already; start again with “Connect an Instagram account”."
    )
    assert len(instagram.requests("oauth_access_token")) == 1
    assert Workspace.objects.get().access_token == token


def test_a_state_made_for_another_staff_user_is_refused(staff: Client, instagram: FakeGraphAPI) -> None:
    callback = consent(start(staff))
    other = Client()
    other.force_login(User.objects.create_user("other", password="pw-123456", is_staff=True))

    response = other.get(callback)

    assert messages_of(response) == ["This connection attempt was started by another user; nothing was connected."]
    assert not Workspace.objects.exists()


def test_an_expired_state_is_refused(staff: Client, instagram: FakeGraphAPI, monkeypatch: Any) -> None:
    callback = consent(start(staff))
    monkeypatch.setattr(connect, "STATE_MAX_AGE", timedelta(seconds=-1))

    response = staff.get(callback)

    assert messages_of(response)[0].startswith("This connection attempt expired")
    assert not Workspace.objects.exists()


@pytest.mark.parametrize(
    ("endpoint", "answer", "shown"),
    [
        ("oauth_access_token", oauth_error("Matching code was not found or was already used"), "Matching code was"),
        ("access_token", graph_error(190, "Error validating access token: Session has expired."), "Session has"),
        ("me", graph_error(100, "Unsupported get request."), "Unsupported get request."),
        ("subscribed_apps", graph_error(200, "Requires instagram_business_manage_messages"), "Requires instagram"),
        ("subscribed_apps", graph_error(2, "Service temporarily unavailable", status=503), "Service temporarily"),
    ],
)
def test_a_meta_error_at_any_step_leaves_nothing_behind(
    staff: Client, instagram: FakeGraphAPI, endpoint: str, answer: Any, shown: str
) -> None:
    existing = Workspace.objects.create(name="Other", instagram_account_id="1784", access_token="kept")
    callback = consent(start(staff))
    instagram.answer_next_at(endpoint, answer)

    response = staff.get(callback)

    [message] = messages_of(response)
    assert message.startswith("Instagram refused the connection:") and shown in message
    assert message.endswith("Nothing was saved.")
    assert list(Workspace.objects.values_list("pk", flat=True)) == [existing.pk]
    assert Workspace.objects.get().access_token == "kept"
    assert instagram.subscribed_fields(NEW_ACCOUNT) is None


def test_meta_unreachable_is_a_clear_message_without_the_secret(
    staff: Client, instagram: FakeGraphAPI, settings: Any
) -> None:
    callback = consent(start(staff))
    settings.INSTAGRAM_OAUTH_BASE_URL = "http://127.0.0.1:9"

    response = staff.get(callback)

    [message] = messages_of(response)
    assert message == "Instagram refused the connection: Instagram unreachable: ConnectionError. Nothing was saved."
    assert settings.INSTAGRAM_APP_SECRET not in message
    assert not Workspace.objects.exists()


def test_connecting_needs_the_app_id(staff: Client, instagram: FakeGraphAPI, settings: Any) -> None:
    settings.INSTAGRAM_APP_ID = ""

    response = staff.get("/connect/instagram/")

    assert response["Location"] == "/admin/automations/workspace/"
    assert "set INSTAGRAM_APP_ID" in messages_of(response)[0]


def test_the_redirect_uri_defaults_to_this_servers_callback(
    staff: Client, instagram: FakeGraphAPI, settings: Any
) -> None:
    settings.INSTAGRAM_REDIRECT_URI = ""

    query = parse_qs(urlsplit(start(staff)).query)

    assert query["redirect_uri"] == ["http://testserver/connect/instagram/callback/"]


@pytest.mark.parametrize("path", ["/connect/instagram/", CALLBACK + "?code=x&state=y"])
def test_connect_pages_are_for_staff_only(db: None, path: str) -> None:
    client = Client()
    client.force_login(User.objects.create_user("user", password="pw-123456"))

    response = client.get(path)

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
