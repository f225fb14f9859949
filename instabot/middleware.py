from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from instabot import views
from webhooks.views import instagram_webhook

# Exact paths (with or without the trailing slash) -> view.
OPERATIONS_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}
# Meta's deliveries, the hot path: signed, so sessions, CSRF, auth and messages have nothing to do there.
WEBHOOK_PATH = "/api/webhooks/instagram"


class OperationsMiddleware:
    """Answers `/healthz`, `/readyz` and `/metrics` before any other middleware runs, and hands Meta's
    webhook deliveries to their view directly.

    Health checks and scrapers reach the process by an internal host name over plain HTTP: the Host
    check (DJANGO_ALLOWED_HOSTS), the HTTPS redirect, sessions and CSRF must not stand in their way,
    and these endpoints use none of them. First in MIDDLEWARE.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info.rstrip("/") or "/"
        if path == WEBHOOK_PATH and (request.is_secure() or not settings.SECURE_SSL_REDIRECT):
            # Straight to the view (a seventh of intake's CPU went to the middleware it does not use);
            # the Host check stays. Over plain HTTP where HTTPS is required, the full chain redirects.
            request.get_host()
            response = instagram_webhook(request)
            # What CommonMiddleware would add: without it the server must chunk or close the connection.
            response.headers["Content-Length"] = str(len(response.content))
            return response
        view = OPERATIONS_VIEWS.get(path)
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return view(request)
