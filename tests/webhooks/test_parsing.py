import dataclasses
import json

import pytest

from tests.support.webhooks import fixture_bytes
from webhooks.events import EventKind, InstagramEvent
from webhooks.parsing import WebhookPayloadError, parse_webhook_body

ACCOUNT = "17841400000000001"


def test_text_dm_becomes_a_dm_event() -> None:
    parsed = parse_webhook_body(fixture_bytes("messages__text"))
    assert parsed.skipped == []
    [event] = parsed.events
    assert event.kind == EventKind.DM
    assert event.account_id == ACCOUNT
    assert event.sender_id == "1234567890123456"
    assert event.text == "price?"
    assert event.event_id.startswith("aWdfZAG1")
    assert event.timestamp == 1764340000001


def test_story_reply_carries_the_story_id() -> None:
    [event] = parse_webhook_body(fixture_bytes("messages__story_reply")).events
    assert event.kind == EventKind.STORY_REPLY
    assert event.media_id == "18000000000000001"
    assert event.text == "love this 😍"


def test_story_mention_is_a_story_event_without_text() -> None:
    [event] = parse_webhook_body(fixture_bytes("messages__story_mention")).events
    assert (event.kind, event.text) == (EventKind.STORY_MENTION, "")


@pytest.mark.parametrize(
    ("fixture", "kind", "comment_id", "media_id"),
    [
        ("comments__feed", EventKind.COMMENT, "17865799348089039", "17900000000000001"),
        ("comments__reply", EventKind.COMMENT, "17865799348089040", "17900000000000001"),
        ("comments__ad", EventKind.COMMENT, "17865799348089100", "17900000000000005"),
        ("live_comments__live", EventKind.LIVE_COMMENT, "17865799348089041", "17900000000000009"),
    ],
)
def test_comments_carry_comment_and_media_ids(fixture: str, kind: EventKind, comment_id: str, media_id: str) -> None:
    [event] = parse_webhook_body(fixture_bytes(fixture)).events
    assert (event.kind, event.event_id, event.media_id) == (kind, comment_id, media_id)


def test_batch_yields_every_event_of_every_entry_in_order() -> None:
    parsed = parse_webhook_body(fixture_bytes("messages__batch"))
    assert [(e.account_id, e.event_id) for e in parsed.events] == [
        ("17841400000000001", "mid.batch.0001"),
        ("17841400000000001", "mid.batch.0002"),
        ("17841400000000002", "mid.batch.0003"),
    ]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("messages__echo", "echo"),
        ("comments__own", "own comment"),
        ("messages__unsend", "unsend"),
        ("messages__image", "message without text"),
        ("messages__reaction", "reaction"),
        ("messages__postback", "postback"),
        ("messaging_seen__read", "read"),
        ("messages__edit", "message_edit"),
        ("messages__referral", "referral"),
        ("mentions__comment", "field 'mentions'"),
        ("page__other_object", "object 'page'"),
    ],
)
def test_events_instabot_does_not_act_on_are_skipped_with_a_reason(fixture: str, reason: str) -> None:
    parsed = parse_webhook_body(fixture_bytes(fixture))
    assert parsed.events == []
    assert parsed.skipped == [reason]


def test_unknown_fields_are_ignored_not_fatal() -> None:
    [event] = parse_webhook_body(fixture_bytes("messages__unknown_fields")).events
    assert event.text == "price"


def test_unicode_text_is_decoded_from_escapes_and_raw_utf8_alike() -> None:
    escaped = fixture_bytes("messages__unicode")
    assert b"\\u00e4" in escaped
    raw = json.dumps(json.loads(escaped), ensure_ascii=False).encode()
    assert parse_webhook_body(escaped).events == parse_webhook_body(raw).events
    assert parse_webhook_body(raw).events[0].text == "Préis? äöå 😍 PRICE"


def test_numeric_ids_are_accepted_as_strings() -> None:
    body = {
        "object": "instagram",
        "entry": [
            {"id": 17841400000000001, "messaging": [{"sender": {"id": 42}, "message": {"mid": "m1", "text": "hi"}}]}
        ],
    }
    [event] = parse_webhook_body(json.dumps(body).encode()).events
    assert (event.account_id, event.sender_id) == ("17841400000000001", "42")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'"instagram"',
        b'{"object":"instagram"}',
        b'{"entry":[]}',
        b'{"object":1,"entry":[]}',
        b'{"object":"instagram","entry":{}}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"object":"instagram","entry":[',
        "\xff\xfe".encode("latin-1"),
    ],
)
def test_bodies_that_are_not_the_envelope_are_errors(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_webhook_body(body)


@pytest.mark.parametrize(
    "entry",
    [
        None,
        5,
        "x",
        {},
        {"id": None},
        {"id": True},
        {"id": "1", "messaging": "x"},
        {"id": "1", "messaging": [5]},
        {"id": "1", "messaging": [{"message": "text"}]},
        {"id": "1", "messaging": [{"message": {"mid": 5.5}}]},
        {"id": "1", "messaging": [{"sender": {"id": "2"}, "message": {"mid": "m", "text": ["x"]}}]},
        {"id": "1", "changes": [{"field": 5}]},
        {"id": "1", "changes": [{"field": "comments", "value": []}]},
        {"id": "1", "changes": [{"field": "comments", "value": {"id": "c", "from": "x"}}]},
    ],
)
def test_malformed_entries_are_skipped_without_error(entry: object) -> None:
    parsed = parse_webhook_body(json.dumps({"object": "instagram", "entry": [entry]}).encode())
    assert parsed.events == []
    assert parsed.skipped


def test_event_survives_the_trip_through_the_queue_as_plain_data() -> None:
    event = InstagramEvent(
        kind=EventKind.COMMENT,
        account_id="1",
        event_id="c1",
        sender_id="2",
        text="ö",
        media_id="m",
        timestamp=5,
        received_at=1796050000.25,
    )
    payload = json.loads(json.dumps(event.to_payload()))
    assert set(payload) == {field.name for field in dataclasses.fields(InstagramEvent)}
    assert InstagramEvent.from_payload(payload) == event
    # A job queued before events carried their receipt time still runs.
    del payload["received_at"]
    assert InstagramEvent.from_payload(payload).received_at == 0.0


@pytest.mark.parametrize("fixture", ["messages__batch", "comments__feed", "live_comments__live"])
def test_every_event_carries_the_time_instabot_received_it(fixture: str) -> None:
    parsed = parse_webhook_body(fixture_bytes(fixture), received_at=1796050000.5)
    assert parsed.events and {event.received_at for event in parsed.events} == {1796050000.5}
