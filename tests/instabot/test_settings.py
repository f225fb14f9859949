"""Production settings refuse to start wrong, and are HTTPS-ready by default."""

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.support.processes import ROOT

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "instabot.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "k3y-" + "x7Qp9vL2mZ8rT4wY6nB1cF5hJ0dG3sK" * 2,
    "INSTAGRAM_APP_SECRET": "app-secret-for-settings-test",
    "INSTAGRAM_VERIFY_TOKEN": "verify-token-for-settings-test",
    "INSTABOT_ENCRYPTION_KEY": "bNCyNEtbhNlR8Xoe9RWKpLkoBXosEB-jP4LG9q5WY1g=",
    "DATABASE_URL": "sqlite:///:memory:",
    "REDIS_URL": "redis://127.0.0.1:6379/10",
    "DJANGO_ALLOWED_HOSTS": "instabot.example.com",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only what is given: not the test run's own environment, which holds every variable.
    base = {"PATH": os.environ["PATH"], "HOME": str(ROOT / "var")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "missing",
    [
        "DJANGO_SECRET_KEY",
        "INSTAGRAM_APP_SECRET",
        "INSTAGRAM_VERIFY_TOKEN",
        "INSTABOT_ENCRYPTION_KEY",
        "DATABASE_URL",
        "REDIS_URL",
    ],
)
def test_production_refuses_to_start_without_a_required_variable_in_one_line(missing: str) -> None:
    env = {name: value for name, value in PRODUCTION_ENV.items() if name != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Instabot will not start: set ") and missing in lines[0]
    assert "app-secret-for-settings-test" not in result.stderr


def test_every_missing_variable_is_named_at_once_and_a_blank_one_counts_as_missing() -> None:
    result = manage("check", env={"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "  "})
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "Instabot will not start: set DJANGO_SECRET_KEY, INSTAGRAM_APP_SECRET, INSTAGRAM_VERIFY_TOKEN, "
        "INSTABOT_ENCRYPTION_KEY, DATABASE_URL, REDIS_URL (required when DJANGO_DEBUG=false; see .env.example)."
    )


def test_redis_url_is_not_required_without_redis_and_debug_needs_nothing() -> None:
    without_redis = {name: value for name, value in PRODUCTION_ENV.items() if name != "REDIS_URL"}
    assert manage("check", env={**without_redis, "REDIS_ENABLED": "false"}).returncode == 0
    development = manage("check", env={"DJANGO_DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"})
    assert development.returncode == 0, development.stderr


def test_a_bad_number_stops_start_up_naming_the_variable() -> None:
    result = manage("check", env={**PRODUCTION_ENV, "CONCURRENCY": "lots"})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith("CONCURRENCY must be an integer, not 'lots'.")
    assert "app-secret-for-settings-test" not in result.stderr


def test_blank_variables_take_their_defaults_and_secrets_are_read_as_written() -> None:
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; print(s.CONCURRENCY, s.SECRET_KEY, s.ALLOWED_HOSTS)",
        env={**PRODUCTION_ENV, "CONCURRENCY": "", "DJANGO_SECRET_KEY": "$HOME-k3y", "DJANGO_ALLOWED_HOSTS": "a, b"},
    )
    assert result.stdout.strip().split(maxsplit=2) == ["200", "$HOME-k3y", "['a', 'b']"], result.stderr


def test_check_deploy_passes_with_the_production_defaults() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_https_settings_are_on_by_default_in_production() -> None:
    # tests.settings is the production module with DJANGO_DEBUG=false (and the redirect off for plain HTTP).
    assert django_settings.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert django_settings.SECURE_HSTS_SECONDS == 365 * 24 * 3600
    assert django_settings.SECURE_HSTS_INCLUDE_SUBDOMAINS and django_settings.SECURE_HSTS_PRELOAD
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE)",
        env=PRODUCTION_ENV,
    )
    assert result.stdout.split() == ["True", "True"], result.stderr


@pytest.mark.django_db
def test_plain_http_is_redirected_but_health_checks_are_not(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/api/v1/").status_code == 301
    assert client.get("/healthz").status_code == 200
    behind_proxy = client.get("/api/v1/", HTTP_X_FORWARDED_PROTO="https")
    assert behind_proxy.status_code == 401  # reached the API: it is HTTPS as the proxy says
    assert behind_proxy["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


SENTINEL_ENV = {
    "REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26379,[::1]:26380",
    "REDIS_SENTINEL_MASTER": "instabot",
    "REDIS_SENTINEL_PASSWORD": "sentinel-secret-for-settings-test",
}


def test_under_sentinel_redis_url_is_not_required_and_queues_and_cache_follow_the_master() -> None:
    without_url = {name: value for name, value in PRODUCTION_ENV.items() if name != "REDIS_URL"}
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "import json; from django.conf import settings as s; "
        "print(json.dumps([s.RQ_QUEUES['high'], s.CACHES['default'], s.REDIS_SENTINELS]))",
        env={**without_url, **SENTINEL_ENV},
    )
    assert result.returncode == 0, result.stderr
    queue, cache, sentinels = json.loads(result.stdout)
    assert sentinels == [["10.0.0.1", 26379], ["10.0.0.2", 26379], ["::1", 26380]]
    assert queue["SENTINELS"] == sentinels and queue["MASTER_NAME"] == "instabot" and queue["DB"] == 0
    assert queue["SENTINEL_KWARGS"]["password"] == "sentinel-secret-for-settings-test"
    assert "URL" not in queue
    assert cache["LOCATION"] == "redis://instabot/0"
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert cache["OPTIONS"]["SENTINELS"] == sentinels


def test_under_sentinel_redis_url_gives_the_database_and_the_data_nodes_password() -> None:
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "import json; from django.conf import settings as s; "
        "print(json.dumps([s.RQ_QUEUES['low'], s.CACHES['default']['LOCATION']]))",
        env={**PRODUCTION_ENV, **SENTINEL_ENV, "REDIS_URL": "redis://:node-pass@ignored:1/4"},
    )
    queue, location = json.loads(result.stdout)
    assert (queue["DB"], queue["PASSWORD"]) == (4, "node-pass")
    assert location == "redis://:node-pass@instabot/4"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDIS_SENTINELS": "10.0.0.1"},
            "REDIS_SENTINELS must be host:port,host:port,...: '10.0.0.1' is not host:port.",
        ),
        ({"REDIS_SENTINEL_MASTER": "MyMaster"}, "REDIS_SENTINEL_MASTER must be lowercase letters"),
        ({"REDIS_MIN_REPLICAS_ACK": "-1"}, "REDIS_MIN_REPLICAS_ACK must be 0 or more."),
        ({"REDIS_REPLICAS_ACK_TIMEOUT_SECONDS": "2"}, "must be above 0 and below REDIS_SOCKET_TIMEOUT."),
    ],
)
def test_a_wrong_sentinel_or_replica_setting_stops_start_up_saying_which(env: dict[str, str], message: str) -> None:
    result = manage("check", env={**PRODUCTION_ENV, **SENTINEL_ENV, **env})
    assert result.returncode != 0
    assert message in result.stderr.strip().splitlines()[-1], result.stderr
    assert "sentinel-secret-for-settings-test" not in result.stderr


def test_sentinels_without_a_master_name_are_refused_in_production() -> None:
    env = {name: value for name, value in {**PRODUCTION_ENV, **SENTINEL_ENV}.items() if name != "REDIS_SENTINEL_MASTER"}
    result = manage("check", env=env)
    assert result.returncode == 3
    assert "set REDIS_SENTINEL_MASTER" in result.stderr
