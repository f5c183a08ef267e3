#!/usr/bin/env bash
# Redis for the Celery lane of the local stack (EXECUTOR=celery): Debian's redis-server on
# 127.0.0.1:$SYNC_REDIS_PORT (6379), data in $SYNC_LOCAL_DIR/redis, no Docker, no system service.
#
#   scripts/redis.sh start    start it (installs Debian's redis-server with apt-get when missing and root)
#   scripts/redis.sh stop     shutdown (idempotent)
#   scripts/redis.sh status   exit 0 when it answers PING
#   scripts/redis.sh run      run it in the foreground (scripts/stack.sh runs this under
#                             scripts/supervise.sh, which starts it again when it dies)
#
# Loopback only, no password (like the local PostgreSQL: nothing else can reach it). Persistence:
# appendonly, so a restart keeps the queued task messages.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

REDIS_DIR="$SYNC_LOCAL_DIR/redis"

log() { printf '[redis] %s\n' "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

find_redis() {
    command -v redis-server 2>/dev/null || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; }
}

install_redis() {
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "redis-server not found: installing Debian's redis-server package (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq -o Dpkg::Options::=--force-confold redis-server >&2
        # The package's own service (6379) is not ours; stop it where a service manager runs it.
        if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
        return 0
    fi
    die "redis-server not found. Install it (Debian/Ubuntu: 'sudo apt-get install redis-server';
macOS: 'brew install redis'), then run this again."
}

ping() {
    "$VENV/bin/python" - "$SYNC_REDIS_PORT" <<'PY' >/dev/null 2>&1
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
}

run() {
    local bin
    bin="$(find_redis)" || { install_redis; bin="$(find_redis)"; } || die "redis-server still not found"
    mkdir -p "$REDIS_DIR"
    exec "$bin" --bind 127.0.0.1 --port "$SYNC_REDIS_PORT" --protected-mode yes \
        --dir "$REDIS_DIR" --appendonly yes --save '' --daemonize no --logfile '' \
        --pidfile "$REDIS_DIR/redis.pid"
}

start() {
    find_redis >/dev/null || install_redis
    find_redis >/dev/null || die "redis-server still not found after installing"
}

stop() {
    local pid
    pid="$(cat "$REDIS_DIR/redis.pid" 2>/dev/null)" || return 0
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "stopping (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
    fi
}

status() {
    if ping; then
        echo "redis: running on 127.0.0.1:$SYNC_REDIS_PORT ($REDIS_DIR)"
    else
        echo "redis: stopped"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    ping) ping ;;
    run) run ;;
    *) echo "usage: $0 start|stop|status|run" >&2; exit 2 ;;
esac
