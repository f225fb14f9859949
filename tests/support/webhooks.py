"""The one helper every webhook test goes through: sign a fixture exactly as Meta does and POST it."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client

from webhooks.signatures import sign_body

FIXTURES = Path(__file__).resolve().parent.parent / "webhooks" / "fixtures"
WEBHOOK_URL = "/api/webhooks/instagram"


def fixture_bytes(name: str) -> bytes:
    """A fixture's raw bytes (`<event>__<variant>`), re-encoded compactly as Meta sends them."""
    payload = json.loads((FIXTURES / f"{name}.json").read_bytes())
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def post_webhook(
    client: Client,
    body: bytes | dict[str, Any] | str,
    *,
    secret: str | None = None,
    signature: str | None = None,
    url: str = WEBHOOK_URL,
) -> Any:
    if isinstance(body, str):
        body = fixture_bytes(body)
    elif isinstance(body, dict):
        body = json.dumps(body, separators=(",", ":")).encode()
    headers = {}
    if signature is None:
        signature = sign_body(body=body, secret=secret or settings.INSTAGRAM_APP_SECRET)
    if signature:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(url, data=body, content_type="application/json", **headers)
