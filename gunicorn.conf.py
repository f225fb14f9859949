"""gunicorn settings for Instabot's web process (`gunicorn instabot.wsgi`, read from this file).

Defaults fit 2 cores: 2 worker processes with 8 threads each. The webhook view only verifies,
parses and pipelines into Redis, so a few threads per process keep both cores busy.
"""

from instabot.environment import env

bind = env.str("GUNICORN_BIND", default=f"0.0.0.0:{env.int('PORT', default=8000)}")
workers = env.int("WEB_CONCURRENCY", default=2)
threads = env.int("GUNICORN_THREADS", default=8)
worker_class = "gthread"
# Meta gives up on a webhook after a few seconds; never hold one longer than that.
timeout = env.int("GUNICORN_TIMEOUT", default=30)
graceful_timeout = 20
keepalive = 75
max_requests = 0
accesslog = env.str("GUNICORN_ACCESS_LOG", default="") or None
errorlog = "-"
loglevel = env.str("GUNICORN_LOG_LEVEL", default="info")
