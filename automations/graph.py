"""The one client for Meta's Graph API: a pooled `requests.Session`, explicit timeouts, typed errors.

Tokens travel in the `Authorization` header only, never in URLs, so no log line or exception
built from a request can carry one.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
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
    """No answer: the request never reached Meta (connection refused, reset, connect timeout)."""


class GraphAPITimeoutError(GraphAPIError):
    """The request was sent but no answer came in time: Meta may or may not have acted on it."""


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


def error_from_response(response: requests.Response) -> GraphAPIError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphAPIError(
            f"Graph API answered HTTP {response.status_code}",
            status=response.status_code,
            regain_access_seconds=regain_access_seconds(response.headers),
        )
    transient = error.get("is_transient")
    return GraphAPIError(
        str(error.get("message", "Graph API error"))[:500],
        status=response.status_code,
        code=_int_or_none(error.get("code")),
        subcode=_int_or_none(error.get("error_subcode")),
        error_type=str(error.get("type", ""))[:100],
        fbtrace_id=str(error.get("fbtrace_id", ""))[:100],
        is_transient=transient if isinstance(transient, bool) else None,
        regain_access_seconds=regain_access_seconds(response.headers),
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
        except requests.ConnectTimeout as exc:
            raise GraphAPIConnectionError(f"Graph API unreachable: {type(exc).__name__}") from None
        except requests.Timeout as exc:
            raise GraphAPITimeoutError(f"Graph API did not answer in time: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise GraphAPIConnectionError(f"Graph API unreachable: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise error_from_response(response)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return GraphResponse(
            body=body if isinstance(body, dict) else {},
            regain_access_seconds=regain_access_seconds(response.headers),
        )

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


_lock = threading.Lock()
_client: GraphClient | None = None


def get_graph_client() -> GraphClient:
    """The process-wide client; rebuilt if the settings it was built from change (tests do that)."""
    global _client
    config = GraphClientConfig(
        base_url=settings.GRAPH_API_BASE_URL.rstrip("/"),
        version=settings.GRAPH_API_VERSION,
        connect_timeout=settings.GRAPH_API_CONNECT_TIMEOUT,
        read_timeout=settings.GRAPH_API_READ_TIMEOUT,
        pool_size=max(settings.CONCURRENCY, 10),
        proxy=settings.GRAPH_API_PROXY,
    )
    if _client is None or _client.config != config:
        with _lock:
            if _client is None or _client.config != config:
                _client = GraphClient(config)
    return _client
