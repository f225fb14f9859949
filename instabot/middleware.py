from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from instabot import views

# Exact paths (with or without the trailing slash) -> view.
OPERATIONS_VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}


class OperationsMiddleware:
    """Answers `/healthz`, `/readyz` and `/metrics` before any other middleware runs.

    Health checks and scrapers reach the process by an internal host name over plain HTTP: the Host
    check (DJANGO_ALLOWED_HOSTS), the HTTPS redirect, sessions and CSRF must not stand in their way,
    and these endpoints use none of them. First in MIDDLEWARE.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = OPERATIONS_VIEWS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return view(request)
