"""Hostile and malformed input: never a 500, never anything queued without a valid signature."""

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queueing.queues import QUEUE_NAMES, get_queue
from tests.support.webhooks import fixture_bytes, post_webhook
from webhooks.parsing import WebhookPayloadError, parse_webhook_body
from webhooks.signatures import sign_body

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)
known_keys = st.sampled_from(
    [
        "object",
        "entry",
        "id",
        "time",
        "messaging",
        "changes",
        "field",
        "value",
        "message",
        "sender",
        "recipient",
        "mid",
        "text",
        "is_echo",
        "reply_to",
        "story",
        "attachments",
        "type",
        "from",
        "media",
        "reaction",
    ]
)
# Payloads shaped like Meta's, with every field free to hold anything.
envelope_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.just("instagram") | st.just("comments"),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(known_keys, children, max_size=6),
    max_leaves=40,
)


def queued() -> int:
    return sum(get_queue(name).count for name in QUEUE_NAMES)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.one_of(
        json_values, envelope_like, st.builds(lambda e: {"object": "instagram", "entry": e}, envelope_like)
    )
)
def test_parser_never_crashes_on_any_json(payload: Any) -> None:
    body = json.dumps(payload).encode()
    try:
        parsed = parse_webhook_body(body)
    except WebhookPayloadError:
        return
    for event in parsed.events:
        assert event.account_id and event.event_id and event.sender_id
        assert isinstance(event.text, str)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_parser_never_crashes_on_any_bytes(body: bytes) -> None:
    try:
        parse_webhook_body(body)
    except WebhookPayloadError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=envelope_like, signed=st.booleans())
def test_endpoint_never_answers_500_and_queues_nothing_unsigned(client: Client, payload: Any, signed: bool) -> None:
    body = json.dumps(payload).encode()
    before = queued()
    signature = None if signed else "sha256=" + "ab" * 32
    response = post_webhook(client, body, signature=signature)
    assert response.status_code in (200, 400, 403)
    if not signed:
        assert response.status_code == 403
        assert queued() == before


def test_a_replayed_signature_on_another_body_is_refused(client: Client) -> None:
    signature = sign_body(body=fixture_bytes("messages__text"), secret="test-app-secret")
    assert post_webhook(client, fixture_bytes("comments__feed"), signature=signature).status_code == 403
    assert queued() == 0


@pytest.mark.parametrize(
    "body",
    [
        fixture_bytes("messages__text")[:-7],  # truncated
        b'{"object":"instagram","entry":[' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"]}",  # deeply nested
    ],
)
def test_truncated_and_deeply_nested_json_is_a_bad_request(client: Client, body: bytes) -> None:
    assert post_webhook(client, body).status_code in (200, 400)
    assert queued() == 0


def test_huge_strings_and_wrong_types_in_every_field_are_skipped_not_fatal(client: Client) -> None:
    huge = "x" * 2_000_000
    entries = [
        {"id": huge, "messaging": [{"sender": {"id": 1.5}, "message": {"mid": ["a"], "text": huge}}]},
        {"id": {"x": 1}, "changes": "nope"},
        {"id": "17841400000000001", "messaging": [{"sender": {"id": "1"}, "message": {"mid": "m", "text": 5}}]},
        {"id": "17841400000000001", "changes": [{"field": "comments", "value": {"id": 7, "from": {"id": []}}}]},
        {"id": "17841400000000001", "time": "yesterday", "messaging": None, "changes": {}},
    ]
    response = post_webhook(client, {"object": "instagram", "entry": entries})
    assert response.status_code == 200
    # Not one of these events is usable: each is skipped with a reason, and the batch is acknowledged.
    assert queued() == 0
