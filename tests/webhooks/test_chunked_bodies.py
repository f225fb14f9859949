"""Webhook bodies sent with `Transfer-Encoding: chunked` (no Content-Length): read and verified like any
other where the server decodes them (gunicorn sets `wsgi.input_terminated`), answered 411 where it
cannot; never 403 for a correctly signed body."""

import io
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client

from queueing.queues import QUEUE_NAMES, get_queue
from tests.support.stack import ManagedProcess, free_port, stack_env, start_web, wait_for
from tests.support.webhooks import WEBHOOK_URL, fixture_bytes
from webhooks.request_body import LENGTH_REQUIRED_MESSAGE
from webhooks.signatures import sign_body

BODY = fixture_bytes("messages__text")


def signature(body: bytes = BODY) -> str:
    return sign_body(body=body, secret=settings.INSTAGRAM_APP_SECRET)


def queued() -> int:
    return sum(get_queue(name).count for name in QUEUE_NAMES)


def post_chunked_in_process(client: Client, *, terminated: bool, sig: str) -> Any:
    """What a WSGI server hands Django for a chunked request: no CONTENT_LENGTH, the decoded body in
    `wsgi.input`, and `wsgi.input_terminated` when the server decoded it."""
    environ: dict[str, Any] = {
        "wsgi.input": io.BytesIO(BODY),  # a stream that ends, as a decoding server gives
        "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_X_HUB_SIGNATURE_256": sig,
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.generic("POST", WEBHOOK_URL, b"", content_type="application/json", **environ)


def chunks(body: bytes) -> Iterator[bytes]:
    """A generator body: requests sends it chunked, without Content-Length."""
    for start in range(0, len(body), 50):
        yield body[start : start + 50]


def post_chunked(url: str, *, sig: str) -> requests.Response:
    return requests.post(
        url + WEBHOOK_URL,
        data=chunks(BODY),
        headers={"X-Hub-Signature-256": sig, "Content-Type": "application/json"},
        timeout=10,
    )


@pytest.mark.django_db
def test_a_chunked_body_the_server_decoded_is_verified_and_queued(client: Client) -> None:
    response = post_chunked_in_process(client, terminated=True, sig=signature())
    assert (response.status_code, response.content) == (200, b"EVENT_RECEIVED")
    assert get_queue("high").count == 1


@pytest.mark.django_db
def test_a_chunked_body_the_server_could_not_decode_is_411_not_403(client: Client) -> None:
    response = post_chunked_in_process(client, terminated=False, sig=signature())
    assert response.status_code == 411
    assert response.content.decode() == LENGTH_REQUIRED_MESSAGE
    assert queued() == 0


@pytest.mark.django_db
def test_a_wrongly_signed_chunked_body_is_still_403(client: Client) -> None:
    response = post_chunked_in_process(client, terminated=True, sig=signature(b"another body"))
    assert response.status_code == 403
    assert queued() == 0


@pytest.mark.django_db
def test_a_chunked_body_over_the_limit_is_413(client: Client, settings: Any) -> None:
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    response = post_chunked_in_process(client, terminated=True, sig=signature())
    assert response.status_code == 413
    assert queued() == 0


@pytest.mark.slow
def test_gunicorn_reads_a_chunked_body_and_verifies_it(tmp_path: Path) -> None:
    web, url = start_web(stack_env(redis_url=settings.REDIS_URL), tmp_path / "web.log")
    try:
        accepted = post_chunked(url, sig=signature())
        refused = post_chunked(url, sig=signature(b"another body"))
    finally:
        web.stop()
    assert accepted.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in accepted.request.headers
    assert (accepted.status_code, accepted.text) == (200, "EVENT_RECEIVED"), web.output()[-3000:]
    assert refused.status_code == 403
    [job] = get_queue("high").get_jobs()
    assert job.kwargs["event"]["text"] == "price?"


@pytest.mark.slow
def test_runserver_cannot_decode_a_chunked_body_and_says_so_with_411(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedProcess(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        stack_env(redis_url=settings.REDIS_URL),
        tmp_path / "runserver.log",
    )
    try:
        assert wait_for(lambda: _listening(port), timeout=20), server.output()
        response = post_chunked(f"http://127.0.0.1:{port}", sig=signature())
    finally:
        server.stop()
    assert response.status_code == 411, server.output()[-3000:]
    assert "Content-Length" in response.text
    assert queued() == 0


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
