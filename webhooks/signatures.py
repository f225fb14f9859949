"""Meta's `X-Hub-Signature-256` check: HMAC-SHA256 over the raw body, compared in constant time."""

import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_PREFIX = "sha256="


def sign_body(*, body: bytes, secret: str) -> str:
    """The header value Meta would send for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_is_valid(*, body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    received = header[len(SIGNATURE_PREFIX) :].strip().lower().encode("ascii", "replace")
    valid = False
    # Check every secret, so the time taken does not tell which one matched.
    for secret in secrets:
        if not secret:
            continue
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode()
        valid |= hmac.compare_digest(expected, received)
    return valid
