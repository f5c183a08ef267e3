#!/usr/bin/env bash
# docker-compose.yaml's airflow-init, after `airflow db migrate`: the FAB users and roles.
# Copied into the image as /opt/airflow/bin/fab_users.sh. Idempotent (every start of airflow-init).
#
#   ADMIN_USER / ADMIN_PASSWORD   the UI login (role Admin). ADMIN_PASSWORD empty: an existing admin
#                                 keeps its password; a new one gets a random password, printed once
#   NOTES_USER / NOTES_PASSWORD   the service account of the airflow_api connection (task-instance
#                                 notes): role SyncOperator only; its password is set every time
#
# Then the roles SyncOperator and SyncViewer (python -m include.iseller_accurate.roles). The local
# Celery lane does the same in scripts/stack.sh (fab_setup) with scripts/fab_roles.py.
set -euo pipefail
: "${ADMIN_USER:?}" "${NOTES_USER:?}"
[ -n "${NOTES_PASSWORD:-}" ] || { echo "AIRFLOW_NOTES_PASSWORD is empty: set it in .env" >&2; exit 1; }
[ "$ADMIN_USER" != "$NOTES_USER" ] || { echo "AIRFLOW_ADMIN_USER and AIRFLOW_NOTES_USER must differ" >&2; exit 1; }

python -m include.iseller_accurate.roles

user_exists() {
    airflow users list --output json 2>/dev/null \
        | python -c 'import json, sys; sys.exit(0 if any(u.get("username") == sys.argv[1] for u in json.load(sys.stdin)) else 1)' "$1"
}

if user_exists "$ADMIN_USER"; then
    if [ -n "${ADMIN_PASSWORD:-}" ]; then
        airflow users reset-password --username "$ADMIN_USER" "--password=$ADMIN_PASSWORD" >/dev/null
    fi
else
    password="${ADMIN_PASSWORD:-}"
    generated=0
    if [ -z "$password" ]; then
        password="$(python -c 'import secrets; print(secrets.token_urlsafe(18))')"
        generated=1
    fi
    airflow users create --username "$ADMIN_USER" "--password=$password" --role Admin \
        --firstname Sync --lastname Admin --email "$ADMIN_USER@localhost" >/dev/null
    if [ "$generated" = 1 ]; then
        echo "Airflow login created: $ADMIN_USER / $password (shown once; set AIRFLOW_ADMIN_PASSWORD to choose it)"
    fi
fi

if user_exists "$NOTES_USER"; then
    airflow users reset-password --username "$NOTES_USER" "--password=$NOTES_PASSWORD" >/dev/null
else
    airflow users create --username "$NOTES_USER" "--password=$NOTES_PASSWORD" --role SyncOperator \
        --firstname Sync --lastname Notes --email "$NOTES_USER@localhost" >/dev/null
fi
echo "FAB: $ADMIN_USER (Admin), $NOTES_USER (SyncOperator), roles SyncOperator and SyncViewer set up"
