#!/usr/bin/env bash
# makemigrations for every supported database, from the one set of models:
#   SQL (SQLite and PostgreSQL share them): <app>/migrations/
#   MongoDB (ObjectId primary keys):        mongo_migrations/<app label>/
#   bash scripts/makemigrations.sh [makemigrations arguments]     e.g. automations, or --check --dry-run
# The MongoDB half runs against a private secantusd, started and stopped here.
set -o errexit -o nounset -o pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv dev
trap stop_secantusd EXIT
echo "== migrations for SQL (SQLite, PostgreSQL)"
DJANGO_DEBUG=true DATABASE_URL="sqlite:///:memory:" "$PY" manage.py makemigrations "$@"
start_secantusd
echo "== migrations for MongoDB"
DJANGO_DEBUG=true DATABASE_URL="$SECANTUSD_URL" "$PY" manage.py makemigrations "$@"
