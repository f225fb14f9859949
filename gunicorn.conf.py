"""gunicorn settings for Instabot's web process (`gunicorn instabot.wsgi`, read from this file).

Defaults fit 2 cores: 2 worker processes with 8 threads each. The webhook view only verifies,
parses and pipelines into Redis, so a few threads per process keep both cores busy.
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
# Meta gives up on a webhook after a few seconds; never hold one longer than that.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 75
max_requests = 0
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
