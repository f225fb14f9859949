"""Tokens encrypted at rest (INSTABOT_ENCRYPTION_KEY), on the real database of the run."""

from importlib import import_module
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from automations.cache import workspace_key
from automations.models import Workspace
from automations.selectors import workspace_get_active_by_instagram_id
from instabot.encryption import DecryptionError, decrypt_text, encrypt_text
from instabot.settings import encryption_keys
from tests.conftest import ACCOUNT_ID, TOKEN
from tests.support.raw_tokens import store_access_token_raw, stored_access_token

KEY_OLD = Fernet.generate_key().decode()
KEY_NEW = Fernet.generate_key().decode()


def test_the_database_holds_only_ciphertext_and_the_model_the_token(workspace: Workspace) -> None:
    stored = stored_access_token(workspace.pk)

    assert stored.startswith("fernet:")
    assert TOKEN not in stored
    assert Workspace.objects.get(pk=workspace.pk).access_token == TOKEN
    assert Workspace.objects.values_list("access_token", flat=True).get(pk=workspace.pk) == TOKEN


def test_the_same_token_is_stored_differently_each_time(workspace: Workspace) -> None:
    first = stored_access_token(workspace.pk)
    workspace.save()

    assert stored_access_token(workspace.pk) != first
    assert Workspace.objects.get(pk=workspace.pk).access_token == TOKEN


def test_the_worker_cache_holds_the_usable_token_decrypted_at_fill(workspace: Workspace) -> None:
    data = workspace_get_active_by_instagram_id(instagram_account_id=ACCOUNT_ID)

    assert data is not None and data.access_token == TOKEN and data.token_refused is False
    _generation, cached = cache.get(workspace_key(instagram_account_id=ACCOUNT_ID))
    assert cached["access_token"] == TOKEN
    assert set(cached) == {"id", "name", "instagram_account_id", "access_token", "token_refused"}
    assert TOKEN not in repr(data)


def test_a_rotated_key_still_decrypts_and_reencrypt_moves_every_token_to_the_newest(db: None, settings: Any) -> None:
    settings.INSTABOT_ENCRYPTION_KEYS = [KEY_OLD]
    first = Workspace.objects.create(name="A", instagram_account_id="1", access_token="token-a")
    second = Workspace.objects.create(name="B", instagram_account_id="2", access_token="token-b")

    settings.INSTABOT_ENCRYPTION_KEYS = [KEY_NEW, KEY_OLD]  # the new key in front
    assert Workspace.objects.get(pk=first.pk).access_token == "token-a"
    call_command("reencrypt_tokens")

    settings.INSTABOT_ENCRYPTION_KEYS = [KEY_NEW]  # the old key dropped
    assert sorted(Workspace.objects.values_list("access_token", flat=True)) == ["token-a", "token-b"]
    settings.INSTABOT_ENCRYPTION_KEYS = [KEY_OLD]
    with pytest.raises(DecryptionError) as raised:
        Workspace.objects.get(pk=second.pk)
    assert "token-b" not in str(raised.value)
    assert stored_access_token(second.pk) not in str(raised.value)


def test_reencrypt_names_tokens_no_key_decrypts_and_fails(db: None, settings: Any) -> None:
    settings.INSTABOT_ENCRYPTION_KEYS = [KEY_OLD]
    lost = Workspace.objects.create(name="Lost", instagram_account_id="1", access_token="token-lost")
    kept = Workspace.objects.create(name="Kept", instagram_account_id="2", access_token="token-kept")
    settings.INSTABOT_ENCRYPTION_KEYS = [KEY_NEW]
    store_access_token_raw(kept.pk, encrypt_text("token-kept"))

    with pytest.raises(CommandError) as raised:
        call_command("reencrypt_tokens")

    assert str(lost.pk) in str(raised.value) and "re-encrypted 1 token(s)" in str(raised.value)
    assert "token-lost" not in str(raised.value)


def test_a_token_stored_in_plain_text_is_read_and_then_encrypted(workspace: Workspace) -> None:
    # A row from before encryption, or written by another service without Django.
    store_access_token_raw(workspace.pk, "legacy-plain-token")
    assert Workspace.objects.get(pk=workspace.pk).access_token == "legacy-plain-token"

    call_command("reencrypt_tokens")

    assert stored_access_token(workspace.pk).startswith("fernet:")
    assert Workspace.objects.get(pk=workspace.pk).access_token == "legacy-plain-token"


def test_the_migration_encrypts_existing_tokens_and_its_reverse_restores_plain_text(workspace: Workspace) -> None:
    name = "mongo_migrations.automations.0003" if connection.vendor == "mongodb" else "automations.migrations.0004"
    migration = import_module(f"{name}_accounts_tokens")
    store_access_token_raw(workspace.pk, "legacy-plain-token")

    migration.encrypt_tokens(apps, None)
    assert stored_access_token(workspace.pk).startswith("fernet:")
    assert Workspace.objects.get(pk=workspace.pk).access_token == "legacy-plain-token"

    migration.decrypt_tokens(apps, None)
    assert stored_access_token(workspace.pk) == "legacy-plain-token"


def test_production_refuses_to_start_without_a_key_and_never_echoes_a_bad_one() -> None:
    with pytest.raises(ImproperlyConfigured, match="INSTABOT_ENCRYPTION_KEY"):
        encryption_keys(None, debug=False, secret_key="s")
    with pytest.raises(ImproperlyConfigured) as raised:
        encryption_keys(f"{KEY_NEW}, not-a-key-but-a-secret", debug=False, secret_key="s")
    assert "key 2" in str(raised.value) and "not-a-key-but-a-secret" not in str(raised.value)
    assert encryption_keys(f" {KEY_NEW} ,{KEY_OLD}", debug=False, secret_key="s") == [KEY_NEW, KEY_OLD]


def test_development_derives_a_stable_throwaway_key_from_the_secret_key(settings: Any) -> None:
    derived = encryption_keys("", debug=True, secret_key="dev-secret")
    assert derived == encryption_keys(None, debug=True, secret_key="dev-secret")
    assert derived != encryption_keys(None, debug=True, secret_key="other-secret")
    settings.INSTABOT_ENCRYPTION_KEYS = derived
    assert decrypt_text(encrypt_text("t")) == "t"
