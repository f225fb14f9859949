from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from instabot.encryption import EncryptedTextField
from webhooks.events import EventKind

# A token this close to its expiry is shown as `expiring` (the daily refresh should have renewed it).
TOKEN_EXPIRING_WITHIN = timedelta(days=7)


class TokenStatus(models.TextChoices):
    OK = "ok", "OK"
    EXPIRING = "expiring", "Expiring within 7 days"
    EXPIRED = "expired", "Expired or refused by Meta"


def token_status(*, expires_at: datetime | None, refused_at: datetime | None, now: datetime) -> TokenStatus:
    """`expired` once Meta refused the token (code 190) or its expiry passed; `expiring` within 7 days of it.

    A token of unknown expiry (pasted by hand) is `ok` until Meta refuses it.
    """
    if refused_at is not None or (expires_at is not None and expires_at <= now):
        return TokenStatus.EXPIRED
    if expires_at is not None and expires_at - now <= TOKEN_EXPIRING_WITHIN:
        return TokenStatus.EXPIRING
    return TokenStatus.OK


# What saving a new token resets (Workspace.save).
_TOKEN_STATE_FIELDS = ("token_issued_at", "token_expires_at", "token_refused_at")


class Workspace(models.Model):
    """A business's connected Instagram professional account and the token Instabot sends with."""

    name = models.CharField(max_length=200)
    # The id Meta puts in `entry[].id` of every webhook for this account.
    instagram_account_id = models.CharField(max_length=64, unique=True)
    # The account's @username, as Meta last told it (connect flow); informative only.
    instagram_username = models.CharField(max_length=64, blank=True, default="")
    # Encrypted at rest (INSTABOT_ENCRYPTION_KEY), plain text on the instance. Never shown: the admin and
    # the API accept it but never display it. Saving a different one resets the token fields (see save()).
    access_token = EncryptedTextField()
    # When the current token was issued (connect, refresh or typed in); None: unknown (before these fields).
    token_issued_at = models.DateTimeField(null=True, blank=True)
    # When Meta says the current token expires; None: unknown (a token pasted by hand).
    token_expires_at = models.DateTimeField(null=True, blank=True)
    # When Meta refused the current token (code 190); sends for the account are parked until a new one.
    token_refused_at = models.DateTimeField(null=True, blank=True)
    # When the account was last subscribed to webhooks (comments, messages) through Instabot.
    subscribed_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    # Not fields: the token as loaded, and the lifetime set_access_token() was given for a new one.
    _loaded_access_token: str | None = None
    _new_token_expires_in: int | None = None

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.instagram_account_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving a token other than the one loaded (admin, API, reconnect, code) starts it afresh: issued
        now, not refused by Meta (its sends resume), expiring when `set_access_token` said, else unknown."""
        if self._access_token_changed():
            now = timezone.now()
            expires_in = self._new_token_expires_in
            self.token_issued_at = now
            self.token_expires_at = now + timedelta(seconds=expires_in) if expires_in else None
            self.token_refused_at = None
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], *_TOKEN_STATE_FIELDS}
        super().save(*args, **kwargs)
        self._loaded_access_token = self.__dict__.get("access_token")
        self._new_token_expires_in = None

    @property
    def token_status(self) -> TokenStatus:
        return token_status(expires_at=self.token_expires_at, refused_at=self.token_refused_at, now=timezone.now())

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> "Workspace":
        instance = super().from_db(*args, **kwargs)
        # What save() compares with: the token as read, before anyone assigns a new one.
        instance._loaded_access_token = instance.__dict__.get("access_token")
        return instance

    def set_access_token(self, token: str, *, expires_in_seconds: int | None = None) -> None:
        """A new token with the lifetime Meta gave it (saved by the next save())."""
        self.access_token = token
        self._new_token_expires_in = expires_in_seconds

    def _access_token_changed(self) -> bool:
        if "access_token" not in self.__dict__:  # deferred, hence not being saved
            return False
        if self._state.adding:
            return True
        return bool(self.access_token != self._loaded_access_token)


class AutomationType(models.TextChoices):
    DM = "dm", "Direct message"
    STORY = "story", "Story reply or mention"
    COMMENT = "comment", "Comment"


# Meta accepts at most 1000 bytes of UTF-8 text in one message.
MAX_MESSAGE_BYTES = 1000


def validate_keywords(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Keywords must be a list of strings.")
    if any(not item.strip() for item in value):
        raise ValidationError("Keywords may not be blank.")
    if any(len(item) > 100 for item in value):
        raise ValidationError("A keyword may be at most 100 characters long.")


def validate_message_text(value: str) -> None:
    if len(value.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ValidationError(f"Instagram accepts at most {MAX_MESSAGE_BYTES} bytes of text.")


class Automation(models.Model):
    """When an event of `type` whose text holds one of `keywords` arrives, answer it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=AutomationType.choices)
    # Comment automations only: the post or reel they watch; empty means any post.
    media_id = models.CharField(max_length=64, blank=True, default="")
    # Matched case-insensitively as whole words; an empty list matches every message.
    keywords = models.JSONField(default=list, blank=True, validators=[validate_keywords])
    # The DM sent; for a comment automation, the private reply.
    reply_text = models.TextField(validators=[validate_message_text])
    # Comment automations only: the public reply under the comment, if any.
    public_reply_text = models.TextField(blank=True, default="", validators=[validate_message_text])
    # Lower runs first when several automations match the same event.
    position = models.PositiveIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    # Follow-up question: `reply_text` asks it, and the sender's next DM within CACHE_USER_STATE_TTL
    # is stored as a Lead and answered with `confirmation_text` (if any).
    collect_reply = models.BooleanField(default=False)
    confirmation_text = models.TextField(blank=True, default="", validators=[validate_message_text])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["workspace_id", "type", "position", "id"]
        indexes = [models.Index(fields=["workspace", "type", "is_active"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.type != AutomationType.COMMENT:
            if self.media_id:
                errors["media_id"] = "Only comment automations watch a post."
            if self.public_reply_text:
                errors["public_reply_text"] = "Only comment automations reply publicly."
        if errors:
            raise ValidationError(errors)


class Lead(models.Model):
    """A user's answer to an automation's follow-up question ("reply with your email")."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="leads")
    # Kept when the automation is deleted later: the answer stays the business's.
    automation = models.ForeignKey(Automation, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads")
    # Who answered: the IGSID of the DM's sender.
    instagram_user_id = models.CharField(max_length=64)
    text = models.TextField()
    # Meta's message id of the answer: a job run twice stores it once.
    event_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.instagram_user_id}: {self.text[:50]}"


# --- What Instabot did: the activity log, misses and per-automation counts ---------------------------
# Rows are written in batches by workers (automations/activity.py, automations/activity_store.py), never
# by the job that did the work, and purged after ACTIVITY_RETENTION_DAYS.


class ActivityAction(models.TextChoices):
    DM = "dm", "DM"
    PUBLIC_REPLY = "public_reply", "Public reply"
    PRIVATE_REPLY = "private_reply", "Private reply"
    CONFIRMATION = "confirmation", "Confirmation"


class ActivityStatus(models.TextChoices):
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    # Meta may or may not have sent it (no answer in time, or a worker died mid-send): a dead letter.
    UNCERTAIN = "uncertain", "Uncertain"
    # Sent before (Meta's redelivery, a replay, a second run): not sent again.
    SKIPPED_DUPLICATE = "skipped_duplicate", "Skipped (sent before)"


# The kinds of event Instabot acts on (webhooks.events.EventKind): "dm", "story_reply", ...
EVENT_KIND_CHOICES = [
    (str(kind), "DM" if kind == EventKind.DM else str(kind).replace("_", " ").capitalize()) for kind in EventKind
]


class ActivityEntry(models.Model):
    """One send Instabot made, or decided not to make, for one event."""

    # Given by the process that recorded it: a batch drained twice is stored once.
    record_id = models.CharField(max_length=32, unique=True, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="activity")
    # Kept (as empty) when the automation is deleted later.
    automation = models.ForeignKey(
        Automation, on_delete=models.SET_NULL, null=True, blank=True, related_name="activity"
    )
    kind = models.CharField(max_length=16, choices=EVENT_KIND_CHOICES)
    # Meta's id of the event answered: `mid` for messages, the comment id for comments.
    event_id = models.CharField(max_length=255)
    action = models.CharField(max_length=16, choices=ActivityAction.choices)
    # The Instagram user answered (IGSID of the sender or commenter).
    recipient = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=ActivityStatus.choices)
    graph_message_id = models.CharField(max_length=255, blank=True, default="")
    # Why it failed or is uncertain: Meta's error as Instabot classified it.
    detail = models.CharField(max_length=500, blank=True, default="")
    # When the webhook reached Instabot; empty when unknown (an event queued by an older version).
    received_at = models.DateTimeField(null=True, blank=True)
    # When the send finished (or was decided against).
    sent_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        verbose_name = "activity entry"
        verbose_name_plural = "activity log"
        indexes = [
            models.Index(fields=["sent_at"], name="activity_sent_at"),
            models.Index(fields=["workspace", "sent_at"], name="activity_workspace_sent_at"),
            models.Index(fields=["automation", "sent_at"], name="activity_automation_sent_at"),
            models.Index(fields=["status", "sent_at"], name="activity_status_sent_at"),
            models.Index(fields=["recipient"], name="activity_recipient"),
            models.Index(fields=["event_id"], name="activity_event_id"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.status} for {self.event_id}"


class Miss(models.Model):
    """An event of a known workspace that no automation matched."""

    record_id = models.CharField(max_length=32, unique=True, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="misses")
    kind = models.CharField(max_length=16, choices=EVENT_KIND_CHOICES)
    event_id = models.CharField(max_length=255)
    # The IGSID of the DM's sender or the commenter.
    sender = models.CharField(max_length=64)
    text = models.TextField(blank=True, default="")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "misses"
        indexes = [
            models.Index(fields=["received_at"], name="miss_received_at"),
            models.Index(fields=["workspace", "received_at"], name="miss_workspace_received_at"),
            models.Index(fields=["event_id"], name="miss_event_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_id}: {self.text[:50]}"


class AutomationDailyCount(models.Model):
    """How many events an automation answered on one day (UTC): the source of its fired counts.

    Kept after the activity rows are purged, so totals outlive ACTIVITY_RETENTION_DAYS; one row per
    automation per day it fired.
    """

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="daily_counts")
    day = models.DateField()
    fired = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["automation", "day"], name="automation_daily_count_unique")]

    def __str__(self) -> str:
        return f"{self.automation_id} {self.day}: {self.fired}"
