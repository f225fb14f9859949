"""`GET /connect/instagram/` and its callback: staff only, each ends in the admin with a message."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from automations.cache import CACHE_ERRORS
from automations.graph import GraphAPIError
from automations.models import Workspace
from instagram.connect import ConnectError, connect_start, connect_state_consume, workspace_connect
from instagram.selectors import dead_letters_url


def _redirect_uri(request: HttpRequest) -> str:
    # The same in both steps: Meta refuses a code exchange whose redirect_uri differs from the window's.
    return settings.INSTAGRAM_REDIRECT_URI or request.build_absolute_uri(reverse("instagram-connect-callback"))


def _workspaces_url() -> str:
    return reverse("admin:automations_workspace_changelist")


def connect_view(request: HttpRequest) -> HttpResponse:
    """Send the staff user to Instagram's authorization window."""
    if not settings.INSTAGRAM_APP_ID:
        messages.error(
            request,
            "Connecting needs the Meta app's Instagram app id: set INSTAGRAM_APP_ID (and INSTAGRAM_REDIRECT_URI, "
            "INSTAGRAM_APP_SECRET); see the README, “Connecting Instagram accounts”.",
        )
        return HttpResponseRedirect(_workspaces_url())
    try:
        url = connect_start(user_id=str(request.user.pk), redirect_uri=_redirect_uri(request))
    except CACHE_ERRORS:
        messages.error(request, "Redis does not answer: connecting is not possible right now. Try again shortly.")
        return HttpResponseRedirect(_workspaces_url())
    return HttpResponseRedirect(url)


def connect_callback_view(request: HttpRequest) -> HttpResponse:
    """Where Instagram sends the browser back: with `code` and `state`, or with `error` when refused."""
    state = request.GET.get("state", "")
    error = request.GET.get("error", "")
    if error:
        # Denied consent: nothing to do but say so (and spend the state, if Instagram sent it back).
        if state:
            try:
                connect_state_consume(state=state, user_id=str(request.user.pk))
            except (ConnectError, *CACHE_ERRORS):  # type: ignore[misc]  # a tuple of classes, unpacked
                pass
        description = request.GET.get("error_description", "") or error
        messages.error(request, f"Instagram did not connect the account: {description[:300]} ({error[:50]}).")
        return HttpResponseRedirect(_workspaces_url())
    try:
        connect_state_consume(state=state, user_id=str(request.user.pk))
    except ConnectError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(_workspaces_url())
    except CACHE_ERRORS:
        messages.error(request, "Redis does not answer: connecting is not possible right now. Try again shortly.")
        return HttpResponseRedirect(_workspaces_url())
    # Instagram appends "#_" to the redirect; browsers keep the fragment, but strip it if it got through.
    code = request.GET.get("code", "").removesuffix("#_")
    if not code:
        messages.error(request, "Instagram sent no authorization code; nothing was connected.")
        return HttpResponseRedirect(_workspaces_url())
    try:
        result = workspace_connect(code=code, redirect_uri=_redirect_uri(request))
    except GraphAPIError as exc:
        messages.error(request, f"Instagram refused the connection: {exc.message}. Nothing was saved.")
        return HttpResponseRedirect(_workspaces_url())
    workspace = result.workspace
    username = f"@{workspace.instagram_username}" if workspace.instagram_username else "the account"
    messages.success(
        request,
        f"{'Connected' if result.created else 'Reconnected'} {username} (Instagram account "
        f"{workspace.instagram_account_id}) as workspace “{workspace.name}”: active, token valid until "
        f"{_date(workspace)}, subscribed to comments and messages.",
    )
    if result.was_refused:
        messages.warning(
            request,
            format_html(
                'Its previous token had been refused by Meta. <a href="{}">Replay the events parked meanwhile</a>.',
                dead_letters_url(instagram_account_id=workspace.instagram_account_id),
            ),
        )
    return HttpResponseRedirect(reverse("admin:automations_workspace_change", args=[workspace.pk]))


def _date(workspace: Workspace) -> str:
    return workspace.token_expires_at.strftime("%Y-%m-%d") if workspace.token_expires_at else "(not given)"
