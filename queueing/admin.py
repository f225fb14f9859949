from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import redis
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
from queueing.operations import MinuteCount, operations_get


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
    ones sent anyway or discarded, each by a person's decision.

    `?account=<Instagram account id>` and `?code=<Graph error code>` narrow the list, and "Replay all"
    to what is shown (after reconnecting an account: `?account=...&code=190`).
    """
    params = request.POST if request.method == "POST" else request.GET
    account_id = params.get("account", "").strip()
    code_text = params.get("code", "").strip()
    error_code = int(code_text) if code_text.isdigit() else None
    filters = {key: value for key, value in (("account", account_id), ("code", code_text)) if value}
    if request.method == "POST":
        for level, text in dead_letters_act(request.POST, account_id=account_id, error_code=error_code):
            messages.add_message(request, level, text)
        query = f"?{urlencode(filters)}" if filters else ""
        return HttpResponseRedirect(reverse("dead-letters") + query)
    letters = dead_letter_list(account_id=account_id, error_code=error_code)
    context = {
        **admin.site.each_context(request),
        "title": "Dead letters",
        "uncertain": [letter for letter in letters if letter.uncertain],
        "others": [letter for letter in letters if not letter.uncertain],
        "account": account_id,
        "code": code_text if error_code is not None else "",
    }
    return TemplateResponse(request, "admin/queueing/dead_letters.html", context)


def operations_view(request: HttpRequest) -> HttpResponse:
    """Queues, throughput, failures, backlogs, workers and cache: what an operator checks first."""
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Operations"}
    try:
        operations = operations_get()
    except redis.RedisError as exc:
        context["error"] = f"Redis did not answer ({type(exc).__name__}): queues and counters are unknown."
        return TemplateResponse(request, "admin/queueing/operations.html", context, status=503)
    context.update(
        {
            "ops": operations,
            "queue_rows": [(queue, age_text(queue.oldest_age_seconds)) for queue in operations.queues],
            "worker_rows": [(worker, age_text(worker.heartbeat_age_seconds)) for worker in operations.workers],
            "chart": jobs_chart(operations.jobs_per_minute),
            "fallback_waiting_url": reverse("admin:queueing_fallbackevent_changelist") + "?relayed_at__isempty=1",
            "activity_url": reverse("admin:automations_activityentry_changelist"),
        }
    )
    return TemplateResponse(request, "admin/queueing/operations.html", context)


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class ChartBar:
    x: float
    y: float
    height: float
    label: str


CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 600, 120, 2


def jobs_chart(minutes: list[MinuteCount]) -> dict[str, Any]:
    """Bars for an inline SVG: one per minute, scaled to the busiest minute."""
    peak = max((minute.jobs or 0 for minute in minutes), default=0)
    slot = CHART_WIDTH / max(len(minutes), 1)
    bars = []
    for index, minute in enumerate(minutes):
        time = minute.start.strftime("%H:%M")
        height = (minute.jobs or 0) / peak * CHART_HEIGHT if peak else 0
        label = f"{time} UTC: {minute.jobs} jobs" if minute.jobs is not None else f"{time} UTC: no sample"
        bars.append(ChartBar(x=index * slot, y=CHART_HEIGHT - height, height=height, label=label))
    return {
        "bars": bars,
        "bar_width": max(slot - BAR_GAP, 1),
        "peak": peak,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "sampled": any(minute.jobs is not None for minute in minutes),
        "total": sum(minute.jobs or 0 for minute in minutes),
    }


def dead_letters_act(form: QueryDict, *, account_id: str = "", error_code: int | None = None) -> list[tuple[int, str]]:
    """Carry out the page's buttons: a row's own button acts on that row, the others on the checked rows."""
    if "replay_all" in form:
        result = dead_letter_replay_all(account_id=account_id, error_code=error_code)
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
