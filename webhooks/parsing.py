"""Parse Meta's Instagram webhook payloads into typed events. Pure functions, no I/O.

A body that is not the webhook envelope is an error (the caller answers 400). Inside a valid
envelope, an entry or event Instabot cannot use is skipped with a reason, never an error, so
one odd event does not make Meta redeliver the whole batch.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from webhooks.events import EventKind, InstagramEvent


class WebhookPayloadError(ValueError):
    """The body is not JSON or not a webhook envelope."""


@dataclass
class ParsedWebhook:
    object_type: str
    events: list[InstagramEvent] = field(default_factory=list)
    # One short reason per skipped entry or event ("echo", "reaction", "malformed entry", ...).
    skipped: list[str] = field(default_factory=list)


# Messaging keys Instabot knows but does not act on.
_IGNORED_MESSAGING_KEYS = ("reaction", "postback", "read", "message_edit", "referral", "optin")
_COMMENT_FIELDS = {"comments": EventKind.COMMENT, "live_comments": EventKind.LIVE_COMMENT}


def _as_id(value: Any) -> str | None:
    """Meta's ids are strings, sometimes numbers; anything else is not an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int):
        return str(value)
    return None


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _get_dict(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def parse_webhook_body(body: bytes, *, received_at: float = 0.0) -> ParsedWebhook:
    """`received_at` (epoch seconds, from the caller: this stays pure) is stamped on every event."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadError("Body is not valid JSON.") from exc
    if not isinstance(payload, dict):
        raise WebhookPayloadError("Body is not a JSON object.")
    object_type = payload.get("object")
    entries = payload.get("entry")
    if not isinstance(object_type, str) or not isinstance(entries, list):
        raise WebhookPayloadError("Body is not a webhook envelope: it needs 'object' and 'entry'.")

    parsed = ParsedWebhook(object_type=object_type)
    if object_type != "instagram":
        parsed.skipped.append(f"object {object_type[:40]!r}")
        return parsed
    for entry in entries:
        _parse_entry(entry, parsed, received_at)
    return parsed


def _parse_entry(entry: Any, parsed: ParsedWebhook, received_at: float) -> None:
    account_id = _as_id(entry.get("id")) if isinstance(entry, dict) else None
    if account_id is None:
        parsed.skipped.append("malformed entry")
        return
    messaging = entry.get("messaging", [])
    changes = entry.get("changes", [])
    for item in messaging if isinstance(messaging, list) else []:
        _append(parsed, _parse_messaging(account_id, item, received_at))
    for item in changes if isinstance(changes, list) else []:
        _append(parsed, _parse_change(account_id, item, received_at))
    if not isinstance(messaging, list) or not isinstance(changes, list):
        parsed.skipped.append("malformed entry")


def _append(parsed: ParsedWebhook, result: InstagramEvent | str) -> None:
    if isinstance(result, InstagramEvent):
        parsed.events.append(result)
    else:
        parsed.skipped.append(result)


def _parse_messaging(account_id: str, item: Any, received_at: float) -> InstagramEvent | str:
    if not isinstance(item, dict):
        return "malformed messaging event"
    message = item.get("message")
    if not isinstance(message, dict):
        for key in _IGNORED_MESSAGING_KEYS:
            if key in item:
                return key
        return "unknown messaging event"
    sender_id = _as_id(_get_dict(item, "sender").get("id"))
    mid = _as_id(message.get("mid"))
    if sender_id is None or mid is None:
        return "malformed message"
    # Our own sends come back as echoes: answering them would loop.
    if message.get("is_echo") is True or sender_id == account_id:
        return "echo"
    if message.get("is_deleted") is True:
        return "unsend"
    if message.get("is_unsupported") is True:
        return "unsupported message"
    text = message.get("text")
    text = text if isinstance(text, str) else ""
    timestamp = _as_int(item.get("timestamp"))
    story = _get_dict(_get_dict(message, "reply_to"), "story")
    if story:
        return InstagramEvent(
            kind=EventKind.STORY_REPLY,
            account_id=account_id,
            event_id=mid,
            sender_id=sender_id,
            text=text,
            media_id=_as_id(story.get("id")) or "",
            timestamp=timestamp,
            received_at=received_at,
        )
    attachments = message.get("attachments")
    if isinstance(attachments, list) and any(
        isinstance(a, dict) and a.get("type") == "story_mention" for a in attachments
    ):
        return InstagramEvent(
            kind=EventKind.STORY_MENTION,
            account_id=account_id,
            event_id=mid,
            sender_id=sender_id,
            text=text,
            timestamp=timestamp,
            received_at=received_at,
        )
    if not text.strip():
        return "message without text"
    return InstagramEvent(
        kind=EventKind.DM,
        account_id=account_id,
        event_id=mid,
        sender_id=sender_id,
        text=text,
        timestamp=timestamp,
        received_at=received_at,
    )


def _parse_change(account_id: str, item: Any, received_at: float) -> InstagramEvent | str:
    if not isinstance(item, dict) or not isinstance(item.get("field"), str):
        return "malformed change"
    kind = _COMMENT_FIELDS.get(item["field"])
    if kind is None:
        return f"field {item['field'][:40]!r}"
    value = _get_dict(item, "value")
    comment_id = _as_id(value.get("id"))
    sender_id = _as_id(_get_dict(value, "from").get("id"))
    if comment_id is None or sender_id is None:
        return "malformed comment"
    # The account's own comments (our public replies among them) must never be answered.
    if sender_id == account_id:
        return "own comment"
    text = value.get("text")
    return InstagramEvent(
        kind=kind,
        account_id=account_id,
        event_id=comment_id,
        sender_id=sender_id,
        text=text if isinstance(text, str) else "",
        media_id=_as_id(_get_dict(value, "media").get("id")) or "",
        received_at=received_at,
    )
