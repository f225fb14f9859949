"""Instagram's account endpoints: the authorization window, code and token exchanges, refresh, `/me`,
and webhook subscriptions (Business Login for Instagram; Meta's documented requests and answers).

Hosts come from settings: `INSTAGRAM_OAUTH_BASE_URL` (api.instagram.com) for `/oauth/authorize` and
`/oauth/access_token`, `GRAPH_API_BASE_URL` (graph.instagram.com) for the rest. Every call has the Graph
client's explicit timeouts and proxy. Meta's errors become `GraphAPIError` (with `code`; 190 is a token
Meta refuses). Some endpoints take the token or the app secret in the query string, as Meta documents
them: no URL, query or request ever goes into a log line or an exception message here.
"""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings

from automations.graph import (
    GraphAPIConnectionError,
    GraphAPIError,
    GraphAPITimeoutError,
    graph_error_from,
)

# What Instabot asks for: read the account, answer its DMs, answer its comments.
SCOPES = ("instagram_business_basic", "instagram_business_manage_messages", "instagram_business_manage_comments")
# Webhook fields every connected account is subscribed to (Meta allows no per-account choice).
SUBSCRIBED_FIELDS = ("comments", "messages")


@dataclass(frozen=True)
class IssuedToken:
    access_token: str = field(repr=False)
    # Seconds until it expires, when Meta says (long-lived tokens: about 60 days).
    expires_in: int | None = None
    # The code exchange also names the app-scoped user id and the permissions granted.
    user_id: str = ""
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstagramAccount:
    # The professional account's id: what webhooks carry in `entry[].id`.
    user_id: str
    username: str


def authorize_url(*, state: str, redirect_uri: str) -> str:
    """Instagram's authorization window, where the account owner grants Instabot its scopes."""
    query = urlencode(
        {
            "client_id": settings.INSTAGRAM_APP_ID,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": ",".join(SCOPES),
            "state": state,
        }
    )
    return f"{settings.INSTAGRAM_OAUTH_BASE_URL}/oauth/authorize?{query}"


def code_exchange(*, code: str, redirect_uri: str) -> IssuedToken:
    """`POST /oauth/access_token`: the authorization code for a short-lived (1 hour) token."""
    body = _call(
        "POST",
        f"{settings.INSTAGRAM_OAUTH_BASE_URL}/oauth/access_token",
        data={
            "client_id": settings.INSTAGRAM_APP_ID,
            "client_secret": settings.INSTAGRAM_APP_SECRET,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
            "code": code,
        },
    )
    # Meta documents {"data": [{...}]}; older answers were the object itself.
    data = body.get("data")
    entry = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else body
    permissions = entry.get("permissions", "")
    return IssuedToken(
        access_token=_token_from(entry),
        user_id=str(entry.get("user_id", "")),
        permissions=tuple(p for p in str(permissions).split(",") if p) if isinstance(permissions, str) else (),
    )


def long_lived_token_exchange(*, short_lived_token: str) -> IssuedToken:
    """`GET /access_token?grant_type=ig_exchange_token`: a short-lived token for a 60-day one."""
    body = _call(
        "GET",
        f"{settings.GRAPH_API_BASE_URL}/access_token",
        params={
            "grant_type": "ig_exchange_token",
            "client_secret": settings.INSTAGRAM_APP_SECRET,
            "access_token": short_lived_token,
        },
    )
    return IssuedToken(access_token=_token_from(body), expires_in=_seconds(body.get("expires_in")))


def long_lived_token_refresh(*, access_token: str) -> IssuedToken:
    """`GET /refresh_access_token?grant_type=ig_refresh_token`: another 60 days for a token at least
    24 hours old and not expired."""
    body = _call(
        "GET",
        f"{settings.GRAPH_API_BASE_URL}/refresh_access_token",
        params={"grant_type": "ig_refresh_token", "access_token": access_token},
    )
    return IssuedToken(access_token=_token_from(body), expires_in=_seconds(body.get("expires_in")))


def account_read(*, access_token: str) -> InstagramAccount:
    """`GET /{version}/me?fields=user_id,username`: `user_id` is the id webhooks carry (`id` is app-scoped)."""
    body = _call(
        "GET",
        f"{settings.GRAPH_API_BASE_URL}/{settings.GRAPH_API_VERSION}/me",
        params={"fields": "user_id,username"},
        access_token=access_token,
    )
    user_id = body.get("user_id")
    if not isinstance(user_id, str | int) or isinstance(user_id, bool) or not str(user_id):
        raise GraphAPIError("Meta's answer to /me had no user_id")
    return InstagramAccount(user_id=str(user_id), username=str(body.get("username", "")))


def webhooks_subscribe(*, access_token: str) -> None:
    """`POST /{version}/me/subscribed_apps?subscribed_fields=comments,messages`: without it Meta sends the
    account's webhooks nowhere, whatever the App Dashboard says."""
    body = _call(
        "POST",
        f"{settings.GRAPH_API_BASE_URL}/{settings.GRAPH_API_VERSION}/me/subscribed_apps",
        params={"subscribed_fields": ",".join(SUBSCRIBED_FIELDS)},
        access_token=access_token,
    )
    if body.get("success") is not True:
        raise GraphAPIError("Meta did not confirm the subscription")


# --- transport ---------------------------------------------------------------------------------------


def _call(
    method: str,
    url: str,
    *,
    params: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    access_token: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    with requests.Session() as session:
        # Only GRAPH_API_PROXY, as for sends: HTTP(S)_PROXY and .netrc are not read.
        session.trust_env = False
        if settings.GRAPH_API_PROXY:
            session.proxies = {"http": settings.GRAPH_API_PROXY, "https": settings.GRAPH_API_PROXY}
        try:
            response = session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=(settings.GRAPH_API_CONNECT_TIMEOUT, settings.GRAPH_API_READ_TIMEOUT),
                allow_redirects=False,
            )
        # requests' messages hold the URL, and with it the query's secrets: only the type is kept.
        except requests.ConnectTimeout as exc:
            raise GraphAPIConnectionError(f"Instagram unreachable: {type(exc).__name__}") from None
        except requests.Timeout as exc:
            raise GraphAPITimeoutError(f"Instagram did not answer in time: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise GraphAPIConnectionError(f"Instagram unreachable: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise _error_from(response)
    try:
        body = response.json()
    except ValueError:
        raise GraphAPIError(f"Instagram answered HTTP {response.status_code} without JSON") from None
    if not isinstance(body, dict):
        raise GraphAPIError("Instagram answered with something other than a JSON object")
    return body


def _error_from(response: requests.Response) -> GraphAPIError:
    """Graph errors ({"error": {...}}) and the OAuth host's own shape ({"error_type", "code", "error_message"})."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_message" in body:
        code = body.get("code")
        return GraphAPIError(
            str(body["error_message"])[:500],
            status=response.status_code,
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            error_type=str(body.get("error_type", ""))[:100],
        )
    return graph_error_from(status=response.status_code, body=response.content, headers=response.headers)


def _token_from(body: dict[str, Any]) -> str:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise GraphAPIError("Meta's answer had no access_token")
    return token


def _seconds(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
