import json
import time

import pytest
from django.test import Client

from queueing.queues import QUEUE_NAMES, get_queue
from tests.support.webhooks import WEBHOOK_URL, fixture_bytes, post_webhook
from webhooks.signatures import sign_body

pytestmark = pytest.mark.django_db


def queued() -> dict[str, int]:
    return {name: get_queue(name).count for name in QUEUE_NAMES}


@pytest.mark.parametrize("url", [WEBHOOK_URL, WEBHOOK_URL + "/"])
def test_verification_handshake_echoes_the_challenge_as_plain_text(client: Client, url: str) -> None:
    response = client.get(
        url, {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1158201444"}
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"},
    ],
)
def test_verification_with_wrong_or_missing_token_is_forbidden(client: Client, params: dict[str, str]) -> None:
    response = client.get(WEBHOOK_URL, params)
    assert response.status_code == 403
    assert b"1" != response.content


@pytest.mark.parametrize("url", [WEBHOOK_URL, WEBHOOK_URL + "/"])
def test_signed_dm_is_queued_on_high_without_redirect(client: Client, url: str) -> None:
    response = post_webhook(client, "messages__text", url=url)
    assert response.status_code == 200
    assert queued() == {"high": 1, "default": 0, "low": 0}
    [job] = get_queue("high").get_jobs()
    assert job.kwargs["event"]["kind"] == "dm"
    assert job.kwargs["event"]["text"] == "price?"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("messages__story_reply", {"high": 0, "default": 1, "low": 0}),
        ("messages__story_mention", {"high": 0, "default": 1, "low": 0}),
        ("comments__feed", {"high": 0, "default": 0, "low": 1}),
        ("live_comments__live", {"high": 0, "default": 0, "low": 1}),
        ("messages__batch", {"high": 3, "default": 0, "low": 0}),
    ],
)
def test_events_go_to_their_priority_queue(client: Client, fixture: str, expected: dict[str, int]) -> None:
    assert post_webhook(client, fixture).status_code == 200
    assert queued() == expected


def test_the_meta_app_secret_is_accepted_too(client: Client) -> None:
    assert post_webhook(client, "messages__text", secret="test-meta-app-secret").status_code == 200
    assert queued()["high"] == 1


@pytest.mark.parametrize(
    "signature",
    [
        "",  # missing
        "sha256=" + "0" * 64,  # forged
        "sha1=abcdef",  # legacy header format only
        sign_body(body=b"other body", secret="test-app-secret"),  # signed for another body
        sign_body(body=fixture_bytes("messages__text"), secret="wrong-secret"),
        "sha256=ü",
    ],
)
def test_missing_or_wrong_signature_is_forbidden_and_nothing_is_queued(client: Client, signature: str) -> None:
    response = post_webhook(client, "messages__text", signature=signature)
    assert response.status_code == 403
    assert queued() == {"high": 0, "default": 0, "low": 0}


def test_signature_is_checked_over_the_raw_bytes_not_reserialized_json(client: Client) -> None:
    # Meta signs the escaped form; the same JSON with raw UTF-8 is a different body.
    escaped = fixture_bytes("messages__unicode")
    raw = json.dumps(json.loads(escaped), separators=(",", ":"), ensure_ascii=False).encode()
    signature = sign_body(body=escaped, secret="test-app-secret")
    assert post_webhook(client, raw, signature=signature).status_code == 403
    assert post_webhook(client, escaped, signature=signature).status_code == 200
    [job] = get_queue("high").get_jobs()
    assert job.kwargs["event"]["text"] == "Préis? äöå 😍 PRICE"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object":"instagram"}', b"[" * 50_000])
def test_signed_but_malformed_body_is_a_bad_request(client: Client, body: bytes) -> None:
    assert post_webhook(client, body).status_code == 400
    assert sum(queued().values()) == 0


def test_body_over_the_limit_is_refused_with_413(client: Client, settings: object) -> None:
    body = b'{"object":"instagram","entry":[],"pad":"' + b"x" * (8 * 1024 * 1024) + b'"}'
    response = post_webhook(client, body)
    assert response.status_code == 413
    assert sum(queued().values()) == 0


def test_a_thousand_event_batch_under_the_limit_is_accepted(client: Client) -> None:
    template = json.loads(fixture_bytes("messages__text"))
    event = template["entry"][0]["messaging"][0]
    events = [{**event, "message": {"mid": f"mid.{i}", "text": "x" * 900}} for i in range(1000)]
    body = {"object": "instagram", "entry": [{"id": "17841400000000001", "time": 1, "messaging": events}]}
    encoded = json.dumps(body).encode()
    assert len(encoded) > 1024 * 1024
    assert post_webhook(client, encoded).status_code == 200
    assert queued()["high"] == 1000


@pytest.mark.parametrize(
    "fixture",
    ["page__other_object", "messages__echo", "comments__own", "messages__reaction", "mentions__comment"],
)
def test_events_instabot_does_not_act_on_are_acknowledged_and_not_queued(client: Client, fixture: str) -> None:
    assert post_webhook(client, fixture).status_code == 200
    assert sum(queued().values()) == 0


def test_other_methods_are_not_allowed(client: Client) -> None:
    assert client.put(WEBHOOK_URL).status_code == 405


def test_queued_events_carry_when_the_webhook_was_received(client: Client) -> None:
    before = time.time()
    assert post_webhook(client, "messages__text").status_code == 200
    after = time.time()
    [job] = get_queue("high").get_jobs()
    assert before <= job.kwargs["event"]["received_at"] <= after
