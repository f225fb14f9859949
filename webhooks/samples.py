"""Meta-shaped sample payloads, for `simulate_webhook`, the benchmark and tests."""

import itertools
import json
import time
from typing import Any

from webhooks.events import EventKind

_counter = itertools.count(1)


def sample_event_payload(
    *,
    kind: EventKind,
    account_id: str,
    text: str,
    sender_id: str = "1234567890123456",
    event_id: str | None = None,
    media_id: str = "17900000000000001",
) -> dict[str, Any]:
    """One webhook envelope carrying a single event of `kind`, as Meta would send it."""
    now_ms = int(time.time() * 1000)
    unique = event_id or f"sim.{now_ms}.{next(_counter)}"
    if kind in (EventKind.COMMENT, EventKind.LIVE_COMMENT):
        field = "comments" if kind == EventKind.COMMENT else "live_comments"
        value = {
            "from": {"id": sender_id, "username": "sample.user"},
            "media": {"id": media_id, "media_product_type": "LIVE" if field == "live_comments" else "REELS"},
            "id": unique,
            "text": text,
        }
        return {
            "object": "instagram",
            "entry": [{"id": account_id, "time": now_ms // 1000, "changes": [{"field": field, "value": value}]}],
        }
    message: dict[str, Any] = {"mid": unique, "text": text}
    if kind == EventKind.STORY_REPLY:
        message["reply_to"] = {"story": {"url": "https://lookaside.fbsbx.com/story", "id": media_id}}
    elif kind == EventKind.STORY_MENTION:
        message = {"mid": unique, "attachments": [{"type": "story_mention", "payload": {"url": "https://x/y"}}]}
    messaging = {
        "sender": {"id": sender_id},
        "recipient": {"id": account_id},
        "timestamp": now_ms,
        "message": message,
    }
    return {"object": "instagram", "entry": [{"id": account_id, "time": now_ms, "messaging": [messaging]}]}


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Serialize as Meta does: compact, with non-ASCII escaped as \\uXXXX."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")
