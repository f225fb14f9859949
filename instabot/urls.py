from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from automations.api import router
from queueing.admin import dead_letters_view, operations_view
from queueing.api import WorkspaceDeadLettersReplayView
from webhooks.views import instagram_webhook

# /healthz, /readyz and /metrics are answered by instabot.middleware.OperationsMiddleware, not here.

# The app list is one click away (Home); lists need the width: at 1280 px the sidebar and the filter
# panel left the automation list too narrow for its columns.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    # Meta calls this URL with and without the trailing slash; neither may redirect.
    re_path(r"^api/webhooks/instagram/?$", instagram_webhook, name="instagram-webhook"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Log in and out links of the browsable API.
    path("api/v1/auth/", include("rest_framework.urls")),
    path(
        "api/v1/workspaces/<str:pk>/replay-dead-letters/",
        WorkspaceDeadLettersReplayView.as_view(),
        name="workspace-replay-dead-letters",
    ),
    path("api/v1/", include(router.urls)),
    path("", include("instagram.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/dead-letters/", admin.site.admin_view(dead_letters_view), name="dead-letters"),
    path("admin/operations/", admin.site.admin_view(operations_view), name="operations"),
    path("admin/", admin.site.urls),
]
