#!/usr/bin/env bash
# `make demo`: the whole stack, seeded, DAGs unpaused; stays in the foreground until Ctrl-C,
# then stops everything.
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

stopping=0
stop_stack() {
    if [ "$stopping" = 1 ]; then return; fi
    stopping=1
    # Finish the clean-up even on a second Ctrl-C or when the terminal/pipe is gone.
    trap '' INT TERM HUP PIPE
    set +e
    printf '\n[demo] stopping the stack...\n' 2>/dev/null
    bash "$REPO/scripts/stack.sh" down
}
trap stop_stack EXIT
trap 'exit 130' INT TERM HUP

bash "$REPO/scripts/stack.sh" up --unpause
# The go-live preflight, once (read-only; its result never stops the demo).
"$VENV/bin/python" "$REPO/scripts/run_preflight.py" || true

cat <<BANNER

================================================================================
 iSeller -> Accurate sync demo is running

   Airflow UI        $AIRFLOW__API__BASE_URL
   login             $(sync_login_hint)
   Airflow REST API  $AIRFLOW_URL/api/v2   (token: POST $AIRFLOW_URL/auth/token)
   Accurate sandbox  $ACCURATE_SANDBOX_URL
   iSeller sandbox   $ISELLER_SANDBOX_URL
   PostgreSQL        postgresql://airflow:airflow@127.0.0.1:$SYNC_PG_PORT/sync_db
   logs              $SYNC_LOG_DIR/

 Press Ctrl-C to stop everything.
================================================================================
BANNER

# Wait for Ctrl-C; warn once if a service dies meanwhile.
warned=""
while :; do
    sleep 5 &
    wait $! || true
    for pidfile in "$SYNC_RUN_DIR"/*.pid; do
        [ -e "$pidfile" ] || continue
        name="$(basename "$pidfile" .pid)"
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null && [[ " $warned " != *" $name "* ]]; then
            echo "[demo] WARNING: $name has stopped; see $SYNC_LOG_DIR/$name.log" >&2
            warned="$warned $name"
        fi
    done
done
