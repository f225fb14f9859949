# Shared by scripts/run.sh, scripts/test.sh and .ci/run: a virtualenv and the services Instabot needs.
# Sourced, not run. Each function leaves alone what is already there and working.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

apt_install() {
  echo "installing $* with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

ensure_venv() {  # ensure_venv base|dev
  local req="$ROOT/requirements/$1.txt" stamp
  [ -x "$PY" ] || python3 -m venv "$VENV"
  stamp="$VENV/.installed-$1-$(cat "$ROOT"/requirements/*.txt | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -r "$req"
    touch "$stamp"
  fi
}

redis_answers() {  # redis_answers URL
  "$PY" -c 'import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()' "$1" >/dev/null 2>&1
}

ensure_system_redis() {  # the machine's Redis on 6379, installed and started if absent
  redis_answers redis://127.0.0.1:6379/0 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/instabot-ci-redis.log
  for _ in $(seq 50); do redis_answers redis://127.0.0.1:6379/0 && return 0; sleep 0.1; done
  echo "Redis did not start" >&2; return 1
}

ensure_system_postgres() {  # PostgreSQL on 127.0.0.1:5432, installed and started if absent
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start" >&2; return 1; }
  # A fresh install asks for passwords over TCP; give the postgres user a known one for the tests.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    export PGPASSWORD=postgres
  fi
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mongo_answers() {  # mongo_answers URL
  "$PY" -c 'import pymongo,sys; pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000).admin.command("ping")' "$1" >/dev/null 2>&1
}

# The tests' MongoDB: secantusd (secantusdb, in requirements/dev.txt), a MongoDB-wire-compatible server,
# private to this shell, in memory, on a free port. Sets SECANTUSD_URL (database "instabot") and
# SECANTUSD_PID; stop_secantusd stops it (call it from an EXIT trap).
start_secantusd() {
  local port log
  port=$(free_port)
  mkdir -p "$ROOT/var"
  log="$ROOT/var/secantusd-$port.log"
  "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: >"$log" 2>&1 &
  SECANTUSD_PID=$!
  SECANTUSD_URL="mongodb://127.0.0.1:$port/instabot"
  for _ in $(seq 60); do
    mongo_answers "$SECANTUSD_URL" && return 0
    kill -0 "$SECANTUSD_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "secantusd did not start; see $log" >&2
  return 1
}

stop_secantusd() {
  if [ -n "${SECANTUSD_PID:-}" ]; then
    kill "$SECANTUSD_PID" 2>/dev/null || true
    wait "$SECANTUSD_PID" 2>/dev/null || true
    SECANTUSD_PID=
  fi
}
