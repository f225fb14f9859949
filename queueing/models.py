from django.db import models


class FallbackEvent(models.Model):
    """A webhook event accepted while Redis was unreachable, kept until a relay queues it.

    Rows are kept after relaying (with `relayed_at`) so the admin can show where each event went.
    """

    payload = models.JSONField()
    queue_name = models.CharField(max_length=32)
    # Meta's id for the event (mid or comment id) and the account, for searching.
    account_id = models.CharField(max_length=64)
    event_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    relayed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    job_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account_id", "event_id"])]

    def __str__(self) -> str:
        return f"{self.payload.get('kind')} {self.event_id} ({'relayed' if self.relayed_at else 'waiting'})"
