"""Test settings: the production settings module, fed a test environment.

Tests get their own Redis database (13 unless TEST_REDIS_URL says otherwise) and key prefix,
and `DATABASE_URL` picks SQLite (default) or PostgreSQL, as in production.
"""

import os

os.environ.update(
    {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "test-secret-key",
        "INSTAGRAM_APP_SECRET": "test-app-secret",
        "INSTAGRAM_VERIFY_TOKEN": "test-verify-token",
        "META_APP_SECRET": "test-meta-app-secret",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "INSTABOT_KEY_PREFIX": "instabot-test",
        "DJANGO_SECURE_COOKIES": "false",
        # Tests (and the processes they start) speak plain HTTP to the web server.
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        # A fixed test key (never a production one): access tokens are encrypted at rest with it.
        "INSTABOT_ENCRYPTION_KEY": "bNCyNEtbhNlR8Xoe9RWKpLkoBXosEB-jP4LG9q5WY1g=",
        "INSTAGRAM_APP_ID": "990602627938098",
    }
)
# A file name, never ":memory:": Django's live server shares an in-memory database's one connection with
# all its request threads, and the browser's parallel requests then use it at once (sqlite3 segfaults).
# The tests themselves use TEST["NAME"] below; this file is never created.
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{os.path.join(os.path.dirname(__file__), '..', 'var', 'unused.sqlite3')}"
)
# Worker tests start `rqworker` processes with their own CONCURRENCY.
os.environ.setdefault("CONCURRENCY", "20")
# Nothing listens on port 9: a test that forgets the fake Graph API fails instead of calling Meta.
os.environ.setdefault("GRAPH_API_BASE_URL", "http://127.0.0.1:9")

from instabot.settings import *  # noqa: E402,F403
from instabot.settings import BASE_DIR, DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}

# Threads of the live server must not keep connections open past a test (PostgreSQL cannot drop the
# test database while they do).
DATABASES["default"]["CONN_MAX_AGE"] = 0
