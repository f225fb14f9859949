"""Meta's deliveries skip the middleware they do not use, and keep the Host check and the HTTPS rule."""

from typing import Any

from django.conf import settings as django_settings
from django.test import Client

from queueing.queues import HIGH, get_queue
from tests.conftest import ACCOUNT_ID
from tests.support.webhooks import WEBHOOK_URL
from webhooks.events import EventKind
from webhooks.samples import encode_payload, sample_event_payload
from webhooks.signatures import sign_body


def post_dm(client: Client, *, sender: str, **extra: Any) -> Any:
    body = encode_payload(sample_event_payload(kind=EventKind.DM, account_id=ACCOUNT_ID, sender_id=sender, text="hi"))
    signature = sign_body(body=body, secret=django_settings.INSTAGRAM_APP_SECRET)
    return client.post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature, **extra
    )


def test_a_delivery_is_queued_without_sessions_or_csrf(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["instabot.example.com"]
    client = Client(HTTP_HOST="instabot.example.com", enforce_csrf_checks=True)

    response = post_dm(client, sender="fast-1")
    slash = client.post(WEBHOOK_URL + "/", data=b"{", content_type="application/json")

    assert response.status_code == 200 and response.content == b"EVENT_RECEIVED"
    assert response["Content-Length"] == "14"  # keep-alive connections need it
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")
    assert slash.status_code == 403  # the same view with the slash: unsigned, refused
    assert get_queue(HIGH).count == 1


def test_the_host_check_still_applies(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["instabot.example.com"]

    response = post_dm(Client(HTTP_HOST="evil.example.net"), sender="fast-2")

    assert response.status_code == 400
    assert get_queue(HIGH).count == 0


def test_where_https_is_required_plain_http_is_redirected_and_https_accepted(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["instabot.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="instabot.example.com")

    plain = post_dm(client, sender="fast-3")
    secure = post_dm(client, sender="fast-4", secure=True)

    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    assert secure.status_code == 200
    assert get_queue(HIGH).count == 1
