"""A fake Instagram Graph API over real HTTP, for tests, the Quick start demo and the benchmark.

It answers like Meta (success bodies, error bodies with `error.code`, `error_subcode`,
`fbtrace_id`) and records every call Meta would have acted on. Run it alone:

    python -m devtools.fake_graph_api --port 8100 [--latency-ms 100] [--idle-close-ms 5000]

or in-process with `FakeGraphAPI().start()`. Control endpoints for other processes:
`GET /_fake/calls`, `POST /_fake/reset`, `POST /_fake/script` (a JSON list of
`{"status": int, "body": {...}}` answers for the next calls), `POST /_fake/expire` (a token),
`GET /_fake/requests` (account calls), `GET /_fake/subscriptions`, `POST /_fake/account`
(`{"user_id", "username"}`: who logs in on the authorization window).

Besides sends (`POST /{version}/me/messages`, `.../{comment-id}/replies`) it serves Business Login for
Instagram, one host standing in for both of Meta's (INSTAGRAM_OAUTH_BASE_URL and GRAPH_API_BASE_URL):

- `GET /oauth/authorize`: the authorization window, an HTML page with Allow and Cancel, which sends
  the browser to `redirect_uri?code=...&state=...#_`, or with `error=access_denied&error_reason=
  user_denied&error_description=...` on Cancel. It checks `client_id`, `response_type=code` and
  that `scope` includes `instagram_business_basic`.
- `POST /oauth/access_token` (form: client_id, client_secret, grant_type=authorization_code,
  redirect_uri, code): `{"data": [{"access_token", "user_id", "permissions"}]}` with a 1-hour token;
  a code works once, with the redirect_uri it was issued for; errors in the OAuth host's own shape
  `{"error_type": "OAuthException", "code": 400, "error_message": ...}`.
- `GET /access_token?grant_type=ig_exchange_token&client_secret&access_token` (a short-lived token)
  and `GET /refresh_access_token?grant_type=ig_refresh_token&access_token`:
  `{"access_token", "token_type": "bearer", "expires_in": 5183944}`.
- `GET /{version}/me?fields=user_id,username`: the account whose token it is (`id` is app-scoped).
- `POST /{version}/me/subscribed_apps?subscribed_fields=comments,messages`: `{"success": true}`;
  `GET` lists them as `{"data": [{"subscribed_fields": [...]}]}`.

An expired or unknown-and-malformed token gets Meta's code 190. Tokens the fake did not issue are
accepted (sends, refresh, subscriptions) so hand-made test tokens keep working; `/_fake/expire`
makes any token expired. The fake does not enforce refresh's 24-hour minimum age.
`GET /_fake/calls`, `POST /_fake/reset`, `POST /_fake/expire` (a token), `POST /_fake/latency` (ms),
`POST /_fake/idle-close` (ms, 0 for never), and `POST /_fake/script`: a JSON list of answers for the
next calls, each `{"status": int, "body": {...}}` (Meta's answer), `{"drop": "close" | "reset"}`
(read the request, act on it, close or reset the connection without answering) or `{"delay_ms": int}`
(act on it, answer only after that long: longer than the client's read timeout, the answer is lost).

Faults a real network shows, for the exactly-once tests:
- a dropped answer (`drop`): the request arrived and was acted on, the client sees the connection
  closed or reset before any answer;
- a late answer (`delay_ms`): acted on at once, answered after the client gave up;
- idle keep-alive connections closed by the server after `idle_close_ms`, as every HTTP server
  does (Meta's edge included): a client that reuses one the server just closed loses that request
  before the server reads it (not recorded as a call).
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_SEND_PATH = re.compile(r"^/v\d+\.\d+/([^/?]+)/(messages|replies)/?(?:\?.*)?$")
_VERSIONED = re.compile(r"^/v\d+\.\d+(/.*)$")

DEFAULT_APP_ID = "990602627938098"
# Instabot's development default for INSTAGRAM_APP_SECRET, so that the Quick start connects as it is.
DEFAULT_APP_SECRET = "dev-app-secret"  # noqa: S105 - a public development default
SHORT_LIVED_SECONDS = 3600
LONG_LIVED_SECONDS = 5183944  # Meta's example: about 60 days
SCOPE_REQUIRED = "instagram_business_basic"


@dataclass
class RecordedCall:
    path: str
    token: str
    body: Any
    at: float
    # How the answer was lost, if it was: "close" or "reset" (dropped), "late" (after delay_ms).
    fault: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "token": self.token, "body": self.body, "at": self.at, "fault": self.fault}


DROP_CLOSE = "close"
DROP_RESET = "reset"


@dataclass
class ScriptedAnswer:
    # None: the usual success answer (after `delay_s`, or never with `drop`).
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # Meta acted on the request although it answered with an error (code 1, subcode 1357046).
    counts_as_sent: bool = False
    # Act on the request, then close ("close") or reset ("reset") the connection without answering.
    drop: str = ""
    # Act on the request at once, answer only after this many seconds.
    delay_s: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScriptedAnswer:
        drop = str(data.get("drop", ""))
        if drop not in ("", DROP_CLOSE, DROP_RESET):
            raise ValueError(f"drop must be {DROP_CLOSE!r} or {DROP_RESET!r}, not {drop!r}")
        return cls(
            status=data.get("status"),
            body=data.get("body", {}),
            headers=data.get("headers", {}),
            counts_as_sent=data.get("counts_as_sent", False),
            drop=drop,
            delay_s=float(data.get("delay_ms", 0)) / 1000,
        )

    @property
    def acted_on(self) -> bool:
        """Whether Meta would have sent the message (recorded as a call)."""
        return self.status is None or self.status < 400 or self.counts_as_sent


def dropped_answer(*, reset: bool = False) -> ScriptedAnswer:
    """The request is acted on and the connection closed (or reset) before any answer."""
    return ScriptedAnswer(drop=DROP_RESET if reset else DROP_CLOSE)


def late_answer(seconds: float) -> ScriptedAnswer:
    """The request is acted on at once and answered `seconds` later."""
    return ScriptedAnswer(delay_s=seconds)


def graph_error(code: int, message: str, *, subcode: int | None = None, status: int = 400) -> ScriptedAnswer:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return ScriptedAnswer(status=status, body={"error": error})


def oauth_error(message: str, *, status: int = 400) -> ScriptedAnswer:
    """The OAuth host's own error shape (api.instagram.com/oauth/access_token)."""
    body = {"error_type": "OAuthException", "code": status, "error_message": message}
    return ScriptedAnswer(status=status, body=body)


@dataclass(frozen=True)
class FakeAccount:
    user_id: str
    username: str

    @property
    def app_scoped_id(self) -> str:
        """What Meta calls the Instagram-scoped user id: not the account id webhooks carry."""
        return str(10**15 + zlib.crc32(self.user_id.encode()))


@dataclass
class FakeToken:
    token: str
    account: FakeAccount
    long_lived: bool
    expires_at: float


@dataclass
class FakeCode:
    account: FakeAccount
    redirect_uri: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class RecordedRequest:
    """A call to an account endpoint (OAuth, tokens, me, subscriptions)."""

    endpoint: str
    method: str
    token: str
    params: dict[str, str]
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "method": self.method, "token": self.token, "params": self.params}


@dataclass
class FakeGraphState:
    latency_s: float = 0.0
    # Keep-alive connections idle this long are closed by the server (0: never).
    idle_close_s: float = 0.0
    calls: list[RecordedCall] = field(default_factory=list)
    # Send requests read and not yet answered (or dropped); 0 when the fake is quiet.
    in_flight: int = 0
    connections_opened: int = 0
    connections_open: int = 0
    connections_idle_closed: int = 0
    script: deque[ScriptedAnswer] = field(default_factory=deque)
    expired_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    app_id: str = DEFAULT_APP_ID
    app_secret: str = DEFAULT_APP_SECRET
    # Who "logs in" on the authorization window.
    account: FakeAccount = field(default_factory=lambda: FakeAccount("17841400000000001", "demo_shop"))
    codes: dict[str, FakeCode] = field(default_factory=dict)
    tokens: dict[str, FakeToken] = field(default_factory=dict)
    # Subscribed fields by account id (or by token, for tokens the fake did not issue).
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # Answers for the next calls of one account endpoint ("oauth_access_token", "access_token",
    # "refresh_access_token", "me", "subscribed_apps"), before any other check.
    endpoint_script: dict[str, deque[ScriptedAnswer]] = field(default_factory=dict)

    def clear(self) -> None:
        self.latency_s = 0.0
        self.idle_close_s = 0.0
        self.connections_opened = 0
        self.connections_idle_closed = 0
        self.calls.clear()
        self.script.clear()
        self.expired_tokens.clear()
        self.codes.clear()
        self.tokens.clear()
        self.subscriptions.clear()
        self.requests.clear()
        self.endpoint_script.clear()

    def issue_token(self, account: FakeAccount, *, long_lived: bool) -> FakeToken:
        prefix = "IGAA" if long_lived else "IGQWR"
        token = f"{prefix}{secrets.token_urlsafe(24)}"
        lifetime = LONG_LIVED_SECONDS if long_lived else SHORT_LIVED_SECONDS
        issued = FakeToken(token=token, account=account, long_lived=long_lived, expires_at=time.time() + lifetime)
        self.tokens[token] = issued
        return issued

    def token_problem(self, token: str) -> ScriptedAnswer | None:
        """Meta's 190 for a missing, expired or (issued here and) lapsed token; None when usable."""
        if not token:
            return graph_error(190, "An active access token must be used to query information about the current user.")
        issued = self.tokens.get(token)
        if token in self.expired_tokens or (issued is not None and issued.expires_at <= time.time()):
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        return None


_NOT_READ = b"<not read>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Meta's servers
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        return

    def setup(self) -> None:
        super().setup()
        self._requests_read = 0
        with self.server.state.lock:
            self.server.state.connections_opened += 1
            self.server.state.connections_open += 1

    def finish(self) -> None:
        with self.server.state.lock:
            self.server.state.connections_open -= 1
        super().finish()

    def handle_one_request(self) -> None:
        """One request; with `idle_close_s`, a keep-alive connection that sends no next request for that
        long is closed (a new connection waits for its first request as long as it takes)."""
        state = self.server.state
        self._requests_read += 1
        self.connection.settimeout((state.idle_close_s or None) if self._requests_read > 1 else None)
        # The base class ends the connection when reading the request line times out, leaving
        # `raw_requestline` unset: the sentinel tells that apart from a request or the client's close.
        self.raw_requestline = _NOT_READ
        super().handle_one_request()
        if self.raw_requestline is _NOT_READ and self.close_connection:
            with state.lock:
                state.connections_idle_closed += 1

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _html(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, answer: ScriptedAnswer) -> None:
        # Account endpoints answer with a status; dropped and late answers are for sends only.
        self._send(answer.status if answer.status is not None else 200, answer.body, answer.headers)

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path.startswith("/_fake/"):
            with state.lock:
                if url.path == "/_fake/calls":
                    self._send(200, [call.as_dict() for call in state.calls])
                elif url.path == "/_fake/requests":
                    self._send(200, [request.as_dict() for request in state.requests])
                elif url.path == "/_fake/subscriptions":
                    self._send(200, state.subscriptions)
                else:
                    self._send(404, {"error": "unknown control"})
            return
        if url.path == "/oauth/authorize":
            self._authorize_window(query)
        elif url.path == "/oauth/authorize/decision":
            self._authorize_decision(query)
        elif url.path == "/access_token":
            self._account_call("access_token", "GET", query, self._exchange_token)
        elif url.path == "/refresh_access_token":
            self._account_call("refresh_access_token", "GET", query, self._refresh_token)
        elif _versioned(url.path) == "/me":
            self._account_call("me", "GET", query, self._me)
        elif _versioned(url.path) == "/me/subscribed_apps":
            self._account_call("subscribed_apps", "GET", query, self._subscriptions_list)
        else:
            self._send(400, graph_error(100, "Unsupported get request.").body)

    def do_POST(self) -> None:
        state = self.server.state
        self.connection.settimeout(None)  # the idle limit applies between requests only
        raw = self._read_body()
        url = urlsplit(self.path)
        if url.path.startswith("/_fake/"):
            self._control(raw)
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/oauth/access_token":
            form = {key: values[-1] for key, values in parse_qs(raw.decode(errors="replace")).items()}
            self._account_call("oauth_access_token", "POST", form, self._exchange_code)
            return
        if _versioned(url.path) == "/me/subscribed_apps":
            self._account_call("subscribed_apps", "POST", query, self._subscribe)
            return
        match = _SEND_PATH.match(self.path)
        if not match:
            self._send(400, graph_error(100, "Unsupported post request.").body)
            return
        with state.lock:
            state.in_flight += 1
        try:
            self._answer_send(raw, endpoint=match.group(2))
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer_send(self, raw: bytes, *, endpoint: str) -> None:
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, graph_error(100, "Invalid JSON for postBody").body)
            return
        if state.latency_s:
            time.sleep(state.latency_s)
        with state.lock:
            problem = state.token_problem(token)
            if problem is not None:
                answer: ScriptedAnswer | None = problem
            elif state.script:
                answer = state.script.popleft()
            else:
                answer = None
            # Only calls Meta would have acted on count as sent.
            if answer is None or answer.acted_on:
                fault = (answer.drop or ("late" if answer.delay_s else "")) if answer is not None else ""
                state.calls.append(RecordedCall(path=self.path, token=token, body=body, at=time.time(), fault=fault))
            next_id = next(state.ids)
        if answer is not None and answer.drop:
            self._drop(reset=answer.drop == DROP_RESET)
            return
        if answer is not None and answer.delay_s:
            time.sleep(answer.delay_s)
        if answer is not None and answer.status is not None:
            status, response, headers = answer.status, answer.body, answer.headers
        elif endpoint == "replies":
            status, response, headers = 200, {"id": f"1799{next_id:011d}"}, {}
        else:
            recipient = body.get("recipient", {}) if isinstance(body, dict) else {}
            status, headers = 200, {}
            response = {"recipient_id": recipient.get("id", "0"), "message_id": f"m_fake_{next_id}"}
        try:
            self._send(status, response, headers)
        except OSError:  # the client gave up waiting (a late answer): nobody reads it
            self.close_connection = True

    def _drop(self, *, reset: bool) -> None:
        """End the connection without a byte of answer: a FIN, or with `reset` a RST."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    # --- Business Login for Instagram -----------------------------------------------------------------

    def _authorize_window(self, query: dict[str, str]) -> None:
        state = self.server.state
        if query.get("client_id") != state.app_id:
            self._html(400, "<h1>Invalid app ID</h1><p>Sorry, this page isn't available.</p>")
            return
        if not query.get("redirect_uri") or query.get("response_type") != "code":
            self._html(400, "<h1>Invalid request</h1><p>redirect_uri and response_type=code are required.</p>")
            return
        scopes = [scope for scope in re.split(r"[,\s]+", query.get("scope", "")) if scope]
        if SCOPE_REQUIRED not in scopes:
            self._html(400, f"<h1>Invalid scope</h1><p>{SCOPE_REQUIRED} is required.</p>")
            return
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(query.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "scope", "state")
        )
        permissions = "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes)
        self._html(
            200,
            "<!doctype html><html><head><title>Instagram (fake): allow access</title></head><body>"
            f"<h1>Log in to app {html.escape(state.app_id)} as @{html.escape(state.account.username)}</h1>"
            f"<p>It asks to:</p><ul>{permissions}</ul>"
            f'<form method="get" action="/oauth/authorize/decision">{hidden}'
            '<button type="submit" name="decision" value="allow" id="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny" id="deny">Cancel</button>'
            "</form></body></html>",
        )

    def _authorize_decision(self, query: dict[str, str]) -> None:
        state = self.server.state
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != state.app_id or not redirect_uri:
            self._html(400, "<h1>Invalid request</h1>")
            return
        back: dict[str, str]
        if query.get("decision") == "allow":
            code = f"AQB{secrets.token_urlsafe(32)}"
            with state.lock:
                state.codes[code] = FakeCode(
                    account=state.account,
                    redirect_uri=redirect_uri,
                    scope=query.get("scope", ""),
                    expires_at=time.time() + 3600,
                )
            back = {"code": code}
        else:
            back = {
                "error": "access_denied",
                "error_reason": "user_denied",
                "error_description": "The user denied your request",
            }
        if query.get("state"):
            back["state"] = query["state"]
        separator = "&" if "?" in redirect_uri else "?"
        # Instagram appends "#_" to the redirect of a successful authorization.
        self._redirect(f"{redirect_uri}{separator}{urlencode(back)}{'#_' if 'code' in back else ''}")

    def _account_call(self, endpoint: str, method: str, params: dict[str, str], handle: Any) -> None:
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else params.get("access_token", "")
        with state.lock:
            recorded = {k: v for k, v in params.items() if k not in ("access_token", "client_secret", "code")}
            state.requests.append(RecordedRequest(endpoint, method, token, recorded, time.time()))
            scripted = state.endpoint_script.get(endpoint)
            answer = scripted.popleft() if scripted else None
            if answer is None:
                answer = handle(params, token)
        self._answer(answer)

    def _exchange_code(self, form: dict[str, str], token: str) -> ScriptedAnswer:
        state = self.server.state
        if form.get("client_id") != state.app_id:
            return oauth_error("Invalid platform app")
        if form.get("client_secret") != state.app_secret:
            return oauth_error("Error validating client secret.")
        if form.get("grant_type") != "authorization_code":
            return oauth_error("Unsupported grant_type")
        code = state.codes.get(form.get("code", ""))
        if code is None or code.used or code.expires_at <= time.time():
            return oauth_error("Matching code was not found or was already used")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one "
                "you used in the OAuth dialog request"
            )
        code.used = True
        issued = state.issue_token(code.account, long_lived=False)
        permissions = ",".join(scope for scope in re.split(r"[,\s]+", code.scope) if scope)
        entry = {"access_token": issued.token, "user_id": code.account.app_scoped_id, "permissions": permissions}
        return ScriptedAnswer(status=200, body={"data": [entry]})

    def _exchange_token(self, query: dict[str, str], token: str) -> ScriptedAnswer:
        state = self.server.state
        if query.get("grant_type") != "ig_exchange_token":
            return graph_error(100, "Unsupported grant_type: ig_exchange_token expected")
        if query.get("client_secret") != state.app_secret:
            return graph_error(101, "Error validating client secret.")
        problem = state.token_problem(token)
        if problem is not None:
            return problem
        issued = state.tokens.get(token)
        if issued is None or issued.long_lived:
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        long_lived = state.issue_token(issued.account, long_lived=True)
        body = {"access_token": long_lived.token, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}
        return ScriptedAnswer(status=200, body=body)

    def _refresh_token(self, query: dict[str, str], token: str) -> ScriptedAnswer:
        state = self.server.state
        if query.get("grant_type") != "ig_refresh_token":
            return graph_error(100, "Unsupported grant_type: ig_refresh_token expected")
        problem = state.token_problem(token)
        if problem is not None:
            return problem
        issued = state.tokens.get(token)
        if issued is not None and not issued.long_lived:
            return graph_error(190, "Invalid OAuth access token - only long-lived tokens can be refreshed")
        account = issued.account if issued is not None else state.account
        refreshed = state.issue_token(account, long_lived=True)
        body = {"access_token": refreshed.token, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS}
        return ScriptedAnswer(status=200, body=body)

    def _me(self, query: dict[str, str], token: str) -> ScriptedAnswer:
        state = self.server.state
        problem = state.token_problem(token)
        if problem is not None:
            return problem
        issued = state.tokens.get(token)
        account = issued.account if issued is not None else state.account
        fields = [f for f in query.get("fields", "").split(",") if f] or ["id"]
        values = {"id": account.app_scoped_id, "user_id": account.user_id, "username": account.username}
        body = {name: values[name] for name in fields if name in values}
        body["id"] = account.app_scoped_id
        return ScriptedAnswer(status=200, body=body)

    def _subscription_key(self, token: str) -> str:
        issued = self.server.state.tokens.get(token)
        return issued.account.user_id if issued is not None else f"token:{token}"

    def _subscribe(self, query: dict[str, str], token: str) -> ScriptedAnswer:
        state = self.server.state
        problem = state.token_problem(token)
        if problem is not None:
            return problem
        fields = [f for f in query.get("subscribed_fields", "").split(",") if f]
        if not fields:
            return graph_error(100, "(#100) The parameter subscribed_fields is required.")
        state.subscriptions[self._subscription_key(token)] = fields
        return ScriptedAnswer(status=200, body={"success": True})

    def _subscriptions_list(self, query: dict[str, str], token: str) -> ScriptedAnswer:
        state = self.server.state
        problem = state.token_problem(token)
        if problem is not None:
            return problem
        fields = state.subscriptions.get(self._subscription_key(token))
        data = [{"subscribed_fields": fields}] if fields else []
        return ScriptedAnswer(status=200, body={"data": data})

    def _control(self, raw: bytes) -> None:
        state = self.server.state
        payload = json.loads(raw) if raw else None
        with state.lock:
            if self.path.startswith("/_fake/reset"):
                state.clear()
            elif self.path.startswith("/_fake/account") and isinstance(payload, dict):
                state.account = FakeAccount(user_id=str(payload["user_id"]), username=str(payload["username"]))
            elif self.path.startswith("/_fake/script"):
                try:
                    answers = [ScriptedAnswer.from_dict(a) for a in payload or []]
                except (ValueError, TypeError, AttributeError) as exc:
                    self._send(400, {"error": f"invalid script: {exc}"})
                    return
                state.script.extend(answers)
            elif self.path.startswith("/_fake/expire"):
                state.expired_tokens.add(str(payload))
            elif self.path.startswith("/_fake/latency"):
                state.latency_s = float(payload or 0) / 1000
            elif self.path.startswith("/_fake/idle-close"):
                state.idle_close_s = float(payload or 0) / 1000
            else:
                self._send(404, {"error": "unknown control"})
                return
        self._send(200, {"ok": True})


def _versioned(path: str) -> str:
    """The path after `/vXX.X`, or "" for an unversioned one."""
    match = _VERSIONED.match(path.rstrip("/"))
    return match.group(1) if match else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    state: FakeGraphState

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a worker killed, a read timeout) is part of the tests, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeGraphAPI:
    """The fake server on 127.0.0.1, in a background thread of this process."""

    def __init__(self, *, port: int = 0, latency_ms: float = 0, idle_close_ms: float = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.state = FakeGraphState(latency_s=latency_ms / 1000, idle_close_s=idle_close_ms / 1000)
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> FakeGraphState:
        return self._server.state

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeGraphAPI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-graph-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Forget calls, scripts, codes, tokens and subscriptions (the app's id and secret stay)."""
        with self.state.lock:
            self.state.clear()
            self.state.latency_s = 0.0
            self.state.account = FakeAccount("17841400000000001", "demo_shop")

    def calls(self) -> list[RecordedCall]:
        with self.state.lock:
            return list(self.state.calls)

    def answer_next(self, *answers: ScriptedAnswer) -> None:
        with self.state.lock:
            self.state.script.extend(answers)

    def expire_token(self, token: str) -> None:
        with self.state.lock:
            self.state.expired_tokens.add(token)

    def configure_app(self, *, app_id: str, app_secret: str) -> None:
        """The Instagram app the fake knows: the client_id and client_secret it accepts."""
        with self.state.lock:
            self.state.app_id = app_id
            self.state.app_secret = app_secret

    def log_in_as(self, *, user_id: str, username: str) -> None:
        """The account the authorization window connects."""
        with self.state.lock:
            self.state.account = FakeAccount(user_id=user_id, username=username)

    def issue_token(self, *, user_id: str, username: str = "shop") -> str:
        """A long-lived token of this account, as if it had been connected earlier."""
        with self.state.lock:
            return self.state.issue_token(FakeAccount(user_id=user_id, username=username), long_lived=True).token

    def answer_next_at(self, endpoint: str, *answers: ScriptedAnswer) -> None:
        """Answers for the next calls of one account endpoint: "oauth_access_token", "access_token",
        "refresh_access_token", "me" or "subscribed_apps"."""
        with self.state.lock:
            self.state.endpoint_script.setdefault(endpoint, deque()).extend(answers)

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        with self.state.lock:
            return [r for r in self.state.requests if endpoint is None or r.endpoint == endpoint]

    def subscribed_fields(self, account_id: str) -> list[str] | None:
        with self.state.lock:
            fields = self.state.subscriptions.get(account_id)
            return list(fields) if fields is not None else None

    def token_account(self, token: str) -> str | None:
        """The account id a token the fake issued belongs to."""
        with self.state.lock:
            issued = self.state.tokens.get(token)
            return issued.account.user_id if issued is not None else None

    def quiet_for(self, seconds: float) -> bool:
        """No send request in progress, and none arrived in the last `seconds`."""
        with self.state.lock:
            if self.state.in_flight:
                return False
            last = self.state.calls[-1].at if self.state.calls else 0.0
        return time.time() - last >= seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--app-id", default=DEFAULT_APP_ID, help="the Instagram app id (client_id) it accepts")
    parser.add_argument("--app-secret", default=DEFAULT_APP_SECRET, help="the app secret (client_secret) it accepts")
    parser.add_argument("--account-id", default="17841400000000001", help="who logs in on the authorization window")
    parser.add_argument("--username", default="demo_shop")
    parser.add_argument("--idle-close-ms", type=float, default=0, help="close keep-alive connections idle this long")
    args = parser.parse_args()
    server = FakeGraphAPI(port=args.port, latency_ms=args.latency_ms, idle_close_ms=args.idle_close_ms)
    server.configure_app(app_id=args.app_id, app_secret=args.app_secret)
    server.log_in_as(user_id=args.account_id, username=args.username)
    print(f"fake Graph API listening on {server.base_url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
