# shellcheck shell=bash
# Environment of the local stack (make demo / up / test). Sourced by every script in scripts/.
#
# Every value is a default: set the variable in your shell first to override it, e.g.
#   AIRFLOW_PORT=9090 make up
#
# Variables (defaults in brackets):
#   AIRFLOW_PORT [8080]            Airflow API server + UI
#   AIRFLOW_BIND_HOST [127.0.0.1]  address the API server listens on
#   ACCURATE_SANDBOX_PORT [8181]   Accurate sandbox
#   ISELLER_SANDBOX_PORT [8182]    iSeller sandbox
#   SYNC_PG_PORT [5433]            embedded PostgreSQL (Airflow metadata db `airflow`, ledger db `sync_db`)
#   EXECUTOR [local]               local: LocalExecutor + simple auth manager (the default lane);
#                                  celery: CeleryExecutor + Redis + WORKERS Celery workers + FAB
#   WORKERS [2]                    Celery workers of the celery lane (worker1@host, worker2@host, ...)
#   SYNC_REDIS_PORT [6379]         Redis of the celery lane (scripts/redis.sh)
#   WORKER_CONCURRENCY [4]         task slots of each Celery worker
#   WORKER_LOG_PORT_BASE [8793]    worker i serves its task logs on WORKER_LOG_PORT_BASE + i - 1
#   DEMO_SEED [42]                 seed of the sandboxes' demo shop
#   VENV [.venv]                   virtualenv used by the scripts
#   SYNC_LOCAL_DIR [.local]        state of the local stack: airflow home, pg cluster, logs, pid files
#   AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD [admin / admin]   local UI + API login
#   ACCURATE_API_TOKEN [sandbox-api-token], ACCURATE_SIGNATURE_SECRET [sandbox-signature-secret],
#   ACCURATE_WEBHOOK_TOKEN [demo-webhook-token], ISELLER_CLIENT_ID [sandbox-client],
#   ISELLER_CLIENT_SECRET [sandbox-secret], ISELLER_WEBHOOK_API_KEY [sandbox-webhook-key]
#                                  local demo secrets, used to build the AIRFLOW_CONN_* variables below
#   AIRFLOW_CONN_SYNC_DB, AIRFLOW_CONN_ACCURATE_API, AIRFLOW_CONN_ISELLER_API, AIRFLOW_CONN_AIRFLOW_API
#                                  the connections themselves (JSON); set one to replace it entirely
#   AIRFLOW__*                     any Airflow option; the values below are only defaults

# Repository root: the parent of this file's directory.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO

# --- ports and local layout ---------------------------------------------------------------------
export AIRFLOW_PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW_BIND_HOST="${AIRFLOW_BIND_HOST:-127.0.0.1}"
export ACCURATE_SANDBOX_PORT="${ACCURATE_SANDBOX_PORT:-8181}"
export ISELLER_SANDBOX_PORT="${ISELLER_SANDBOX_PORT:-8182}"
export SYNC_PG_PORT="${SYNC_PG_PORT:-5433}"
export DEMO_SEED="${DEMO_SEED:-42}"

# The lane: local (LocalExecutor, the default) or celery (docs/local-stack.md, "The Celery lane").
EXECUTOR="$(printf '%s' "${EXECUTOR:-local}" | tr '[:upper:]' '[:lower:]')"
# shellcheck disable=SC2317  # `exit` only when the file is run instead of sourced
case "$EXECUTOR" in
    local | localexecutor) EXECUTOR=local ;;
    celery | celeryexecutor) EXECUTOR=celery ;;
    *) echo "scripts/env.sh: EXECUTOR=$EXECUTOR is neither local nor celery" >&2; return 2 2>/dev/null || exit 2 ;;
esac
export EXECUTOR
export WORKERS="${WORKERS:-2}"
export SYNC_REDIS_PORT="${SYNC_REDIS_PORT:-6379}"
export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-4}"
export WORKER_LOG_PORT_BASE="${WORKER_LOG_PORT_BASE:-8793}"

VENV="${VENV:-.venv}"
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
export VENV

SYNC_LOCAL_DIR="${SYNC_LOCAL_DIR:-$REPO/.local}"
case "$SYNC_LOCAL_DIR" in /*) ;; *) SYNC_LOCAL_DIR="$REPO/$SYNC_LOCAL_DIR" ;; esac
export SYNC_LOCAL_DIR
export SYNC_LOG_DIR="$SYNC_LOCAL_DIR/logs"
export SYNC_RUN_DIR="$SYNC_LOCAL_DIR/run"
export SYNC_PG_DIR="${SYNC_PG_DIR:-$SYNC_LOCAL_DIR/pg}"

export ACCURATE_SANDBOX_URL="http://127.0.0.1:$ACCURATE_SANDBOX_PORT"
export ISELLER_SANDBOX_URL="http://127.0.0.1:$ISELLER_SANDBOX_PORT"
export AIRFLOW_URL="http://127.0.0.1:$AIRFLOW_PORT"

if [ -x "$VENV/bin/python" ]; then
    case ":$PATH:" in *":$VENV/bin:"*) ;; *) PATH="$VENV/bin:$PATH" ;; esac
    export PATH
fi

# DAG files import `include.iseller_accurate...` and `sandbox...` from the repository root.
case ":${PYTHONPATH:-}:" in
    *":$REPO:"*) ;;
    *) PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" ;;
esac
export PYTHONPATH

# --- local demo secrets (never used by docker-compose.yaml) --------------------------------------
export AIRFLOW_ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"
export AIRFLOW_ADMIN_PASSWORD="${AIRFLOW_ADMIN_PASSWORD:-admin}"
export ACCURATE_API_TOKEN="${ACCURATE_API_TOKEN:-sandbox-api-token}"
export ACCURATE_SIGNATURE_SECRET="${ACCURATE_SIGNATURE_SECRET:-sandbox-signature-secret}"
export ACCURATE_WEBHOOK_TOKEN="${ACCURATE_WEBHOOK_TOKEN:-demo-webhook-token}"
export ISELLER_CLIENT_ID="${ISELLER_CLIENT_ID:-sandbox-client}"
export ISELLER_CLIENT_SECRET="${ISELLER_CLIENT_SECRET:-sandbox-secret}"
export ISELLER_WEBHOOK_API_KEY="${ISELLER_WEBHOOK_API_KEY:-sandbox-webhook-key}"

# The login as scripts print it: the local default password is shown; any other one stays out of
# terminals and CI job logs (only this file expands the secret variables).
sync_login_hint() {
    if [ "$AIRFLOW_ADMIN_PASSWORD" = "admin" ]; then
        printf '%s / admin' "$AIRFLOW_ADMIN_USER"
    else
        printf '%s / (the password in AIRFLOW_ADMIN_PASSWORD)' "$AIRFLOW_ADMIN_USER"
    fi
}

# --- Airflow --------------------------------------------------------------------------------------
export AIRFLOW_HOME="${AIRFLOW_HOME:-$SYNC_LOCAL_DIR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$REPO/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$REPO/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
if [ "$EXECUTOR" = celery ]; then
    # The Celery lane, the mirror of docker-compose.yaml: Redis as broker, task states in the
    # metadata database, the FAB auth manager with the shop's roles (scripts/stack.sh sets them up).
    export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-CeleryExecutor}"
    export AIRFLOW__CELERY__BROKER_URL="${AIRFLOW__CELERY__BROKER_URL:-redis://127.0.0.1:$SYNC_REDIS_PORT/0}"
    export AIRFLOW__CELERY__RESULT_BACKEND="${AIRFLOW__CELERY__RESULT_BACKEND:-db+postgresql://airflow:airflow@127.0.0.1:$SYNC_PG_PORT/airflow}"
    export AIRFLOW__CELERY__WORKER_CONCURRENCY="${AIRFLOW__CELERY__WORKER_CONCURRENCY:-$WORKER_CONCURRENCY}"
    export AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER="${AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER:-1}"
    export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager}"
    # Where the API server asks for the log of a running task: http://<task hostname>:<this port>.
    # scripts/stack.sh gives worker i its own log server port (WORKER_LOG_PORT_BASE + i - 1) and
    # its own address as hostname (127.0.1.i, see include/iseller_accurate/hostname.py).
    export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-$WORKER_LOG_PORT_BASE}"
    # A task whose worker died (kill -9, machine lost) is failed and retried after this many seconds
    # without a heartbeat (Airflow's default: 300); the crash tests wait for it.
    export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="${AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT:-90}"
    export AIRFLOW__CORE__HOSTNAME_CALLABLE="${AIRFLOW__CORE__HOSTNAME_CALLABLE:-include.iseller_accurate.hostname.get_hostname}"
else
    export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
fi
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-8}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-$AIRFLOW_URL/execution/}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg2://airflow:airflow@127.0.0.1:$SYNC_PG_PORT/airflow}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE="${AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE:-5}"

# API server: local address, one worker (2 cores); the local lane signs in with the simple auth
# manager and a fixed login (the Celery lane: FAB, set above).
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-$AIRFLOW_BIND_HOST}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-$AIRFLOW_PORT}"
export AIRFLOW__API__BASE_URL="${AIRFLOW__API__BASE_URL:-http://localhost:$AIRFLOW_PORT}"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
case "$AIRFLOW__CORE__AUTH_MANAGER" in
    *SimpleAuthManager)
        export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-$AIRFLOW_ADMIN_USER:admin}"
        # The simple auth manager reads {"user": "password"} from this file; scripts/stack.sh writes it
        # before the API server starts, so the password is AIRFLOW_ADMIN_PASSWORD instead of a random one.
        export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
        ;;
esac

# Local-only signing keys, generated once per checkout into .local/secrets.env (not committed).
_sync_secrets_file="$SYNC_LOCAL_DIR/secrets.env"
if [ -z "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ] || [ -z "${AIRFLOW__API__SECRET_KEY:-}" ]; then
    if [ ! -s "$_sync_secrets_file" ]; then
        mkdir -p "$SYNC_LOCAL_DIR"
        (
            umask 077
            _rand() { od -An -N48 -tx1 /dev/urandom | tr -d ' \n'; }
            printf 'SYNC_LOCAL_JWT_SECRET=%s\nSYNC_LOCAL_API_SECRET_KEY=%s\n' "$(_rand)" "$(_rand)" \
                >"$_sync_secrets_file"
        )
    fi
    # shellcheck disable=SC1090
    . "$_sync_secrets_file"
fi
export AIRFLOW__API_AUTH__JWT_SECRET="${AIRFLOW__API_AUTH__JWT_SECRET:-$SYNC_LOCAL_JWT_SECRET}"
export AIRFLOW__API__SECRET_KEY="${AIRFLOW__API__SECRET_KEY:-$SYNC_LOCAL_API_SECRET_KEY}"
unset _sync_secrets_file SYNC_LOCAL_JWT_SECRET SYNC_LOCAL_API_SECRET_KEY

# Quick turnaround for development and tests: new DAG files in seconds, short heartbeats.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-5}"
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL:-5}"
export AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="${AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES:-2}"
export AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL="${AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL:-300}"
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="${AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC:-2}"
export AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC="${AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC:-2}"
export AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL="${AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL:-30}"
export AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="${AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC:-2}"
# A task whose worker died with it (kill -9, a scheduler or PostgreSQL restart) is failed (then
# retried) after 60 s without a heartbeat instead of Airflow's 300 s. Live tasks heartbeat every 5 s
# ([workers] min_heartbeat_interval) and stop themselves after 3 failed heartbeats, so 60 s does not
# cut a live task short. Tasks orphaned by a restarted scheduler are looked for every 30 s, not 300 s.
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="${AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT:-60}"
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="${AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL:-5}"
export AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL="${AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL:-30}"

# --- connections (JSON form) ----------------------------------------------------------------------
_sync_conn='{"conn_type":"postgres","host":"127.0.0.1","port":'"$SYNC_PG_PORT"',"schema":"sync_db",'
_sync_conn+='"login":"airflow","password":"airflow"}'
export AIRFLOW_CONN_SYNC_DB="${AIRFLOW_CONN_SYNC_DB:-$_sync_conn}"
_sync_conn='{"conn_type":"http","host":"'"$ACCURATE_SANDBOX_URL"'","password":"'"$ACCURATE_API_TOKEN"'",'
_sync_conn+='"extra":{"signature_secret":"'"$ACCURATE_SIGNATURE_SECRET"'",'
_sync_conn+='"webhook_token":"'"$ACCURATE_WEBHOOK_TOKEN"'"}}'
export AIRFLOW_CONN_ACCURATE_API="${AIRFLOW_CONN_ACCURATE_API:-$_sync_conn}"
_sync_conn='{"conn_type":"http","host":"'"$ISELLER_SANDBOX_URL"'","login":"'"$ISELLER_CLIENT_ID"'",'
_sync_conn+='"password":"'"$ISELLER_CLIENT_SECRET"'","extra":{"webhook_api_key":"'"$ISELLER_WEBHOOK_API_KEY"'"}}'
export AIRFLOW_CONN_ISELLER_API="${AIRFLOW_CONN_ISELLER_API:-$_sync_conn}"
# Airflow's own REST API, as whom failed sync tasks write their one-line task-instance note.
_sync_conn='{"conn_type":"http","host":"'"$AIRFLOW_URL"'","login":"'"$AIRFLOW_ADMIN_USER"'",'
_sync_conn+='"password":"'"$AIRFLOW_ADMIN_PASSWORD"'"}'
export AIRFLOW_CONN_AIRFLOW_API="${AIRFLOW_CONN_AIRFLOW_API:-$_sync_conn}"
unset _sync_conn

# --- tests ----------------------------------------------------------------------------------------
# tests/conftest.py creates throwaway databases on this server (the airflow role is a superuser).
export SYNC_TEST_DSN="${SYNC_TEST_DSN:-postgresql://airflow:airflow@127.0.0.1:$SYNC_PG_PORT/postgres}"
