"""A fake Instagram Graph API over real HTTP, for tests, the Quick start demo and the benchmark.

It answers like Meta (success bodies, error bodies with `error.code`, `error_subcode`,
`fbtrace_id`) and records every call. Run it alone:

    python -m devtools.fake_graph_api --port 8100 [--latency-ms 100]

or in-process with `FakeGraphAPI().start()`. Control endpoints for other processes:
`GET /_fake/calls`, `POST /_fake/reset`, `POST /_fake/script` (a JSON list of
`{"status": int, "body": {...}}` answers for the next calls), `POST /_fake/expire` (a token).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SEND_PATH = re.compile(r"^/v\d+\.\d+/([^/?]+)/(messages|replies)/?(?:\?.*)?$")


@dataclass
class RecordedCall:
    path: str
    token: str
    body: Any
    at: float

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "token": self.token, "body": self.body, "at": self.at}


@dataclass
class ScriptedAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # Meta acted on the request although it answered with an error (code 1, subcode 1357046).
    counts_as_sent: bool = False


def graph_error(code: int, message: str, *, subcode: int | None = None, status: int = 400) -> ScriptedAnswer:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return ScriptedAnswer(status=status, body={"error": error})


@dataclass
class FakeGraphState:
    latency_s: float = 0.0
    calls: list[RecordedCall] = field(default_factory=list)
    script: deque[ScriptedAnswer] = field(default_factory=deque)
    expired_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Meta's servers
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        return

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

    def do_GET(self) -> None:
        state = self.server.state
        if self.path.startswith("/_fake/calls"):
            with state.lock:
                self._send(200, [call.as_dict() for call in state.calls])
            return
        self._send(400, graph_error(100, "Unsupported get request.").body)

    def do_POST(self) -> None:
        state = self.server.state
        raw = self._read_body()
        if self.path.startswith("/_fake/"):
            self._control(raw)
            return
        match = _SEND_PATH.match(self.path)
        if not match:
            self._send(400, graph_error(100, "Unsupported post request.").body)
            return
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
            if not token or token in state.expired_tokens:
                answer = graph_error(190, "Error validating access token: Session has expired.")
            elif state.script:
                answer = state.script.popleft()
            else:
                answer = None
            # Only calls Meta would have acted on count as sent.
            if answer is None or answer.status < 400 or answer.counts_as_sent:
                state.calls.append(RecordedCall(path=self.path, token=token, body=body, at=time.time()))
            next_id = next(state.ids)
        if answer is not None:
            self._send(answer.status, answer.body, answer.headers)
        elif match.group(2) == "replies":
            self._send(200, {"id": f"1799{next_id:011d}"})
        else:
            recipient = body.get("recipient", {}) if isinstance(body, dict) else {}
            self._send(200, {"recipient_id": recipient.get("id", "0"), "message_id": f"m_fake_{next_id}"})

    def _control(self, raw: bytes) -> None:
        state = self.server.state
        payload = json.loads(raw) if raw else None
        with state.lock:
            if self.path.startswith("/_fake/reset"):
                state.calls.clear()
                state.script.clear()
                state.expired_tokens.clear()
            elif self.path.startswith("/_fake/script"):
                state.script.extend(
                    ScriptedAnswer(
                        status=a["status"],
                        body=a["body"],
                        headers=a.get("headers", {}),
                        counts_as_sent=a.get("counts_as_sent", False),
                    )
                    for a in payload or []
                )
            elif self.path.startswith("/_fake/expire"):
                state.expired_tokens.add(str(payload))
            elif self.path.startswith("/_fake/latency"):
                state.latency_s = float(payload or 0) / 1000
            else:
                self._send(404, {"error": "unknown control"})
                return
        self._send(200, {"ok": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    state: FakeGraphState


class FakeGraphAPI:
    """The fake server on 127.0.0.1, in a background thread of this process."""

    def __init__(self, *, port: int = 0, latency_ms: float = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.state = FakeGraphState(latency_s=latency_ms / 1000)
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
        with self.state.lock:
            self.state.calls.clear()
            self.state.script.clear()
            self.state.expired_tokens.clear()
            self.state.latency_s = 0.0

    def calls(self) -> list[RecordedCall]:
        with self.state.lock:
            return list(self.state.calls)

    def answer_next(self, *answers: ScriptedAnswer) -> None:
        with self.state.lock:
            self.state.script.extend(answers)

    def expire_token(self, token: str) -> None:
        with self.state.lock:
            self.state.expired_tokens.add(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    server = FakeGraphAPI(port=args.port, latency_ms=args.latency_ms)
    print(f"fake Graph API listening on {server.base_url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
