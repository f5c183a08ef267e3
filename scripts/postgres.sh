#!/usr/bin/env bash
# Embedded PostgreSQL for the local stack: a cluster of its own in $SYNC_PG_DIR (.local/pg) on
# 127.0.0.1:$SYNC_PG_PORT (5433), no Docker, no system service.
#
#   scripts/postgres.sh start    init the cluster if needed, start it, create role/databases
#   scripts/postgres.sh stop     fast shutdown (idempotent); the watchdog leaves it stopped
#   scripts/postgres.sh status   exit 0 when running
#   scripts/postgres.sh watch    watchdog (run by scripts/stack.sh up): starts the server again when
#                                it died (kill -9, crash) without `postgres.sh stop`; checks every
#                                PG_WATCH_INTERVAL [2] seconds, backs off up to 30 s while it fails
#
# Server binaries: initdb/pg_ctl on PATH, else the newest /usr/lib/postgresql/*/bin. When none is
# found and we are root on a Debian-like system, Debian's `postgresql` package is installed with
# apt-get (its default cluster is not created); otherwise we stop with instructions.
# PostgreSQL refuses to run as root: as root the cluster belongs to and runs as `nobody`.
# Role `airflow` (password `airflow`, superuser: the tests create throwaway databases) owns the
# databases `airflow` (Airflow metadata) and `sync_db` (the sync ledger).
# Authentication: `trust` on 127.0.0.1 (the server listens nowhere else), like the throwaway servers
# of tests/pg.py, so a DSN without its password (psycopg's conn.info.dsn) works the same on both.
# docker-compose.yaml's PostgreSQL checks passwords.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PG_SUPERUSER=postgres
PG_SUPERPASS="${SYNC_PG_SUPERUSER_PASSWORD:-postgres}"
# The server writes its log inside its own directory (writable by the server's user);
# .local/logs/postgres.log is a link to it.
PG_LOG_LINK="$SYNC_LOG_DIR/postgres.log"
RUN_AS=""
# Written by `stop`, removed by `start`: the watchdog does not start a server stopped on purpose.
STOPPED_FLAG="$SYNC_RUN_DIR/postgres.stopped"
# "<count> <UTC time> <what happened>" of the watchdog's last restart.
RESTARTS_FILE="$SYNC_RUN_DIR/postgres.restarts"

log() { printf '[postgres] %s\n' "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

find_pg_bin() {
    local found
    if found="$(command -v pg_ctl 2>/dev/null)" && [ -x "$(dirname "$(readlink -f "$found")")/initdb" ]; then
        dirname "$(readlink -f "$found")"
        return 0
    fi
    found="$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$found" ]; then
        dirname "$found"
        return 0
    fi
    return 1
}

install_pg() {
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL server binaries not found: installing Debian's postgresql package (apt-get)"
        # Only the binaries: no default cluster on 5432.
        mkdir -p /etc/postgresql-common
        if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
            echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >&2
        return 0
    fi
    die "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin.
Install them (Debian/Ubuntu: 'sudo apt-get install postgresql'; macOS: 'brew install postgresql@15'),
or put their bin directory on PATH, then run this again."
}

PG_BIN="$(find_pg_bin || true)"

as_pg_user() {
    if [ -n "$RUN_AS" ]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

setup_user() {
    if [ "$(id -u)" -eq 0 ]; then
        RUN_AS=nobody
        command -v runuser >/dev/null 2>&1 || die "running as root needs 'runuser' (util-linux) to start PostgreSQL as nobody"
        # `nobody` must be able to reach the data directory; a repository under /root is not
        # reachable, so the cluster goes to /var/tmp instead (one per checkout).
        mkdir -p "$SYNC_PG_DIR"
        if ! runuser -u nobody -- test -x "$(dirname "$SYNC_PG_DIR")"; then
            local hash
            hash="$(printf '%s' "$SYNC_PG_DIR" | cksum | cut -d' ' -f1)"
            local alt="/var/tmp/iseller-accurate-pg-$hash"
            log "nobody cannot reach $SYNC_PG_DIR; keeping the cluster in $alt"
            mkdir -p "$alt"
            rmdir "$SYNC_PG_DIR" 2>/dev/null || true
            [ -L "$SYNC_PG_DIR" ] || ln -sfn "$alt" "$SYNC_PG_DIR"
            SYNC_PG_DIR="$alt"
        fi
        chown nobody "$SYNC_PG_DIR"
        chmod 700 "$SYNC_PG_DIR"
    else
        mkdir -p "$SYNC_PG_DIR"
        chmod 700 "$SYNC_PG_DIR"
    fi
    if [ -L "$SYNC_PG_DIR" ]; then
        SYNC_PG_DIR="$(readlink -f "$SYNC_PG_DIR")"
    fi
}

# For stop/status: who runs the cluster, and where it really is.
resolve_user() {
    if [ "$(id -u)" -eq 0 ]; then RUN_AS=nobody; fi
    if [ -L "$SYNC_PG_DIR" ]; then SYNC_PG_DIR="$(readlink -f "$SYNC_PG_DIR")"; fi
}

write_hba() {
    local hba
    hba="$(DATA)/pg_hba.conf"
    cat >"$hba" <<'HBA'
# Written by scripts/postgres.sh: a local development server, reachable on 127.0.0.1 only.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
HBA
    if [ -n "$RUN_AS" ]; then chown "$RUN_AS" "$hba"; fi
    chmod 600 "$hba"
}

DATA() { printf '%s/data' "$SYNC_PG_DIR"; }

is_running() {
    [ -n "$PG_BIN" ] || return 1
    [ -f "$(DATA)/postmaster.pid" ] || return 1
    as_pg_user "$PG_BIN/pg_ctl" -D "$(DATA)" status >/dev/null 2>&1
}

port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$SYNC_PG_PORT") 2>/dev/null
}

# shellcheck disable=SC2120  # extra psql arguments are optional
psql_admin() {
    local psql="$PG_BIN/psql"
    [ -x "$psql" ] || psql="$(command -v psql || true)"
    [ -n "$psql" ] || die "psql not found"
    PGPASSWORD="$PG_SUPERPASS" "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SYNC_PG_PORT" \
        -U "$PG_SUPERUSER" -d postgres "$@"
}

init_cluster() {
    local pwfile
    pwfile="$SYNC_PG_DIR/.pwfile"
    printf '%s\n' "$PG_SUPERPASS" >"$pwfile"
    if [ -n "$RUN_AS" ]; then chown "$RUN_AS" "$pwfile"; fi
    chmod 600 "$pwfile"
    log "initdb in $(DATA)"
    as_pg_user "$PG_BIN/initdb" -D "$(DATA)" -U "$PG_SUPERUSER" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$SYNC_LOG_DIR/initdb.log" 2>&1 \
        || as_pg_user "$PG_BIN/initdb" -D "$(DATA)" -U "$PG_SUPERUSER" --pwfile="$pwfile" \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C >"$SYNC_LOG_DIR/initdb.log" 2>&1 \
        || { tail -n 30 "$SYNC_LOG_DIR/initdb.log" >&2; rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
    cat >>"$(DATA)/postgresql.conf" <<EOF

# --- iseller-accurate-sync local stack ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start() {
    mkdir -p "$SYNC_LOG_DIR" "$SYNC_RUN_DIR"
    # One start at a time (`postgres.sh start` by hand and the watchdog may race).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$SYNC_RUN_DIR/postgres.lock"
        flock 9
    fi
    if [ -z "$PG_BIN" ]; then
        install_pg
        PG_BIN="$(find_pg_bin)" || die "PostgreSQL binaries still not found after installing"
    fi
    setup_user
    if is_running; then
        log "already running on 127.0.0.1:$SYNC_PG_PORT"
        if ! grep -q "scripts/postgres.sh" "$(DATA)/pg_hba.conf" 2>/dev/null; then
            write_hba
            as_pg_user "$PG_BIN/pg_ctl" -D "$(DATA)" reload >/dev/null
        fi
    else
        if port_busy; then
            die "port $SYNC_PG_PORT is in use by another program (another stack?). Stop it, or set SYNC_PG_PORT."
        fi
        [ -f "$(DATA)/PG_VERSION" ] || init_cluster
        write_hba
        local PG_LOG="$SYNC_PG_DIR/postgres.log"
        touch "$PG_LOG"
        if [ -n "$RUN_AS" ]; then chown "$RUN_AS" "$PG_LOG"; fi
        ln -sfn "$PG_LOG" "$PG_LOG_LINK"
        log "starting $("$PG_BIN/postgres" --version) on 127.0.0.1:$SYNC_PG_PORT (log: $PG_LOG)"
        # setsid: Ctrl-C in the terminal of `make demo` must not reach the server directly.
        # 9>&-: the server must not inherit (and keep) the start lock.
        if ! as_pg_user setsid "$PG_BIN/pg_ctl" -D "$(DATA)" -l "$PG_LOG" -w -t 60 \
            -o "-p $SYNC_PG_PORT" start >/dev/null 9>&-; then
            tail -n 30 "$PG_LOG" >&2
            die "PostgreSQL did not start"
        fi
    fi
    ensure_objects
    # Only now: until the server runs, the watchdog must not start a second one.
    rm -f "$STOPPED_FLAG"
}

ensure_objects() {
    psql_admin -f - <<'SQL'
SELECT 'CREATE ROLE airflow LOGIN SUPERUSER PASSWORD ''airflow'''
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airflow') \gexec
SELECT 'CREATE DATABASE airflow OWNER airflow'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'airflow') \gexec
SELECT 'CREATE DATABASE sync_db OWNER airflow'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sync_db') \gexec
SQL
    log "ready: postgresql://airflow:airflow@127.0.0.1:$SYNC_PG_PORT/{airflow,sync_db}"
}

stop() {
    if [ -d "$SYNC_RUN_DIR" ]; then : >"$STOPPED_FLAG"; fi
    [ -n "$PG_BIN" ] || return 0
    resolve_user
    if is_running; then
        log "stopping"
        as_pg_user "$PG_BIN/pg_ctl" -D "$(DATA)" -m fast -w -t 60 stop >/dev/null \
            || as_pg_user "$PG_BIN/pg_ctl" -D "$(DATA)" -m immediate -w stop >/dev/null || true
    fi
}

status() {
    resolve_user
    local restarts=""
    if [ -s "$RESTARTS_FILE" ]; then
        restarts="; $(awk '{ printf "%d restart%s by the watchdog, last %s", $1, ($1 == 1 ? "" : "s"), $2 }' \
            "$RESTARTS_FILE")"
    fi
    if is_running; then
        echo "postgres: running on 127.0.0.1:$SYNC_PG_PORT ($(DATA)$restarts)"
    else
        echo "postgres: stopped"
        return 1
    fi
}

# The sandboxes keep their state in memory: when they start afresh, a ledger that remembers documents
# "already in Accurate" from an earlier session would be wrong. The stack then starts a fresh ledger.
reset_ledger() {
    resolve_user
    is_running || die "PostgreSQL is not running"
    psql_admin -f - <<'SQL'
DROP DATABASE IF EXISTS sync_db WITH (FORCE);
CREATE DATABASE sync_db OWNER airflow;
SQL
    log "sync_db reset (fresh sandboxes, fresh ledger)"
}

# The watchdog: start the server again when it is gone although nobody ran `stop`.
watch() {
    local interval="${PG_WATCH_INTERVAL:-2}" delay=2 restarts=0
    [ -n "$PG_BIN" ] || die "PostgreSQL binaries not found"
    # A server this watchdog starts belongs to the stack, not to the watchdog: stopping the
    # watchdog (scripts/stack.sh down) must not signal it.
    if [ -n "${SYNC_STACK_SERVICE:-}" ]; then export SYNC_STACK_SERVICE=postgres; fi
    log "watching the server on 127.0.0.1:$SYNC_PG_PORT every ${interval}s"
    # The count is this watchdog's (make status shows it), not that of an earlier session.
    rm -f "$RESTARTS_FILE"
    while :; do
        sleep "$interval"
        [ -e "$STOPPED_FLAG" ] && continue
        resolve_user
        if is_running; then
            delay=2
            continue
        fi
        # Someone may be starting it right now (`postgres.sh start`): ask again once they are done.
        if command -v flock >/dev/null 2>&1 \
            && ! (flock -w 120 9 && [ ! -e "$STOPPED_FLAG" ] && ! is_running) 9>"$SYNC_RUN_DIR/postgres.lock"; then
            continue
        fi
        restarts=$((restarts + 1))
        mkdir -p "$SYNC_RUN_DIR"
        printf '%s %s %s\n' "$restarts" "$(date -u +%FT%TZ)" "server gone" >"$RESTARTS_FILE"
        log "$(date -u +%FT%TZ) the server is not running (not stopped with 'postgres.sh stop'): restart #$restarts"
        if (start); then
            log "server running again"
        else
            log "start failed (an old server process may still be exiting); next try in ${delay}s"
            sleep "$delay"
            delay=$((delay * 2))
            if [ "$delay" -gt 30 ]; then delay=30; fi
        fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    reset-ledger) reset_ledger ;;
    watch) watch ;;
    *) echo "usage: $0 start|stop|status|reset-ledger|watch" >&2; exit 2 ;;
esac
