#!/usr/bin/env bash
# The whole test suite, against SQLite, PostgreSQL and then MongoDB (secantusd, a MongoDB-wire-compatible
# server started here and stopped on exit), with real Redis and headless Chromium.
#   bash scripts/test.sh [pytest arguments]
# Installs what is missing (virtualenv, redis-server, postgresql, chromium) and starts the services.
# TEST_DATABASES=sqlite,postgres,mongodb (the default) picks the runs.
set -o errexit -o nounset -o pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv dev
ensure_system_redis
ensure_system_postgres
ensure_chromium
mkdir -p var

pg_auth="postgres"; [ -n "${PGPASSWORD:-}" ] && pg_auth="postgres:${PGPASSWORD}"
TEST_POSTGRES_URL=${TEST_POSTGRES_URL:-postgres://${pg_auth}@127.0.0.1:5432/test}
TEST_DATABASES=${TEST_DATABASES:-sqlite,postgres,mongodb}
status=0
if [[ ",$TEST_DATABASES," == *,sqlite,* ]]; then
  echo "== tests on SQLite"
  env -u DATABASE_URL "$PY" -m pytest "$@" || status=$?
fi
if [[ ",$TEST_DATABASES," == *,postgres,* ]]; then
  echo "== tests on PostgreSQL"
  DATABASE_URL="$TEST_POSTGRES_URL" "$PY" -m pytest "$@" || status=$?
fi
if [[ ",$TEST_DATABASES," == *,mongodb,* ]]; then
  echo "== tests on MongoDB (secantusd)"
  trap stop_secantusd EXIT
  start_secantusd
  DATABASE_URL="$SECANTUSD_URL" "$PY" -m pytest "$@" || status=$?
  stop_secantusd
fi
exit "$status"
