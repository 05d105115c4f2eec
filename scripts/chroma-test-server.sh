#!/usr/bin/env bash
# A throwaway Chroma server for the tests: `chroma run` from chromadb==1.5.9
# installed with pip into a venv (LOBSTER_CHROMA_VENV, default .cache/chroma-venv
# in the repository, which git ignores).
#
#   scripts/chroma-test-server.sh start    install if needed, start, wait for the
#                                          heartbeat, print `export LOBSTER_CHROMA_URL=...`
#   scripts/chroma-test-server.sh stop     stop the server this script started
#   scripts/chroma-test-server.sh restart  stop, then start on the same port and data
#   scripts/chroma-test-server.sh purge    stop and delete the data and state
#   scripts/chroma-test-server.sh python   print the venv's python (has `import chromadb`)
#
# State (pid, port, data, log) lives in LOBSTER_CHROMA_STATE (default
# ${TMPDIR:-/tmp}/lobster-chroma-test-$UID); several servers can run side by side
# with different state directories. `stop` only signals the process group this
# script started, recorded in the state directory.
set -euo pipefail

CHROMA_VERSION=1.5.9
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${LOBSTER_CHROMA_VENV:-$repo/.cache/chroma-venv}"
state="${LOBSTER_CHROMA_STATE:-${TMPDIR:-/tmp}/lobster-chroma-test-$(id -u)}"
log() { echo "chroma-test-server: $*" >&2; }

installed_version() {
    [ -x "$venv/bin/python" ] || return 0
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("chromadb"))' 2>/dev/null || true
}

install() {
    if [ "$(installed_version)" = "$CHROMA_VERSION" ] && [ -x "$venv/bin/chroma" ]; then
        return
    fi
    log "installing chromadb==$CHROMA_VERSION into $venv"
    local t0=$SECONDS
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "chromadb==$CHROMA_VERSION" >&2
    log "installed in $((SECONDS - t0)) s"
}

running() {
    [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_heartbeat() {
    local url=$1 pid=$2
    for _ in $(seq 1 240); do
        if python3 - "$url/api/v2/heartbeat" <<'EOF' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
EOF
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the server exited; its log:"
            tail -n 30 "$state/log" >&2 || true
            return 1
        fi
        sleep 0.25
    done
    log "no heartbeat from $url within 60 s; its log:"
    tail -n 30 "$state/log" >&2 || true
    return 1
}

start() {
    install
    mkdir -p "$state"
    if running; then
        echo "export LOBSTER_CHROMA_URL=$(cat "$state/url")"
        return
    fi
    local port
    port="${LOBSTER_CHROMA_PORT:-$(cat "$state/port" 2>/dev/null || free_port)}"
    local url="http://127.0.0.1:$port"
    mkdir -p "$state/data"
    # Its own session and process group, so `stop` can signal exactly what started here.
    setsid "$venv/bin/chroma" run --path "$state/data" --host 127.0.0.1 --port "$port" \
        >>"$state/log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$state/pid"
    echo "$port" >"$state/port"
    echo "$url" >"$state/url"
    if ! wait_heartbeat "$url" "$pid"; then
        stop
        return 1
    fi
    log "chroma $CHROMA_VERSION at $url (pid $pid, data $state/data)"
    echo "export LOBSTER_CHROMA_URL=$url"
}

stop() {
    [ -f "$state/pid" ] || return 0
    local pid
    pid="$(cat "$state/pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$state/pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    purge) stop; rm -rf "$state" ;;
    install) install ;;
    python) install; echo "$venv/bin/python" ;;
    *)
        echo "usage: $0 start|stop|restart|purge|install|python" >&2
        exit 2
        ;;
esac
