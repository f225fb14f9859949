"""Operations endpoints: `/healthz`, `/readyz` and `/metrics`.

They are answered by `instabot.middleware.OperationsMiddleware` ahead of every other middleware:
a container platform or Prometheus calls them by an internal address (`127.0.0.1:8000`, `web:8000`)
that is not in DJANGO_ALLOWED_HOSTS and over plain HTTP, and none of them builds a URL from the Host
header, touches a session or logs per call. Like `instabot/urls.py`, this module composes the apps.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from instabot.health import readiness_check
from instabot.metrics import RedisMetricsCollector
from queueing.metrics import QueueCollector

_registry = CollectorRegistry(auto_describe=False)
_registry.register(RedisMetricsCollector())
_registry.register(QueueCollector())


def healthz(request: HttpRequest) -> HttpResponse:
    """200 while this process serves requests; reads no database and no Redis."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and Redis answer within READINESS_TIMEOUT_SECONDS, else 503 naming which did not."""
    readiness = readiness_check()
    body: dict[str, object] = {"status": "ok" if readiness.ready else "unavailable", "checks": readiness.checks}
    if not readiness.ready:
        body["failed"] = readiness.failed
    return JsonResponse(body, status=200 if readiness.ready else 503)


def _metrics_authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and constant_time_compare(given.strip(), token)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of what every Instabot process counted (see instabot.metrics)."""
    if not _metrics_authorized(request):
        response = HttpResponse("Authorization: Bearer <METRICS_TOKEN> required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)
