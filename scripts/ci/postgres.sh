#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL server for the tests and prints its URL on the last line:
#
#   export KIRIS_TEST_DATABASE_URL="$(bash scripts/ci/postgres.sh)"
#
# Installs Debian's `postgresql` package when no server binaries are present (needs root, no stdin).
# The cluster lives in $KIRIS_PG_DIR (default: $TMPDIR/kiris-pg), listens on 127.0.0.1 on a free port
# with trust authentication, and runs as the `postgres` user when invoked as root. A second invocation
# finds the running server and prints the same URL. `bash scripts/ci/postgres.sh stop` stops it.
# Everything but the URL goes to stderr.
set -euo pipefail

dir="${KIRIS_PG_DIR:-${TMPDIR:-/tmp}/kiris-pg}"
database="${KIRIS_PG_DATABASE:-kiris_test}"
user=postgres

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local candidate
  candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$candidate" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
    echo "$candidate"
  fi
}

bin="$(find_bin)"
if [[ -z "$bin" ]]; then
  if [[ "$(id -u)" != 0 ]]; then
    log "PostgreSQL server binaries are missing and installing them needs root"
    exit 1
  fi
  log "installing the postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q </dev/null >&2
  apt-get install -y -q postgresql </dev/null >&2
  bin="$(find_bin)"
  if [[ -z "$bin" ]]; then
    log "postgresql installed but no server binaries found under /usr/lib/postgresql"
    exit 1
  fi
fi

# As root, the server runs as the `postgres` user (initdb refuses root); otherwise as the caller.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

mkdir -p "$dir"
if [[ "$(id -u)" == 0 ]]; then
  chown "$user:" "$dir"
else
  user="$(id -un)"
fi
cd "$dir"

# One invocation at a time: concurrent callers wait and then reuse the server.
exec 9>"$dir/lock"
flock 9

data="$dir/data"
port_file="$dir/port"

running() {
  [[ -f "$port_file" ]] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 &&
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$(cat "$port_file")"
}

if [[ "${1:-}" == stop ]]; then
  if [[ -d "$data" ]]; then
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >&2 || true
  fi
  exit 0
fi

if ! running; then
  if [[ ! -f "$data/PG_VERSION" ]]; then
    rm -rf "$data"
    log "initdb in $data"
    as_owner "$bin/initdb" -D "$data" -U "$user" -A trust -E UTF8 --locale=C.UTF-8 --no-sync >&2 </dev/null
  fi
  port="$(node -e 'const s = require("node:net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')"
  echo "$port" >"$port_file"
  mkdir -p "$dir/run"
  [[ "$(id -u)" == 0 ]] && chown "$user:" "$dir/run"
  log "starting on 127.0.0.1:$port"
  # Throwaway data: durability off, and a socket directory of our own instead of /var/run/postgresql.
  # The server must not inherit the lock (fd 9), or the next invocation would wait forever.
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2 </dev/null 9>&- || {
    log "server failed to start; its log:"
    tail -n 30 "$dir/server.log" >&2 || true
    exit 1
  }
fi

port="$(cat "$port_file")"
exists="$("$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$database'" </dev/null)"
if [[ "$exists" != 1 ]]; then
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$database" </dev/null >&2
fi

echo "postgres://$user@127.0.0.1:$port/$database"
