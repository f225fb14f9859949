"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under INSTABOT_ENCRYPTION_KEY.

`INSTABOT_ENCRYPTION_KEYS` (settings) lists the keys newest first: values are encrypted with the first
and decrypted with whichever matches, so a key is rotated by putting a new one in front, running
`manage.py reencrypt_tokens`, then dropping the old one.

A stored value is `fernet:<token>`. A value without that prefix is plain text written before
encryption existed (or by a service that does not encrypt): it is read as it is, and the next save
or `reencrypt_tokens` encrypts it.
"""

import threading
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "fernet:"

_lock = threading.Lock()
_cipher: tuple[tuple[str, ...], MultiFernet] | None = None


class DecryptionError(Exception):
    """A stored value that no configured key decrypts (a key was dropped too early, or the value is damaged)."""


def _multi_fernet() -> MultiFernet:
    """Built once per key list; rebuilt when the settings change (tests do that)."""
    global _cipher
    keys = tuple(settings.INSTABOT_ENCRYPTION_KEYS)
    current = _cipher
    if current is None or current[0] != keys:
        with _lock:
            current = (keys, MultiFernet([Fernet(k.encode()) for k in keys]))
            _cipher = current
    return current[1]


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def encrypt_text(plain: str) -> str:
    """Encrypted with the newest key; a new random IV each time, so equal texts differ when stored."""
    return PREFIX + _multi_fernet().encrypt(plain.encode()).decode("ascii")


def decrypt_text(stored: str) -> str:
    if not is_encrypted(stored):
        return stored
    try:
        return _multi_fernet().decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        # Never the value itself: it is a secret, or part of one.
        raise DecryptionError(
            "a stored secret cannot be decrypted with any key in INSTABOT_ENCRYPTION_KEY "
            "(was a key removed before `manage.py reencrypt_tokens` ran?)"
        ) from None


class EncryptedTextField(models.TextField):
    """A TextField stored encrypted and read back as plain text.

    Model instances and `.values()` hold the plain text; the database only ever sees `fernet:...`.
    Encryption is randomized, so the field cannot be filtered on (`filter(access_token=...)` finds nothing).
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt_text(str(value))

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt_text(str(value))
