"""Instabot settings: every value comes from an environment variable, read here and only here.

`.env.example` documents each variable. With DJANGO_DEBUG false (production) the secrets have no
defaults and the process refuses to start without them.
"""

import base64
import binascii
import hashlib
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from instabot.environment import env
from instabot.redis_config import RedisTarget, cache_config, parse_sentinels, rq_queue_config, validate_target

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = env.bool("DJANGO_DEBUG", default=False)
REDIS_ENABLED = env.bool("REDIS_ENABLED", default=True)

# Development gets throwaway defaults; production must bring its own secrets and say where its database
# and Redis are. Every missing one is named on one line and the process does not start: no traceback
# to read through in a platform's log, and exit status 3, which gunicorn's master takes as "worker failed
# to boot" and stops instead of booting workers again forever.
_REQUIRED_IN_PRODUCTION = [
    "DJANGO_SECRET_KEY",
    "INSTAGRAM_APP_SECRET",
    "INSTAGRAM_VERIFY_TOKEN",
    "INSTABOT_ENCRYPTION_KEY",
    "DATABASE_URL",
]
if REDIS_ENABLED:
    # Under Sentinel the sentinels say where Redis is (REDIS_URL then only gives its database and password).
    _REQUIRED_IN_PRODUCTION.append("REDIS_SENTINEL_MASTER" if env.str("REDIS_SENTINELS", default="") else "REDIS_URL")
_missing = [name for name in _REQUIRED_IN_PRODUCTION if not env.str(name, default="")]
if _missing and not DEBUG:
    sys.stderr.write(
        f"Instabot will not start: set {', '.join(_missing)} (required when DJANGO_DEBUG=false; see .env.example).\n"
    )
    raise SystemExit(3)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-development-only")
INSTAGRAM_APP_SECRET = env.str("INSTAGRAM_APP_SECRET", default="dev-app-secret")
INSTAGRAM_VERIFY_TOKEN = env.str("INSTAGRAM_VERIFY_TOKEN", default="dev-verify-token")
# Optional second secret: apps on Facebook Login sign with the Meta app secret instead.
META_APP_SECRET = env.str("META_APP_SECRET", default="")


def encryption_keys(value: str | None, *, debug: bool, secret_key: str) -> list[str]:
    """INSTABOT_ENCRYPTION_KEY as a list of Fernet keys, newest first (older ones only decrypt).

    Development without one gets a throwaway key derived from the secret key; production must bring its own.
    """
    if not value or not value.strip():
        if not debug:
            raise ImproperlyConfigured(
                "Set the INSTABOT_ENCRYPTION_KEY environment variable (access tokens are encrypted with it); make "
                "one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
        digest = hashlib.sha256(f"instabot-development-encryption-key:{secret_key}".encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]
    keys = [item.strip() for item in value.split(",") if item.strip()]
    for position, item in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(item.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            # The key itself is a secret: say which one, never what it is.
            raise ImproperlyConfigured(
                f"INSTABOT_ENCRYPTION_KEY: key {position} is not a Fernet key (32 url-safe base64-encoded bytes)."
            )
    return keys


# Access tokens are encrypted at rest with the first key; the others still decrypt (key rotation).
INSTABOT_ENCRYPTION_KEYS = encryption_keys(
    env.str("INSTABOT_ENCRYPTION_KEY", default=""), debug=DEBUG, secret_key=SECRET_KEY
)

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Database: SQLite, PostgreSQL or MongoDB, all of Instabot's tables in the one DATABASE_URL ---
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASE_IS_MONGODB = DATABASE_URL.startswith(("mongodb://", "mongodb+srv://"))

# Instabot's own apps, each "<label>.apps.<Config>". Each has its SQL migrations in <label>/migrations
# and its MongoDB migrations in the package mongo_migrations/<label> (see MIGRATION_MODULES below and
# the README's recipe for adding a model).
INSTABOT_APPS = [
    "automations.apps.AutomationsConfig",
    "instagram.apps.InstagramConfig",
    "webhooks.apps.WebhooksConfig",
    "queueing.apps.QueueingConfig",
]
# Third-party apps whose models pin AutoField, by app label: on MongoDB they need ObjectIdAutoField
# instead, through the AppConfigs in instabot/mongo_apps.py and the migrations in mongo_migrations/<label>.
_APPS_WITH_AUTOFIELD = {
    "django.contrib.admin": ("admin", "instabot.mongo_apps.MongoAdminConfig"),
    "django.contrib.auth": ("auth", "instabot.mongo_apps.MongoAuthConfig"),
    "django.contrib.contenttypes": ("contenttypes", "instabot.mongo_apps.MongoContentTypesConfig"),
    "django_rq": ("django_rq", "instabot.mongo_apps.MongoDjangoRqConfig"),
}
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_rq",
    *INSTABOT_APPS,
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before the Host check and the HTTPS redirect.
    "instabot.middleware.OperationsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from the app server itself: nothing else to deploy.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "instabot.urls"
WSGI_APPLICATION = "instabot.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if DATABASE_IS_MONGODB:
    # django-mongodb-backend: the connection string goes in HOST as it is; the database is the URI's
    # path (mongodb://host/instabot), "instabot" when the URI names none.
    DATABASES: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django_mongodb_backend",
            "HOST": DATABASE_URL,
            "NAME": urlsplit(DATABASE_URL).path.strip("/") or "instabot",
        }
    }
    DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
    INSTALLED_APPS = [_APPS_WITH_AUTOFIELD[app][1] if app in _APPS_WITH_AUTOFIELD else app for app in INSTALLED_APPS]
    _mongo_labels = [label for label, _ in _APPS_WITH_AUTOFIELD.values()] + [app.split(".")[0] for app in INSTABOT_APPS]
    MIGRATION_MODULES = {label: f"mongo_migrations.{label}" for label in _mongo_labels}
else:
    DATABASES = {"default": dict(dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True))}
    DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Redis, queues and cache -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Redis Sentinel (high availability): the sentinels' host:port list and the name of the master they watch.
# Every process then asks them where the master is, and follows a failover without a restart.
try:
    REDIS_SENTINELS = list(parse_sentinels(env.str("REDIS_SENTINELS", default="")))
except ValueError as exc:
    raise ImproperlyConfigured(f"REDIS_SENTINELS must be host:port,host:port,...: {exc}.") from None
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="")
# The sentinels' own password (`requirepass` in sentinel.conf); the data nodes' is REDIS_URL's.
REDIS_SENTINEL_PASSWORD = env.str("REDIS_SENTINEL_PASSWORD", default="")
_redis_target = RedisTarget(
    url=REDIS_URL,
    sentinels=tuple(REDIS_SENTINELS),
    master_name=REDIS_SENTINEL_MASTER,
    sentinel_password=REDIS_SENTINEL_PASSWORD,
)
try:
    validate_target(_redis_target)
except ValueError as exc:
    raise ImproperlyConfigured(f"{exc}.") from None
# false means webhooks are processed inline in the web process, without Redis (as in the seed).
USE_QUEUE_SYSTEM = env.bool("USE_QUEUE_SYSTEM", default=True)
REDIS_SOCKET_CONNECT_TIMEOUT = env.float("REDIS_SOCKET_CONNECT_TIMEOUT", default=0.5)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)
# With 1 or more, intake answers 200 only once this many replicas have the queued jobs (Redis WAIT), or
# the database fallback store took them; workers send only once their delivery-ledger claim is on that
# many replicas. A failover right after a 200 or a send then loses nothing and doubles nothing.
REDIS_MIN_REPLICAS_ACK = env.int("REDIS_MIN_REPLICAS_ACK", default=0)
# How long one WAIT for the replicas may take before the write counts as not replicated (seconds).
REDIS_REPLICAS_ACK_TIMEOUT_SECONDS = env.float("REDIS_REPLICAS_ACK_TIMEOUT_SECONDS", default=0.5)
if REDIS_MIN_REPLICAS_ACK < 0:
    raise ImproperlyConfigured("REDIS_MIN_REPLICAS_ACK must be 0 or more.")
if not 0 < REDIS_REPLICAS_ACK_TIMEOUT_SECONDS < REDIS_SOCKET_TIMEOUT:
    raise ImproperlyConfigured("REDIS_REPLICAS_ACK_TIMEOUT_SECONDS must be above 0 and below REDIS_SOCKET_TIMEOUT.")
# Every Redis key Instabot writes itself (cache, counters) starts with this.
INSTABOT_KEY_PREFIX = env.str("INSTABOT_KEY_PREFIX", default="instabot")
# Jobs a worker keeps in flight at once (the seed's CONCURRENCY).
CONCURRENCY = env.int("CONCURRENCY", default=200)
JOB_TIMEOUT = env.int("JOB_TIMEOUT", default=60)
# After a Redis failure the web process stops trying Redis for this long and writes webhooks to the
# database fallback store straight away, so an outage does not cost every request a timeout.
REDIS_CIRCUIT_OPEN_SECONDS = env.float("REDIS_CIRCUIT_OPEN_SECONDS", default=5.0)
# How often a worker looks for jobs abandoned by a killed worker (RQ's default is 600 s), and how
# long past its last heartbeat a running job counts as abandoned (RQ's fixed 60 s).
WORKER_MAINTENANCE_INTERVAL_SECONDS = env.int("WORKER_MAINTENANCE_INTERVAL_SECONDS", default=60)
WORKER_HEARTBEAT_GRACE_SECONDS = env.int("WORKER_HEARTBEAT_GRACE_SECONDS", default=60)
# Threads of a worker process for synchronous work: database reads on a cache miss, follow-up
# questions, plain (non-Instabot) job functions. Bounds the database connections of one worker.
WORKER_SYNC_THREADS = env.int("WORKER_SYNC_THREADS", default=8)
# Redis connections of a worker's event loop (commands are short; jobs share them).
WORKER_REDIS_CONNECTIONS = env.int("WORKER_REDIS_CONNECTIONS", default=16)
# How often a running worker moves fallback events back into the queues.
FALLBACK_RELAY_INTERVAL_SECONDS = env.float("FALLBACK_RELAY_INTERVAL_SECONDS", default=5.0)

# --- Delivery: retries, dead letters, exactly-once, send limits -----------------------------------
# Attempts per event for transient Graph errors (timeouts, 5xx, codes 1 and 2), then the dead letters.
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=6)
# Exponential backoff between attempts: base * 2**n seconds, capped, with up to 50 % random jitter.
DELIVERY_BACKOFF_BASE_SECONDS = env.float("DELIVERY_BACKOFF_BASE_SECONDS", default=2.0)
DELIVERY_BACKOFF_MAX_SECONDS = env.float("DELIVERY_BACKOFF_MAX_SECONDS", default=600.0)
# How long "this event was answered" is remembered: longer than Meta's 36 hours of redeliveries.
DELIVERY_LEDGER_TTL_SECONDS = env.int("DELIVERY_LEDGER_TTL_SECONDS", default=7 * 24 * 3600)
# A send claimed longer ago than this by a worker that never finished it is "uncertain", not retried.
DELIVERY_LEASE_SECONDS = env.float("DELIVERY_LEASE_SECONDS", default=30.0)
# Per Instagram account, across all workers (Meta's documented limits).
SEND_LIMIT_PER_SECOND = env.int("SEND_LIMIT_PER_SECOND", default=100)
PRIVATE_REPLY_LIMIT_PER_HOUR = env.int("PRIVATE_REPLY_LIMIT_PER_HOUR", default=750)
# Pause for an account that Meta throttles without saying for how long.
THROTTLE_DEFAULT_PAUSE_SECONDS = env.float("THROTTLE_DEFAULT_PAUSE_SECONDS", default=60.0)

_redis_queue = rq_queue_config(
    _redis_target,
    default_timeout=JOB_TIMEOUT,
    socket_connect_timeout=REDIS_SOCKET_CONNECT_TIMEOUT,
    socket_timeout=REDIS_SOCKET_TIMEOUT,
)
RQ_QUEUES = {"high": _redis_queue, "default": _redis_queue, "low": _redis_queue}
# InstabotWorker (a ConcurrentWorker) keeps CONCURRENCY jobs in flight per process; "rq.worker.SimpleWorker" or
# "rq.worker.Worker" run one job at a time.
RQ = {"WORKER_CLASS": env.str("RQ_WORKER_CLASS", default="queueing.workers.InstabotWorker")}
# After SIGTERM a worker takes no new jobs and waits this long for those in flight (below the
# platform's kill timeout: Heroku 30 s, the compose file's stop_grace_period 30 s).
WORKER_STOP_GRACE_SECONDS = env.float("WORKER_STOP_GRACE_SECONDS", default=25.0)

CACHES = {
    "default": cache_config(
        _redis_target,
        key_prefix=f"{INSTABOT_KEY_PREFIX}:cache",
        socket_connect_timeout=REDIS_SOCKET_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
    )
}
if not REDIS_ENABLED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Seconds each cached dataset lives (automations/cache.py); edits invalidate sooner.
CACHE_WORKSPACE_TTL = env.int("CACHE_WORKSPACE_TTL", default=3600)
CACHE_AUTOMATION_TTL = env.int("CACHE_AUTOMATION_TTL", default=3600)
# How long a follow-up question waits for the user's answer.
CACHE_USER_STATE_TTL = env.int("CACHE_USER_STATE_TTL", default=600)
# A cold key is filled by one process; the others wait at most this long for it (seconds).
CACHE_FILL_LOCK_TIMEOUT = env.float("CACHE_FILL_LOCK_TIMEOUT", default=5.0)
# `manage.py cache_sync`: dotted path of the change feed; empty picks one by the database in use.
CACHE_SYNC_FEED = env.str("CACHE_SYNC_FEED", default="")
# Seconds between two looks at the database by the polling feed.
CACHE_SYNC_POLL_INTERVAL = env.float("CACHE_SYNC_POLL_INTERVAL", default=1.0)
# Seconds before the first reconnect attempt of a feed that lost its connection (doubles up to 30).
CACHE_SYNC_RECONNECT_DELAY = env.float("CACHE_SYNC_RECONNECT_DELAY", default=1.0)

# --- Activity log, misses and per-automation counts ------------------------------------------------
# false stops recording sends and misses (the admin's log, misses and fired counts then stay as they are).
ACTIVITY_LOG_ENABLED = env.bool("ACTIVITY_LOG_ENABLED", default=True)
# Each process writes what it recorded to Redis this often (seconds): what a killed process may lose.
ACTIVITY_FLUSH_INTERVAL_SECONDS = env.float("ACTIVITY_FLUSH_INTERVAL_SECONDS", default=1.0)
# Activity and miss rows older than this are deleted once a day by the workers (fired counts stay).
ACTIVITY_RETENTION_DAYS = env.int("ACTIVITY_RETENTION_DAYS", default=30)
if ACTIVITY_FLUSH_INTERVAL_SECONDS <= 0:
    raise ImproperlyConfigured("ACTIVITY_FLUSH_INTERVAL_SECONDS must be above 0.")
if ACTIVITY_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("ACTIVITY_RETENTION_DAYS must be at least 1.")

# --- Instagram Graph API -----------------------------------------------------------------------
GRAPH_API_BASE_URL = env.str("GRAPH_API_BASE_URL", default="https://graph.instagram.com").rstrip("/")
GRAPH_API_VERSION = env.str("GRAPH_API_VERSION", default="v21.0")
GRAPH_API_CONNECT_TIMEOUT = env.float("GRAPH_API_CONNECT_TIMEOUT", default=3.05)
GRAPH_API_READ_TIMEOUT = env.float("GRAPH_API_READ_TIMEOUT", default=10.0)
# An outbound proxy for Graph API calls (http://host:port), if the network needs one. HTTP(S)_PROXY
# are not read: looking them up on every request is too costly at thousands of calls a second.
GRAPH_API_PROXY = env.str("GRAPH_API_PROXY", default="")
# Idle keep-alive connections to the Graph API are closed after this many seconds, well before the
# server would close them (a request written on a connection the server is closing may be lost).
GRAPH_API_KEEPALIVE_SECONDS = env.float("GRAPH_API_KEEPALIVE_SECONDS", default=15.0)

# --- Connecting Instagram accounts (Business Login for Instagram), instagram/ -------------------------
# The Instagram app id of the Meta app (App Dashboard > Instagram > API setup with Instagram login);
# its secret is INSTAGRAM_APP_SECRET. Empty: the admin's "Connect" button explains what to set.
INSTAGRAM_APP_ID = env.str("INSTAGRAM_APP_ID", default="")
# Where Instagram sends the browser back; must be listed as an OAuth redirect URI of the app.
# Empty: built from the request (http://<host>/connect/instagram/callback/), enough for development.
INSTAGRAM_REDIRECT_URI = env.str("INSTAGRAM_REDIRECT_URI", default="")
# Host of the authorization window (/oauth/authorize) and of the code exchange (/oauth/access_token).
INSTAGRAM_OAUTH_BASE_URL = env.str("INSTAGRAM_OAUTH_BASE_URL", default="https://api.instagram.com").rstrip("/")

# --- Webhook intake ----------------------------------------------------------------------------
# Meta batches up to 1000 updates in one delivery; 8 MiB leaves room for that and more.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=8 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # JSON for programs; the browsable API for a browser (staff, logged in through the admin or
    # /api/v1/auth/login/; everyone else gets its 401 or 403 page).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# OpenAPI 3 at /api/v1/schema/, Swagger UI at /api/v1/docs/ (drf-spectacular).
SPECTACULAR_SETTINGS = {
    "TITLE": "Instabot API",
    "DESCRIPTION": "Workspaces, automations and leads of Instabot. Staff only: send `Authorization: Token <key>` "
    "(`manage.py drf_create_token <user>`) or use an admin session.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Operations: /healthz, /readyz, /metrics ------------------------------------------------------
# With a token set, /metrics requires `Authorization: Bearer <token>`; empty leaves it open (keep it
# on a private network then).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# How long /readyz waits for the database and Redis before it answers 503 (seconds).
READINESS_TIMEOUT_SECONDS = env.float("READINESS_TIMEOUT_SECONDS", default=2.0)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# plain: one readable line per record; json: one JSON object per line (instabot.log_format).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "instabot.log_format.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("instabot", "webhooks", "automations", "queueing", "rq.worker")
    },
}

# --- HTTPS, on by default in production (Meta calls webhooks over HTTPS only) -------------------------
# /healthz, /readyz and /metrics are answered before the redirect (instabot.middleware).
if not DEBUG:
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto (Coolify, Heroku, nginx, a load balancer).
    if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
