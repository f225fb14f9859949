"""Clients for Meta's Graph API: explicit timeouts, keep-alive pools, typed errors.

`AsyncGraphClient` (aiohttp) is what jobs send with; `GraphClient` (requests) serves management
commands and other synchronous callers. Both read Meta's answers with the same functions.

Tokens travel in the `Authorization` header only, never in URLs, so no log line or exception
built from a request can carry one.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions
from django.conf import settings
from requests.adapters import HTTPAdapter

from instabot.metrics import graph_request_observe


class GraphAPIError(Exception):
    """Meta answered with an error body, or not at all. Later code classifies it by `code`."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str = "",
        fbtrace_id: str = "",
        is_transient: bool | None = None,
        regain_access_seconds: float = 0.0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.subcode = subcode
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        # From Meta's usage headers: how long this account is throttled, if Meta said.
        self.regain_access_seconds = regain_access_seconds

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.subcode is not None:
            parts.append(f"subcode={self.subcode}")
        if self.fbtrace_id:
            parts.append(f"fbtrace_id={self.fbtrace_id}")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "status": self.status,
            "code": self.code,
            "subcode": self.subcode,
            "type": self.error_type,
            "fbtrace_id": self.fbtrace_id,
        }


class GraphAPIConnectionError(GraphAPIError):
    """The request provably never left: connection refused, DNS failure, connect timeout, TLS handshake."""


class GraphAPITimeoutError(GraphAPIError):
    """The request was sent but no answer came (read timeout, reset, closed connection): Meta may
    or may not have acted on it."""


def regain_access_seconds(headers: Any) -> float:
    """The longest `estimated_time_to_regain_access` (minutes) in Meta's usage header, in seconds."""
    raw = headers.get("X-Business-Use-Case-Usage") if headers is not None else None
    if not raw:
        return 0.0
    try:
        usage = json.loads(raw)
    except ValueError:
        return 0.0
    minutes = 0.0
    if isinstance(usage, dict):
        for entries in usage.values():
            for entry in entries if isinstance(entries, list) else []:
                value = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    minutes = max(minutes, float(value))
    return minutes * 60


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def graph_error_from(*, status: int, body: bytes, headers: Any) -> GraphAPIError:
    """Meta's error answer (HTTP status, raw body, headers) as a `GraphAPIError`."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return GraphAPIError(
            f"Graph API answered HTTP {status}", status=status, regain_access_seconds=regain_access_seconds(headers)
        )
    transient = error.get("is_transient")
    return GraphAPIError(
        str(error.get("message", "Graph API error"))[:500],
        status=status,
        code=_int_or_none(error.get("code")),
        subcode=_int_or_none(error.get("error_subcode")),
        error_type=str(error.get("type", ""))[:100],
        fbtrace_id=str(error.get("fbtrace_id", ""))[:100],
        is_transient=transient if isinstance(transient, bool) else None,
        regain_access_seconds=regain_access_seconds(headers),
    )


def graph_response_from(*, body: bytes, headers: Any) -> "GraphResponse":
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    return GraphResponse(
        body=parsed if isinstance(parsed, dict) else {}, regain_access_seconds=regain_access_seconds(headers)
    )


def graph_endpoint(path: str) -> str:
    """The metric label of a path: its last segment (`messages`, `replies`), never an id."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return "node" if not last or last.isdigit() else last


def graph_outcome(error: GraphAPIError) -> str:
    """The metric label of a failed request: rejected (4xx), server_error (5xx), timeout, unreachable."""
    if isinstance(error, GraphAPITimeoutError):
        return "timeout"
    if isinstance(error, GraphAPIConnectionError) or error.status is None:
        return "unreachable"
    return "server_error" if error.status >= 500 else "rejected"


@dataclass(frozen=True)
class GraphResponse:
    body: dict[str, Any] = field(default_factory=dict)
    # Meta may announce throttling on a successful answer too.
    regain_access_seconds: float = 0.0

    @property
    def message_id(self) -> str:
        return str(self.body.get("message_id") or self.body.get("id") or "")


@dataclass(frozen=True)
class GraphClientConfig:
    base_url: str
    version: str
    connect_timeout: float
    read_timeout: float
    pool_size: int
    proxy: str = ""
    keepalive_seconds: float = 15.0


class GraphClient:
    def __init__(self, config: GraphClientConfig) -> None:
        self.config = config
        self.session = requests.Session()
        # Proxies come from GRAPH_API_PROXY only: reading the environment on every request costs a
        # measurable share of a job's CPU.
        self.session.trust_env = False
        if config.proxy:
            self.session.proxies = {"http": config.proxy, "https": config.proxy}
        # One keep-alive connection per job a worker keeps in flight.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=config.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _url(self, path: str) -> str:
        return f"{self.config.base_url}/{self.config.version}/{path}"

    def post(self, *, path: str, access_token: str, payload: dict[str, Any]) -> GraphResponse:
        started, outcome = time.perf_counter(), "unreachable"
        try:
            response = self._post(path=path, access_token=access_token, payload=payload)
            outcome = "ok"
            return response
        except GraphAPIError as exc:
            outcome = graph_outcome(exc)
            raise
        finally:
            graph_request_observe(endpoint=graph_endpoint(path), outcome=outcome, seconds=time.perf_counter() - started)

    def _post(self, *, path: str, access_token: str, payload: dict[str, Any]) -> GraphResponse:
        try:
            response = self.session.post(
                self._url(path),
                json=payload,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=(self.config.connect_timeout, self.config.read_timeout),
            )
        except (requests.ConnectTimeout, requests.exceptions.SSLError) as exc:
            raise GraphAPIConnectionError(f"Graph API unreachable: {type(exc).__name__}") from None
        except requests.ConnectionError as exc:
            # Refused or unresolvable: nothing was sent. Anything else (reset, closed mid-answer) may
            # have reached Meta.
            if _never_connected(exc):
                raise GraphAPIConnectionError(f"Graph API unreachable: {type(exc).__name__}") from None
            raise GraphAPITimeoutError(f"Graph API connection lost: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise GraphAPITimeoutError(f"Graph API did not answer: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise graph_error_from(status=response.status_code, body=response.content, headers=response.headers)
        return graph_response_from(body=response.content, headers=response.headers)

    def send_message(self, *, access_token: str, recipient: dict[str, str], text: str) -> GraphResponse:
        """`POST /me/messages`: a DM to an IGSID, or a private reply to a comment."""
        return self.post(
            path="me/messages",
            access_token=access_token,
            payload={"recipient": recipient, "message": {"text": text}},
        )

    def reply_to_comment(self, *, access_token: str, comment_id: str, text: str) -> GraphResponse:
        """`POST /{comment-id}/replies`: a public reply under the comment."""
        return self.post(path=f"{comment_id}/replies", access_token=access_token, payload={"message": text})


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether urllib3 failed before a connection existed (refused, DNS), so nothing was written."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class AsyncGraphClient:
    """The jobs' client: one aiohttp session per event loop, keep-alive pool of `pool_size` connections.

    Errors say whether the request can have reached Meta: only a connection that was never made
    (refused, DNS, connect timeout, TLS handshake) is `GraphAPIConnectionError`; a request that was
    written and then lost its answer (read timeout, reset, closed) is `GraphAPITimeoutError`. aiohttp
    never retries a POST by itself, so a stale keep-alive connection cannot send one twice.
    """

    def __init__(self, config: GraphClientConfig) -> None:
        import aiohttp

        self.config = config
        self._aiohttp = aiohttp
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=config.pool_size,
                # Closed well before servers close idle connections (Meta's edge: 60 s and more).
                keepalive_timeout=config.keepalive_seconds,
                ttl_dns_cache=300,
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=config.connect_timeout,
                sock_connect=config.connect_timeout,
                sock_read=config.read_timeout,
            ),
            proxy=config.proxy or None,
            trust_env=False,
            # Less work per request: no cookies (the Graph API sets none we need), no compression
            # negotiation, no default User-Agent.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def close(self) -> None:
        await self.session.close()

    async def post(self, *, path: str, access_token: str, payload: dict[str, Any]) -> GraphResponse:
        started, outcome = time.perf_counter(), "unreachable"
        try:
            response = await self._post(path=path, access_token=access_token, payload=payload)
            outcome = "ok"
            return response
        except GraphAPIError as exc:
            outcome = graph_outcome(exc)
            raise
        finally:
            graph_request_observe(endpoint=graph_endpoint(path), outcome=outcome, seconds=time.perf_counter() - started)

    async def _post(self, *, path: str, access_token: str, payload: dict[str, Any]) -> GraphResponse:
        aiohttp = self._aiohttp
        url = f"{self.config.base_url}/{self.config.version}/{path}"
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        try:
            async with self.session.post(url, data=json.dumps(payload).encode(), headers=headers) as response:
                body = await response.read()
                status = response.status
                response_headers = response.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise GraphAPIConnectionError(f"Graph API unreachable: {type(exc).__name__}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GraphAPITimeoutError(f"Graph API did not answer: {type(exc).__name__}") from None
        if status >= 400:
            raise graph_error_from(status=status, body=body, headers=response_headers)
        return graph_response_from(body=body, headers=response_headers)

    async def send_message(self, *, access_token: str, recipient: dict[str, str], text: str) -> GraphResponse:
        """`POST /me/messages`: a DM to an IGSID, or a private reply to a comment."""
        return await self.post(
            path="me/messages",
            access_token=access_token,
            payload={"recipient": recipient, "message": {"text": text}},
        )

    async def reply_to_comment(self, *, access_token: str, comment_id: str, text: str) -> GraphResponse:
        """`POST /{comment-id}/replies`: a public reply under the comment."""
        return await self.post(path=f"{comment_id}/replies", access_token=access_token, payload={"message": text})


def graph_client_config(*, pool_size: int | None = None) -> GraphClientConfig:
    return GraphClientConfig(
        base_url=settings.GRAPH_API_BASE_URL.rstrip("/"),
        version=settings.GRAPH_API_VERSION,
        connect_timeout=settings.GRAPH_API_CONNECT_TIMEOUT,
        read_timeout=settings.GRAPH_API_READ_TIMEOUT,
        pool_size=pool_size if pool_size is not None else max(settings.CONCURRENCY, 10),
        proxy=settings.GRAPH_API_PROXY,
        keepalive_seconds=settings.GRAPH_API_KEEPALIVE_SECONDS,
    )


_lock = threading.Lock()
_client: GraphClient | None = None


def get_graph_client() -> GraphClient:
    """The process-wide client; rebuilt if the settings it was built from change (tests do that)."""
    global _client
    config = graph_client_config()
    if _client is None or _client.config != config:
        with _lock:
            if _client is None or _client.config != config:
                _client = GraphClient(config)
    return _client
