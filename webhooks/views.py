"""The Instagram webhook endpoint: verify, parse, hand over, answer. Nothing else happens here."""

import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from instabot.metrics import webhook_request_observe
from webhooks.parsing import WebhookPayloadError, parse_webhook_body
from webhooks.request_body import BodyLengthInvalid, BodyLengthRequired, BodyTooLarge, request_body
from webhooks.services import IntakeUnavailable, webhook_events_dispatch
from webhooks.signatures import signature_is_valid

logger = logging.getLogger(__name__)


def _text(status: int, body: str) -> HttpResponse:
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def app_secrets() -> list[str]:
    return [settings.INSTAGRAM_APP_SECRET, settings.META_APP_SECRET]


@csrf_exempt
@require_http_methods(["GET", "POST"])
def instagram_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify_subscription(request)
    started, status = time.perf_counter(), 500
    try:
        response = _receive_events(request)
        status = response.status_code
        return response
    finally:
        webhook_request_observe(status=status, seconds=time.perf_counter() - started)


def _verify_subscription(request: HttpRequest) -> HttpResponse:
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")
    if mode == "subscribe" and constant_time_compare(token, settings.INSTAGRAM_VERIFY_TOKEN):
        return _text(200, challenge)
    logger.warning("webhook verification refused (mode=%r)", mode)
    return _text(403, "Verification token mismatch.")


def _receive_events(request: HttpRequest) -> HttpResponse:
    received_at = time.time()  # where the activity log's latency starts
    try:
        body = request_body(request, limit=settings.WEBHOOK_MAX_BODY_BYTES)
    except BodyLengthInvalid as exc:
        return _text(400, str(exc))
    except BodyTooLarge as exc:
        return _text(413, str(exc))
    except BodyLengthRequired as exc:
        logger.warning("webhook refused: a chunked body this server cannot read")
        return _text(411, str(exc))

    if not signature_is_valid(body=body, header=request.headers.get("X-Hub-Signature-256"), secrets=app_secrets()):
        logger.warning("webhook refused: missing or invalid X-Hub-Signature-256")
        return _text(403, "Invalid signature.")
    try:
        parsed = parse_webhook_body(body, received_at=received_at)
    except WebhookPayloadError as exc:
        logger.warning("webhook refused: %s", exc)
        return _text(400, str(exc))
    if parsed.skipped:
        logger.info("webhook: skipped %d item(s): %s", len(parsed.skipped), ", ".join(sorted(set(parsed.skipped))))
    try:
        webhook_events_dispatch(events=parsed.events)
    except IntakeUnavailable as exc:
        # Not kept anywhere: a non-2xx answer makes Meta deliver it again later.
        logger.error("webhook not accepted: %s", exc)
        return _text(503, "Temporarily unavailable; please retry.")
    return _text(200, "EVENT_RECEIVED")
