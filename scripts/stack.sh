#!/usr/bin/env bash
# The local stack in the background: embedded PostgreSQL, both sandboxes, Airflow
# (api-server, scheduler, dag-processor, triggerer; LocalExecutor).
#
#   scripts/stack.sh up [seed options]   start what is not running, wait until healthy, seed
#                                         (scripts/seed.py; `up --unpause` for the demo)
#   scripts/stack.sh down     stop everything (TERM to each process group, then KILL); idempotent
#   scripts/stack.sh status   one line per service; exit 0 when all are running
#   scripts/stack.sh wait     wait until every service answers its health check
#
# Logs: .local/logs/<service>.log   pid files: .local/run/<service>.pid
# Ports: see scripts/env.sh (AIRFLOW_PORT, ACCURATE_SANDBOX_PORT, ISELLER_SANDBOX_PORT, SYNC_PG_PORT).
# Timeouts (seconds): STACK_START_TIMEOUT [300] for Airflow to become healthy.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

START_TIMEOUT="${STACK_START_TIMEOUT:-300}"
SANDBOXES=(accurate iseller)
AIRFLOW_SERVICES=(api-server scheduler dag-processor triggerer)
PYTHON="$VENV/bin/python"

log() { printf '[stack] %s\n' "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

require_venv() {
    [ -x "$PYTHON" ] || die "virtualenv $VENV not found: run 'make venv' first"
    [ -x "$VENV/bin/airflow" ] || die "airflow is not installed in $VENV: run 'make venv'"
}

pidfile() { printf '%s/%s.pid' "$SYNC_RUN_DIR" "$1"; }
logfile() { printf '%s/%s.log' "$SYNC_LOG_DIR" "$1"; }

# pid of a running service, or nothing.
service_pid() {
    local file pid
    file="$(pidfile "$1")"
    [ -f "$file" ] || return 1
    pid="$(cat "$file")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        printf '%s' "$pid"
        return 0
    fi
    return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tail_log() {
    local file
    file="$(logfile "$1")"
    if [ -f "$file" ]; then
        log "last lines of $file:"
        tail -n "${2:-40}" "$file" | sed 's/^/    /' >&2
    fi
}

# start_service NAME PORT COMMAND...  (PORT "-" when the service listens on none)
start_service() {
    local name="$1" port="$2"
    shift 2
    local pid
    if pid="$(service_pid "$name")"; then
        log "$name already running (pid $pid)"
        return 0
    fi
    if [ "$port" != "-" ] && port_busy "$port"; then
        die "$name: port $port is already in use by a process this stack did not start (another stack?).
Stop it, or choose other ports (see scripts/env.sh)."
    fi
    mkdir -p "$SYNC_LOG_DIR" "$SYNC_RUN_DIR"
    printf '\n===== %s: starting %s =====\n' "$(date -u +%FT%TZ)" "$name" >>"$(logfile "$name")"
    # Own session and process group: `down` signals the whole group, Ctrl-C does not reach it.
    PYTHONUNBUFFERED=1 setsid "$@" >>"$(logfile "$name")" 2>&1 </dev/null &
    echo $! >"$(pidfile "$name")"
    log "$name started (pid $!, log $(logfile "$name"))"
}

sandbox_present() {
    [ -f "$REPO/sandbox/$1/__main__.py" ] || [ -f "$REPO/sandbox/$1.py" ]
}

sandbox_port() {
    case "$1" in
        accurate) printf '%s' "$ACCURATE_SANDBOX_PORT" ;;
        iseller) printf '%s' "$ISELLER_SANDBOX_PORT" ;;
    esac
}

# wait_until NAME TIMEOUT CHECK...: poll CHECK until it succeeds; fail early if NAME died.
wait_until() {
    local name="$1" timeout="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [ "$name" != "-" ] && ! service_pid "$name" >/dev/null; then
            tail_log "$name"
            die "$name exited during start-up (see $(logfile "$name"))"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            if [ "$name" != "-" ]; then tail_log "$name"; fi
            die "timed out after ${timeout}s waiting for $name: $*"
        fi
        sleep 1
    done
}

write_passwords_file() {
    # The simple auth manager keeps {"user": "password"} in this file; writing it ourselves makes the
    # local login AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD (admin / admin) instead of a random one.
    mkdir -p "$(dirname "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")"
    "$PYTHON" -c 'import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
    f.write("\n")' "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    chmod 600 "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
}

airflow_running() {
    local svc
    for svc in "${AIRFLOW_SERVICES[@]}"; do
        service_pid "$svc" >/dev/null || return 1
    done
}

wait_healthy() {
    local sb
    for sb in "${SANDBOXES[@]}"; do
        if sandbox_present "$sb"; then
            wait_until "$sb-sandbox" 60 "$PYTHON" "$REPO/scripts/health.py" url \
                "http://127.0.0.1:$(sandbox_port "$sb")/_sandbox/health"
        fi
    done
    wait_until api-server "$START_TIMEOUT" "$PYTHON" "$REPO/scripts/health.py" airflow
    local deadline=$((SECONDS + START_TIMEOUT)) svc summary
    until summary="$("$PYTHON" "$REPO/scripts/health.py" airflow --components 2>&1)"; do
        for svc in "${AIRFLOW_SERVICES[@]}"; do
            if ! service_pid "$svc" >/dev/null; then
                tail_log "$svc"
                die "$svc exited during start-up (see $(logfile "$svc"))"
            fi
        done
        if [ "$SECONDS" -ge "$deadline" ]; then
            for svc in scheduler dag-processor triggerer; do tail_log "$svc" 15; done
            die "timed out after ${START_TIMEOUT}s waiting for Airflow to be healthy: $summary"
        fi
        sleep 2
    done
    log "Airflow healthy: $summary"
}

up() {
    require_venv
    local t0=$SECONDS
    mkdir -p "$SYNC_LOG_DIR" "$SYNC_RUN_DIR" "$AIRFLOW_HOME"
    bash "$REPO/scripts/postgres.sh" start

    # A freshly started Accurate sandbox knows none of the documents an earlier session posted.
    if sandbox_present accurate && ! service_pid accurate-sandbox >/dev/null; then
        bash "$REPO/scripts/postgres.sh" reset-ledger
    fi

    local sb
    for sb in "${SANDBOXES[@]}"; do
        if sandbox_present "$sb"; then
            start_service "$sb-sandbox" "$(sandbox_port "$sb")" \
                "$PYTHON" -m "sandbox.$sb" --port "$(sandbox_port "$sb")" --seed "$DEMO_SEED"
        else
            log "WARNING: sandbox/$sb is not there yet (no __main__.py): not starting the $sb sandbox"
        fi
    done

    if ! airflow_running; then
        log "airflow db migrate (log $(logfile db-migrate))"
        if ! airflow db migrate >>"$(logfile db-migrate)" 2>&1; then
            tail_log db-migrate
            die "airflow db migrate failed"
        fi
        write_passwords_file
    fi
    start_service api-server "$AIRFLOW_PORT" \
        airflow api-server --host "$AIRFLOW__API__HOST" --port "$AIRFLOW_PORT"
    start_service scheduler - airflow scheduler --skip-serve-logs
    start_service dag-processor - airflow dag-processor
    start_service triggerer - airflow triggerer --skip-serve-logs

    wait_healthy
    "$PYTHON" "$REPO/scripts/seed.py" "$@"
    log "stack up in $((SECONDS - t0))s: Airflow $AIRFLOW__API__BASE_URL (login $(sync_login_hint))"
}

# All descendants of a pid (children that left the process group included).
descendants() {
    local parent="$1" child
    for child in $(ps -e -o pid=,ppid= | awk -v p="$parent" '$2 == p { print $1 }'); do
        printf '%s\n' "$child"
        descendants "$child"
    done
}

# stop_services NAME...: TERM to each service's process group (and descendants that left it), all at
# once; wait up to STACK_STOP_TIMEOUT [30] seconds, then KILL what is left. Idempotent.
stop_services() {
    local name pid pids="" alive p
    for name in "$@"; do
        if pid="$(service_pid "$name")"; then
            log "stopping $name (pid $pid)"
            pids="$pids $pid $(descendants "$pid" | tr '\n' ' ')"
            kill -TERM -- "-$pid" 2>/dev/null || true
        fi
    done
    if [ -n "${pids// /}" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        local deadline=$((SECONDS + ${STACK_STOP_TIMEOUT:-30}))
        while :; do
            alive=""
            for p in $pids; do
                if kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != "Z" ]; then
                    alive="$alive $p"
                fi
            done
            [ -z "$alive" ] && break
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "not stopped after ${STACK_STOP_TIMEOUT:-30}s, killing:$alive"
                for name in "$@"; do
                    if pid="$(service_pid "$name")"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
                done
                # shellcheck disable=SC2086
                kill -KILL $alive 2>/dev/null || true
                break
            fi
            sleep 0.5
        done
    fi
    for name in "$@"; do rm -f "$(pidfile "$name")"; done
}

down() {
    # Airflow first (it holds database connections), then the sandboxes, PostgreSQL last.
    stop_services triggerer dag-processor scheduler api-server
    stop_services iseller-sandbox accurate-sandbox
    bash "$REPO/scripts/postgres.sh" stop
    log "stack down"
}

status() {
    local rc=0 svc pid
    bash "$REPO/scripts/postgres.sh" status || rc=1
    for svc in accurate-sandbox iseller-sandbox "${AIRFLOW_SERVICES[@]}"; do
        if pid="$(service_pid "$svc")"; then
            echo "$svc: running (pid $pid)"
        else
            echo "$svc: stopped"
            rc=1
        fi
    done
    return "$rc"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down ;;
    status) status ;;
    wait) require_venv; wait_healthy ;;
    *) echo "usage: $0 up|down|status|wait" >&2; exit 2 ;;
esac
