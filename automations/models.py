from django.core.exceptions import ValidationError
from django.db import models

from webhooks.events import EventKind


class Workspace(models.Model):
    """A business's connected Instagram professional account and the token Instabot sends with."""

    name = models.CharField(max_length=200)
    # The id Meta puts in `entry[].id` of every webhook for this account.
    instagram_account_id = models.CharField(max_length=64, unique=True)
    # Never shown: the admin and the API accept it but never display it.
    access_token = models.TextField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.instagram_account_id})"


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
