from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import reverse

from queueing.dead_letters import (
    DeliveryUncertain,
    dead_letter_discard,
    dead_letter_list,
    dead_letter_replay,
    dead_letter_replay_all,
    dead_letter_send_anyway,
)
from queueing.fallback import fallback_relay
from queueing.models import FallbackEvent


@admin.register(FallbackEvent)
class FallbackEventAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "event_id", "account_id", "queue_name", "created_at", "relayed_at", "job_id"]
    list_filter = [("relayed_at", admin.EmptyFieldListFilter), "queue_name"]
    search_fields = ["event_id", "account_id", "job_id"]
    readonly_fields = ["payload", "queue_name", "account_id", "event_id", "created_at", "relayed_at", "job_id"]
    actions = ["relay_now"]

    @admin.display(description="Kind")
    def kind(self, obj: FallbackEvent) -> str:
        return str(obj.payload.get("kind", ""))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Relay every waiting event into the queues now")
    def relay_now(self, request: HttpRequest, queryset: QuerySet[FallbackEvent]) -> None:
        result = fallback_relay()
        self.message_user(request, f"Relayed {result.relayed} event(s).", messages.SUCCESS)


def dead_letters_view(request: HttpRequest) -> HttpResponse:
    """Dead letters in `webhooks-dead`: ordinary ones replayed once their cause is fixed, delivery-uncertain
    ones sent anyway or discarded, each by a person's decision."""
    if request.method == "POST":
        for level, text in dead_letters_act(request.POST):
            messages.add_message(request, level, text)
        return HttpResponseRedirect(reverse("dead-letters"))
    letters = dead_letter_list()
    context = {
        **admin.site.each_context(request),
        "title": "Dead letters",
        "uncertain": [letter for letter in letters if letter.uncertain],
        "others": [letter for letter in letters if not letter.uncertain],
    }
    return TemplateResponse(request, "admin/queueing/dead_letters.html", context)


def dead_letters_act(form: QueryDict) -> list[tuple[int, str]]:
    """Carry out the page's buttons: a row's own button acts on that row, the others on the checked rows."""
    if "replay_all" in form:
        result = dead_letter_replay_all()
        notes = [(messages.SUCCESS, f"Replayed {result.replayed} dead letter(s).")]
        if result.left_uncertain:
            notes.append(
                (messages.WARNING, f"{result.left_uncertain} delivery-uncertain one(s) wait for your decision.")
            )
        return notes
    if "send_anyway" in form:
        sent = [job_id for job_id in _chosen(form, "send_anyway") if dead_letter_send_anyway(job_id=job_id)]
        return [(messages.SUCCESS, f"Sent anyway: {len(sent)} dead letter(s) queued once.")]
    if "discard" in form:
        discarded = [job_id for job_id in _chosen(form, "discard") if dead_letter_discard(job_id=job_id)]
        return [(messages.SUCCESS, f"Discarded {len(discarded)} dead letter(s).")]
    replayed = uncertain = 0
    for job_id in form.getlist("job_id"):
        try:
            replayed += 1 if dead_letter_replay(job_id=job_id) else 0
        except DeliveryUncertain:
            uncertain += 1
    notes = [(messages.SUCCESS, f"Replayed {replayed} dead letter(s).")]
    if uncertain:
        notes.append((messages.WARNING, f"{uncertain} delivery-uncertain one(s) not replayed: send anyway or discard."))
    return notes


def _chosen(form: QueryDict, button: str) -> list[str]:
    """A row's own button carries its job id; the buttons under a table act on the checked rows."""
    own = str(form.get(button, ""))
    return [own] if own else [str(job_id) for job_id in form.getlist("job_id")]
