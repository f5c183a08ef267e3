#!/usr/bin/env bash
# The local stack in the background: embedded PostgreSQL, both sandboxes, Airflow
# (api-server, scheduler, dag-processor, triggerer; LocalExecutor).
#
#   scripts/stack.sh up [seed options]   start what is not running, wait until healthy, seed
#                                         (scripts/seed.py; `up --unpause` for the demo)
#   scripts/stack.sh down     stop everything this stack started (TERM, then KILL); idempotent
#   scripts/stack.sh status   one line per service, with its restarts; exit 0 when all are running
#   scripts/stack.sh wait     wait until every service answers its health check
#   scripts/stack.sh stop-service celery-worker<i>    stop one Celery worker of the running stack
#   scripts/stack.sh start-service celery-worker<i>   start it again, wait until it answers ping
#
# Supervision: each service (sandboxes, api-server, scheduler, dag-processor, triggerer) runs under
# scripts/supervise.sh, which restarts it with backoff when it exits unexpectedly (e.g. after a
# PostgreSQL restart); a watchdog (`postgres.sh watch`) starts PostgreSQL again when it dies.
# Every process the stack starts carries SYNC_STACK_ID=<absolute .local path> in its environment
# (inherited by all its children, also after they re-parent to init); `down` stops every process
# carrying this stack's marker and no other (other checkouts have other .local paths).
# Docs: docs/local-stack.md.
#
# Logs: .local/logs/<service>.log   pid files: .local/run/<service>.pid (the supervisor),
# <service>.child (the service itself), <service>.restarts
# Ports: see scripts/env.sh (AIRFLOW_PORT, ACCURATE_SANDBOX_PORT, ISELLER_SANDBOX_PORT, SYNC_PG_PORT).
# Timeouts (seconds): STACK_START_TIMEOUT [300] for Airflow to become healthy.
#
# EXECUTOR=celery (the Celery lane, docs/local-stack.md): also Redis (scripts/redis.sh run, supervised)
# and WORKERS [2] Celery workers (worker<i>@<host>, services celery-worker<i>, each with its own log
# server port and hostname), the FAB auth manager with the admin user and the shop's roles
# (scripts/fab_roles.py); the health wait ends with `celery inspect ping` (Airflow's Celery app), which
# every worker must answer.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

START_TIMEOUT="${STACK_START_TIMEOUT:-300}"
STOP_TIMEOUT="${STACK_STOP_TIMEOUT:-30}"
SANDBOXES=(accurate iseller)
AIRFLOW_SERVICES=(api-server scheduler dag-processor triggerer)
WORKER_SERVICES=()
if [ "$EXECUTOR" = celery ]; then
    for ((i = 1; i <= WORKERS; i++)); do WORKER_SERVICES+=("celery-worker$i"); done
    AIRFLOW_SERVICES+=("${WORKER_SERVICES[@]}")
fi
# A service restarted this many times during `up` is crash-looping: stop waiting and show its log.
UP_MAX_RESTARTS=3
# The marker every process of this stack carries (see the header).
STACK_ID="$SYNC_LOCAL_DIR"
PYTHON="$VENV/bin/python"

log() { printf '[stack] %s\n' "$*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

require_venv() {
    [ -x "$PYTHON" ] || die "virtualenv $VENV not found: run 'make venv' first"
    [ -x "$VENV/bin/airflow" ] || die "airflow is not installed in $VENV: run 'make venv'"
}

pidfile() { printf '%s/%s.pid' "$SYNC_RUN_DIR" "$1"; }
logfile() { printf '%s/%s.log' "$SYNC_LOG_DIR" "$1"; }

# True when PID runs. A zombie does not: where PID 1 does not reap orphans (some containers and
# VMs), a killed service stays a zombie for good and `kill -0` alone would call it running.
pid_alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    [ "$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}

# pid of a running service's supervisor, or nothing.
service_pid() {
    local file pid
    file="$(pidfile "$1")"
    [ -f "$file" ] || return 1
    pid="$(cat "$file")"
    if pid_alive "$pid"; then
        printf '%s' "$pid"
        return 0
    fi
    return 1
}

# pid of the service process itself (the supervisor's current child), or nothing.
child_pid() {
    local pid
    pid="$(cat "$SYNC_RUN_DIR/$1.child" 2>/dev/null)" || return 1
    if pid_alive "$pid"; then
        printf '%s' "$pid"
        return 0
    fi
    return 1
}

# "<count> <time> <how>" of the service's last unexpected exit, or nothing.
restarts_of() { cat "$SYNC_RUN_DIR/$1.restarts" 2>/dev/null || true; }
restart_count() { local r; r="$(restarts_of "$1")"; printf '%s' "${r%% *}" | grep -E '^[0-9]+$' || echo 0; }

# This shell and its ancestors: never signalled by `down`, whatever their environment says.
self_and_ancestors() {
    local pid=$$
    while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
        printf '%s\n' "$pid"
        pid="$(awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$pid/stat" 2>/dev/null)" || break
    done
    printf '%s\n' "$BASHPID"
}

# Pids of the live processes carrying this stack's marker (optionally: of these services only).
marked_pids() {
    local files exclude pid
    [ -d /proc/self ] || return 0
    # One grep over every environ file (-z: NUL-separated entries, -x: the whole entry).
    files="$(grep -lzxF "SYNC_STACK_ID=$STACK_ID" /proc/[0-9]*/environ 2>/dev/null || true)"
    [ -n "$files" ] || return 0
    if [ "$#" -gt 0 ]; then
        local patterns=() name
        for name in "$@"; do patterns+=(-e "SYNC_STACK_SERVICE=$name"); done
        # shellcheck disable=SC2086
        files="$(grep -lzxF "${patterns[@]}" $files 2>/dev/null || true)"
    fi
    exclude=" $(self_and_ancestors | tr '\n' ' ') "
    for pid in $files; do
        pid="${pid#/proc/}"
        pid="${pid%/environ}"
        [[ "$exclude" == *" $pid "* ]] && continue
        # Zombies are already dead (their parent has not collected them yet).
        if pid_alive "$pid"; then printf '%s\n' "$pid"; fi
    done
    return 0
}

# kill_marked [SERVICE...]: TERM every process of this stack (or of these services), wait up to STOP_TIMEOUT,
# then KILL what is left (processes that ignore SIGTERM, orphans of a killed parent).
kill_marked() {
    local pids deadline
    pids="$(marked_pids "$@" | tr '\n' ' ')"
    [ -n "${pids// /}" ] || return 0
    log "stopping processes of ${*:-this stack}: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while pids="$(marked_pids "$@" | tr '\n' ' ')"; [ -n "${pids// /}" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "still running after ${STOP_TIMEOUT}s, killing: $pids"
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
            sleep 0.5
            pids="$(marked_pids "$@" | tr '\n' ' ')"
            if [ -n "${pids// /}" ]; then log "WARNING: could not stop:$pids"; fi
            break
        fi
        sleep 0.5
    done
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

# start_service [--liveness COMPONENT] NAME PORT COMMAND...  (PORT "-" when the service listens on
# none; --liveness: see scripts/supervise.sh)
start_service() {
    local supervise_opts=()
    if [ "$1" = "--liveness" ]; then
        supervise_opts=(--liveness "$2")
        shift 2
    fi
    local name="$1" port="$2"
    shift 2
    local pid
    if pid="$(service_pid "$name")"; then
        log "$name already running (supervisor pid $pid)"
        return 0
    fi
    # Its supervisor is gone (killed): leftovers of its last run would hold the port or the job.
    kill_marked "$name"
    if [ "$port" != "-" ] && port_busy "$port"; then
        die "$name: port $port is already in use by a process this stack did not start (another stack?).
Stop it, or choose other ports (see scripts/env.sh)."
    fi
    mkdir -p "$SYNC_LOG_DIR" "$SYNC_RUN_DIR"
    printf '\n===== %s: starting %s =====\n' "$(date -u +%FT%TZ)" "$name" >>"$(logfile "$name")"
    rm -f "$SYNC_RUN_DIR/$name.stop" "$SYNC_RUN_DIR/$name.restarts" "$SYNC_RUN_DIR/$name.child"
    # Own session (Ctrl-C in the terminal does not reach it), under its supervisor, marked as ours.
    # SPT_NOENV: setproctitle (Airflow's process titles) must not overwrite the environment block
    # that `down` reads the marker from.
    SYNC_STACK_ID="$STACK_ID" SYNC_STACK_SERVICE="$name" SPT_NOENV=1 PYTHONUNBUFFERED=1 \
        setsid bash "$REPO/scripts/supervise.sh" "${supervise_opts[@]}" "$name" "$@" >>"$(logfile "$name")" 2>&1 </dev/null &
    echo $! >"$(pidfile "$name")"
    log "$name started (supervisor pid $!, log $(logfile "$name"))"
}

# Fail `up` early when a service keeps crashing instead of waiting for the whole timeout.
check_not_crash_looping() {
    local name="$1"
    if ! service_pid "$name" >/dev/null; then
        tail_log "$name"
        die "$name is not running: its supervisor exited (see $(logfile "$name"))"
    fi
    if [ "${STACK_FAIL_ON_RESTARTS:-0}" = 1 ] && [ "$(restart_count "$name")" -ge "$UP_MAX_RESTARTS" ]; then
        tail_log "$name"
        die "$name exited $(restart_count "$name") times during start-up (see $(logfile "$name"))"
    fi
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
        if [ "$name" != "-" ]; then check_not_crash_looping "$name"; fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            if [ "$name" != "-" ]; then tail_log "$name"; fi
            die "timed out after ${timeout}s waiting for $name: $*"
        fi
        sleep 1
    done
}

write_passwords_file() {
    # The simple auth manager keeps {"user": "password"} in this file; setting the admin's entry
    # makes the local login AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD (admin / admin) instead of a
    # random one. Every other user in the file is kept (same code as docker-compose's airflow-init);
    # the file is replaced atomically, mode 0600.
    if ! ADMIN_USER="$AIRFLOW_ADMIN_USER" ADMIN_PASSWORD="$AIRFLOW_ADMIN_PASSWORD" NOTES_USER="" \
        NOTES_PASSWORD="" "$PYTHON" "$REPO/scripts/compose/auth_passwords.py" \
        "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" >/dev/null; then
        die "could not update $AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    fi
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
        for svc in "${AIRFLOW_SERVICES[@]}"; do check_not_crash_looping "$svc"; done
        if [ "$SECONDS" -ge "$deadline" ]; then
            for svc in scheduler dag-processor triggerer; do tail_log "$svc" 15; done
            die "timed out after ${START_TIMEOUT}s waiting for Airflow to be healthy: $summary"
        fi
        sleep 2
    done
    if [ "$EXECUTOR" = celery ]; then
        deadline=$((SECONDS + START_TIMEOUT))
        local ping
        # shellcheck disable=SC2119  # no argument: every worker
        until ping="$(celery_ping 2>&1)"; do
            for svc in "${WORKER_SERVICES[@]}"; do check_not_crash_looping "$svc"; done
            if [ "$SECONDS" -ge "$deadline" ]; then
                for svc in "${WORKER_SERVICES[@]}"; do tail_log "$svc" 15; done
                die "timed out after ${START_TIMEOUT}s waiting for $WORKERS Celery workers: $ping"
            fi
            sleep 2
        done
        summary+=" celery: $WORKERS workers answer ping"
    fi
    log "Airflow healthy: $summary"
}

# celery_ping [I...]: `celery inspect ping` through Airflow's Celery app; 0 when every worker of this
# stack (or workers I... only) answers.
# shellcheck disable=SC2120  # start-service passes I through wait_until
celery_ping() {
    local out want wanted=("$@")
    if [ "${#wanted[@]}" = 0 ]; then
        for ((want = 1; want <= WORKERS; want++)); do wanted+=("$want"); done
    fi
    out="$("$VENV/bin/celery" --app airflow.providers.celery.executors.celery_executor.app \
        inspect ping --timeout 5 2>&1)" || { printf '%s\n' "$out" | tail -n 3; return 1; }
    for want in "${wanted[@]}"; do
        if ! grep -q "worker$want@" <<<"$out"; then
            echo "worker$want does not answer ping"
            return 1
        fi
    done
}

# Under FAB: the admin user (created once; its password set to AIRFLOW_ADMIN_PASSWORD every time)
# and the roles SyncOperator / SyncViewer (scripts/fab_roles.py, idempotent).
fab_setup() {
    local out
    if out="$(airflow users list --output json 2>/dev/null)" && grep -q "\"username\": \"$AIRFLOW_ADMIN_USER\"" <<<"$out"; then
        SYNC_CLI_PASSWORD="$AIRFLOW_ADMIN_PASSWORD" "$PYTHON" "$REPO/scripts/airflow_with_password.py" \
            users reset-password --username "$AIRFLOW_ADMIN_USER" >>"$(logfile fab-setup)" 2>&1 \
            || { tail_log fab-setup; die "could not set the password of $AIRFLOW_ADMIN_USER"; }
    else
        SYNC_CLI_PASSWORD="$AIRFLOW_ADMIN_PASSWORD" "$PYTHON" "$REPO/scripts/airflow_with_password.py" \
            users create --username "$AIRFLOW_ADMIN_USER" --firstname Sync --lastname Admin --email "$AIRFLOW_ADMIN_USER@localhost" --role Admin \
            >>"$(logfile fab-setup)" 2>&1 || { tail_log fab-setup; die "airflow users create failed"; }
        log "FAB admin user $AIRFLOW_ADMIN_USER created"
    fi
    "$PYTHON" "$REPO/scripts/fab_roles.py" >>"$(logfile fab-setup)" 2>&1 \
        || { tail_log fab-setup; die "scripts/fab_roles.py failed"; }
    log "FAB roles SyncOperator and SyncViewer set up"
}

# start_worker I: Celery worker I as service celery-worker<I> (`up` and `start-service`): Celery name
# worker<I>@<host>, its own log server port and its own hostname (include/iseller_accurate/hostname.py).
start_worker() {
    local i="$1"
    start_service "celery-worker$i" "$((WORKER_LOG_PORT_BASE + i - 1))" \
        env SYNC_WORKER_HOSTNAME="127.0.1.$i" \
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$((WORKER_LOG_PORT_BASE + i - 1))" \
        airflow celery worker --celery-hostname "worker$i@%h" --concurrency "$WORKER_CONCURRENCY"
}

up() {
    require_venv
    local t0=$SECONDS
    mkdir -p "$SYNC_LOG_DIR" "$SYNC_RUN_DIR" "$AIRFLOW_HOME"
    SYNC_STACK_ID="$STACK_ID" SYNC_STACK_SERVICE=postgres bash "$REPO/scripts/postgres.sh" start
    start_service postgres-watchdog - bash "$REPO/scripts/postgres.sh" watch

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
    fi
    if [ "$EXECUTOR" = celery ]; then
        bash "$REPO/scripts/redis.sh" start
        start_service redis "$SYNC_REDIS_PORT" bash "$REPO/scripts/redis.sh" run
        wait_until redis 30 bash "$REPO/scripts/redis.sh" ping
    fi
    if [ "$AIRFLOW__CORE__AUTH_MANAGER" = airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager ]; then
        fab_setup
    else
        write_passwords_file
    fi
    start_service api-server "$AIRFLOW_PORT" \
        airflow api-server --host "$AIRFLOW__API__HOST" --port "$AIRFLOW_PORT"
    start_service --liveness scheduler scheduler - airflow scheduler --skip-serve-logs
    start_service --liveness dag_processor dag-processor - airflow dag-processor
    start_service --liveness triggerer triggerer - airflow triggerer --skip-serve-logs
    local i
    for ((i = 1; i <= ${#WORKER_SERVICES[@]}; i++)); do start_worker "$i"; done

    STACK_FAIL_ON_RESTARTS=1 wait_healthy
    "$PYTHON" "$REPO/scripts/seed.py" "$@"
    log "stack up in $((SECONDS - t0))s: Airflow $AIRFLOW__API__BASE_URL (login $(sync_login_hint))"
}

# stop_services NAME...: ask each supervisor to stop (stop file + TERM to its process group; the
# supervisor passes TERM on to the service), TERM every process marked as one of these services, wait
# up to STACK_STOP_TIMEOUT [30] seconds, then KILL what is left. Idempotent.
stop_services() {
    local name pid
    for name in "$@"; do
        [ -d "$SYNC_RUN_DIR" ] && : >"$SYNC_RUN_DIR/$name.stop"
        if pid="$(service_pid "$name")"; then
            log "stopping $name (supervisor pid $pid)"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    kill_marked "$@"
    for name in "$@"; do
        rm -f "$(pidfile "$name")" "$SYNC_RUN_DIR/$name.child"
    done
}

down() {
    # Airflow first (it holds database connections), then the sandboxes, PostgreSQL last.
    # Workers of any lane this checkout ran (a `down` without EXECUTOR=celery stops them too).
    local workers=() f
    for f in "$SYNC_RUN_DIR"/celery-worker*.pid; do
        [ -e "$f" ] && workers+=("$(basename "$f" .pid)")
    done
    if [ "${#workers[@]}" -gt 0 ]; then stop_services "${workers[@]}"; fi
    stop_services triggerer dag-processor scheduler api-server
    stop_services redis
    stop_services iseller-sandbox accurate-sandbox
    stop_services postgres-watchdog
    bash "$REPO/scripts/postgres.sh" stop
    # Whatever is left of this stack, wherever it re-parented to (orphaned LocalExecutor workers,
    # task supervisors and task processes of a killed scheduler, API server workers, ...).
    kill_marked
    log "stack down"
}

# worker_index NAME: I when NAME is celery-worker<I>, a worker of this stack (EXECUTOR=celery, I <= WORKERS).
worker_index() {
    [ "$EXECUTOR" = celery ] && [[ "$1" =~ ^celery-worker([1-9][0-9]*)$ ]] \
        && [ "${BASH_REMATCH[1]}" -le "$WORKERS" ] || return 1
    printf '%s' "${BASH_REMATCH[1]}"
}

# stop-service / start-service NAME: stop or start one Celery worker of the running stack (e.g. to
# see what a worker that is away for a while does to a run). Other services are refused: the stack's
# own restarts (supervisor, `down` then `up`) cover them.
one_worker() {
    local cmd="$1"
    shift
    [ "$#" = 1 ] || die "usage: $0 $cmd celery-worker<i>"
    worker_index "$1" >/dev/null || die "$cmd: '$1' is not a Celery worker of this stack: only \
celery-worker1 ... celery-worker$WORKERS can be stopped and started alone, with EXECUTOR=celery \
(EXECUTOR=$EXECUTOR, WORKERS=$WORKERS here); 'down' and 'up' stop and start the whole stack"
}

stop_one_service() {
    one_worker stop-service "$@"
    # TERM (Celery's warm shutdown: no new tasks; running ones get STACK_STOP_TIMEOUT seconds), then KILL.
    stop_services "$1"
    log "$1 stopped"
}

start_one_service() {
    one_worker start-service "$@"
    require_venv
    local i
    i="$(worker_index "$1")"
    start_worker "$i"
    wait_until "$1" "$START_TIMEOUT" celery_ping "$i"
    log "$1 answers celery inspect ping"
}

status() {
    local rc=0 svc pid child restarts
    bash "$REPO/scripts/postgres.sh" status || rc=1
    local extra=() f
    if [ "$EXECUTOR" = celery ] || [ -e "$SYNC_RUN_DIR/redis.pid" ]; then extra+=(redis); fi
    for f in "$SYNC_RUN_DIR"/celery-worker*.pid; do
        [ -e "$f" ] || continue
        f="$(basename "$f" .pid)"
        [[ " ${AIRFLOW_SERVICES[*]} " == *" $f "* ]] || extra+=("$f")
    done
    for svc in accurate-sandbox iseller-sandbox "${AIRFLOW_SERVICES[@]}" "${extra[@]}" postgres-watchdog; do
        restarts="$(restarts_of "$svc")"
        if [ -n "$restarts" ]; then
            # "<count> <time> <how>" -> "3 restarts, last 2026-01-01T00:00:00Z after exit code 1"
            restarts="$(printf '%s' "$restarts" | awk '{ n = $1; t = $2; $1 = ""; $2 = "";
                sub(/^ +/, ""); printf "%d restart%s, last %s after %s", n, (n == 1 ? "" : "s"), t, $0 }')"
        else
            restarts="0 restarts"
        fi
        if pid="$(service_pid "$svc")"; then
            if child="$(child_pid "$svc")"; then
                echo "$svc: running (pid $child, supervisor $pid; $restarts)"
            else
                echo "$svc: restarting (supervisor $pid; $restarts)"
                rc=1
            fi
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
    stop-service) shift; stop_one_service "$@" ;;
    start-service) shift; start_one_service "$@" ;;
    *) echo "usage: $0 up|down|status|wait|stop-service celery-worker<i>|start-service celery-worker<i>" >&2; exit 2 ;;
esac
