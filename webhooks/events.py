"""The typed events Instabot acts on, as parsed from Meta's webhook payloads.

An event travels through the queue as plain data (`to_payload`) and is rebuilt by the worker.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    DM = "dm"
    STORY_REPLY = "story_reply"
    STORY_MENTION = "story_mention"
    COMMENT = "comment"
    LIVE_COMMENT = "live_comment"


@dataclass(frozen=True, slots=True)
class InstagramEvent:
    kind: EventKind
    # The connected professional account (`entry[].id`).
    account_id: str
    # Meta's own id for the event: `mid` for messages, the comment id for comments.
    event_id: str
    # Who wrote it: the IGSID of a DM sender, or `from.id` of a commenter.
    sender_id: str
    text: str = ""
    # The post or reel commented on; the story replied to.
    media_id: str = ""
    timestamp: int = 0
    # When Instabot's web process received the webhook (epoch seconds; 0 when unknown, as for jobs
    # queued before it was recorded): the start of the activity log's latency.
    received_at: float = 0.0

    def to_payload(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies every field, a tenth of intake's enqueue.
        return {
            "kind": str(self.kind),
            "account_id": self.account_id,
            "event_id": self.event_id,
            "sender_id": self.sender_id,
            "text": self.text,
            "media_id": self.media_id,
            "timestamp": self.timestamp,
            "received_at": self.received_at,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "InstagramEvent":
        return cls(
            kind=EventKind(payload["kind"]),
            account_id=str(payload["account_id"]),
            event_id=str(payload["event_id"]),
            sender_id=str(payload["sender_id"]),
            text=str(payload.get("text", "")),
            media_id=str(payload.get("media_id", "")),
            timestamp=int(payload.get("timestamp", 0)),
            received_at=float(payload.get("received_at") or 0.0),
        )
