#!/usr/bin/env bash
# The whole test suite, against SQLite and then PostgreSQL, with real Redis and headless Chromium.
#   bash scripts/test.sh [pytest arguments]
# Installs what is missing (virtualenv, redis-server, postgresql, chromium) and starts the services.
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
status=0
echo "== tests on SQLite"
env -u DATABASE_URL "$PY" -m pytest "$@" || status=$?
echo "== tests on PostgreSQL"
DATABASE_URL="$TEST_POSTGRES_URL" "$PY" -m pytest "$@" || status=$?
exit "$status"
