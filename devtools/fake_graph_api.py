"""A fake Instagram Graph API over real HTTP, for tests, the Quick start demo and the benchmark.

It answers like Meta (success bodies, error bodies with `error.code`, `error_subcode`,
`fbtrace_id`) and records every call Meta would have acted on. Run it alone:

    python -m devtools.fake_graph_api --port 8100 [--latency-ms 100] [--idle-close-ms 5000]

or in-process with `FakeGraphAPI().start()`. Control endpoints for other processes:
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
import itertools
import json
import re
import socket
import struct
import sys
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

    def do_GET(self) -> None:
        state = self.server.state
        if self.path.startswith("/_fake/calls"):
            with state.lock:
                self._send(200, [call.as_dict() for call in state.calls])
            return
        self._send(400, graph_error(100, "Unsupported get request.").body)

    def do_POST(self) -> None:
        state = self.server.state
        self.connection.settimeout(None)  # the idle limit applies between requests only
        raw = self._read_body()
        if self.path.startswith("/_fake/"):
            self._control(raw)
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
            if not token or token in state.expired_tokens:
                answer: ScriptedAnswer | None = graph_error(190, "Error validating access token: Session has expired.")
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

    def _control(self, raw: bytes) -> None:
        state = self.server.state
        payload = json.loads(raw) if raw else None
        with state.lock:
            if self.path.startswith("/_fake/reset"):
                _reset(state)
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


def _reset(state: FakeGraphState) -> None:
    state.calls.clear()
    state.script.clear()
    state.expired_tokens.clear()
    state.latency_s = 0.0
    state.idle_close_s = 0.0
    state.connections_opened = 0
    state.connections_idle_closed = 0


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
        with self.state.lock:
            _reset(self.state)

    def calls(self) -> list[RecordedCall]:
        with self.state.lock:
            return list(self.state.calls)

    def answer_next(self, *answers: ScriptedAnswer) -> None:
        with self.state.lock:
            self.state.script.extend(answers)

    def expire_token(self, token: str) -> None:
        with self.state.lock:
            self.state.expired_tokens.add(token)

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
    parser.add_argument("--idle-close-ms", type=float, default=0, help="close keep-alive connections idle this long")
    args = parser.parse_args()
    server = FakeGraphAPI(port=args.port, latency_ms=args.latency_ms, idle_close_ms=args.idle_close_ms)
    print(f"fake Graph API listening on {server.base_url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
