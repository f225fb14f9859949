from django.contrib import admin
from django.urls import path

from instagram.views import connect_callback_view, connect_view

# Staff only (the admin's login), like the admin itself.
urlpatterns = [
    path("connect/instagram/", admin.site.admin_view(connect_view), name="instagram-connect"),
    path(
        "connect/instagram/callback/",
        admin.site.admin_view(connect_callback_view),
        name="instagram-connect-callback",
    ),
]
