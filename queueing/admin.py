from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from queueing.dead_letters import dead_letter_list, dead_letter_replay, dead_letter_replay_all
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
    """Dead letters in `webhooks-dead`, each replayable once its cause is fixed.

    `?account=<Instagram account id>` and `?code=<Graph error code>` narrow the list, and "Replay all"
    to what is shown (after reconnecting an account: `?account=...&code=190`).
    """
    params = request.POST if request.method == "POST" else request.GET
    account_id = params.get("account", "").strip()
    code_text = params.get("code", "").strip()
    error_code = int(code_text) if code_text.isdigit() else None
    filters = {key: value for key, value in (("account", account_id), ("code", code_text)) if value}
    if request.method == "POST":
        if "replay_all" in request.POST:
            replayed = dead_letter_replay_all(account_id=account_id, error_code=error_code)
        else:
            replayed = sum(1 for job_id in request.POST.getlist("job_id") if dead_letter_replay(job_id=job_id))
        messages.success(request, f"Replayed {replayed} dead letter(s).")
        query = f"?{urlencode(filters)}" if filters else ""
        return HttpResponseRedirect(reverse("dead-letters") + query)
    context = {
        **admin.site.each_context(request),
        "title": "Dead letters",
        "letters": dead_letter_list(account_id=account_id, error_code=error_code),
        "account": account_id,
        "code": code_text if error_code is not None else "",
    }
    return TemplateResponse(request, "admin/queueing/dead_letters.html", context)
