#!/usr/bin/env bash
# Keep one service of the local stack running (started by scripts/stack.sh, not by hand).
#
#   scripts/supervise.sh [--liveness COMPONENT] NAME COMMAND...
#
# --liveness COMPONENT (scheduler, triggerer, dag_processor): also restart COMMAND when it runs but
# Airflow's health endpoint keeps calling COMPONENT unhealthy (no heartbeat), e.g. a scheduler that
# lost its database and now waits for its running tasks before exiting. Checked every
# SUPERVISE_LIVENESS_INTERVAL [15] s once the run is SUPERVISE_LIVENESS_GRACE [180] s old; after
# SUPERVISE_LIVENESS_FAILURES [4] unhealthy answers in a row: SIGTERM, SIGKILL 30 s later. No answer
# from the API server is no verdict.
#
# Runs COMMAND; when it exits without being asked to (crash, lost database, kill -9), logs the exit
# and starts it again after a pause that doubles on each quick failure (1, 2, 4, ... up to
# SUPERVISE_MAX_DELAY [30] seconds) and starts again at 1 second once a run lasted a minute.
# Stops for good on SIGTERM/SIGINT/SIGHUP (forwarded to COMMAND) or when $SYNC_RUN_DIR/NAME.stop
# exists (scripts/stack.sh down writes it).
#
# Files in $SYNC_RUN_DIR: NAME.child (pid of the running COMMAND), NAME.restarts
# ("<count> <UTC time> <how the last run ended>"). Messages go to stdout (the service's log).
set -uo pipefail

liveness=""
if [ "${1:-}" = "--liveness" ]; then
    liveness="${2:?--liveness needs a component}"
    shift 2
fi
name="${1:?usage: supervise.sh [--liveness COMPONENT] NAME COMMAND...}"
shift
[ "$#" -gt 0 ] || { echo "usage: supervise.sh [--liveness COMPONENT] NAME COMMAND..." >&2; exit 2; }
live_interval="${SUPERVISE_LIVENESS_INTERVAL:-15}"
live_grace="${SUPERVISE_LIVENESS_GRACE:-180}"
live_failures="${SUPERVISE_LIVENESS_FAILURES:-4}"
health_py="$(dirname "${BASH_SOURCE[0]}")/health.py"
python="${VENV:+$VENV/bin/python}"
[ -n "$python" ] && [ -x "$python" ] || python=python3
run_dir="${SYNC_RUN_DIR:?SYNC_RUN_DIR is not set (source scripts/env.sh)}"
max_delay="${SUPERVISE_MAX_DELAY:-30}"
child_file="$run_dir/$name.child"
restarts_file="$run_dir/$name.restarts"
stop_file="$run_dir/$name.stop"

say() { printf '[supervise %s] %s %s\n' "$name" "$(date -u +%FT%TZ)" "$*" || true; }

child=""
sleeper=""
stopping=0
on_stop() {
    stopping=1
    if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
    if [ -n "$sleeper" ]; then kill -TERM "$sleeper" 2>/dev/null || true; fi
}
trap on_stop TERM INT HUP

# Wait for the command to end (sets rc). With --liveness, look at its health every few seconds and
# stop it when it hangs.
unhealthy_stop=""
wait_child() {
    local fails=0 killed_at="" next=$((SECONDS + live_grace))
    unhealthy_stop=""
    if [ -n "$liveness" ]; then
        while kill -0 "$child" 2>/dev/null; do
            sleep 2 &
            sleeper=$!
            wait "$sleeper" 2>/dev/null
            sleeper=""
            if [ "$stopping" = 1 ] || ! kill -0 "$child" 2>/dev/null; then break; fi
            if [ -n "$killed_at" ]; then
                if [ $((SECONDS - killed_at)) -ge 30 ]; then kill -KILL "$child" 2>/dev/null || true; fi
                continue
            fi
            [ "$SECONDS" -ge "$next" ] || continue
            next=$((SECONDS + live_interval))
            if "$python" "$health_py" alive "$liveness" >/dev/null 2>&1; then
                fails=0
                continue
            fi
            fails=$((fails + 1))
            if [ "$fails" -ge "$live_failures" ]; then
                unhealthy_stop="Airflow reported $liveness unhealthy $fails times in a row"
                say "$unhealthy_stop although its process runs: stopping it (SIGTERM, SIGKILL in 30s)"
                kill -TERM "$child" 2>/dev/null || true
                killed_at=$SECONDS
            fi
        done
    fi
    # `wait` returns early when a signal arrives; wait again until the command has really ended.
    while :; do
        wait "$child"
        rc=$?
        kill -0 "$child" 2>/dev/null || break
    done
}

restarts=0
delay=1
while [ "$stopping" = 0 ] && [ ! -e "$stop_file" ]; do
    started=$SECONDS
    "$@" &
    child=$!
    printf '%s\n' "$child" >"$child_file"
    wait_child
    child=""
    rm -f "$child_file"
    if [ "$stopping" = 1 ] || [ -e "$stop_file" ]; then
        say "stopped (exit code $rc)"
        break
    fi
    ran=$((SECONDS - started))
    if [ "$ran" -ge 60 ]; then delay=1; fi
    if [ -n "$unhealthy_stop" ]; then how="unhealthy, stopped by the supervisor"
    elif [ "$rc" -gt 128 ]; then how="killed by signal $((rc - 128))"
    else how="exit code $rc"; fi
    restarts=$((restarts + 1))
    printf '%s %s %s\n' "$restarts" "$(date -u +%FT%TZ)" "$how" >"$restarts_file"
    say "exited unexpectedly ($how) after ${ran}s; restart #$restarts in ${delay}s"
    sleep "$delay" &
    sleeper=$!
    wait "$sleeper" 2>/dev/null
    sleeper=""
    delay=$((delay * 2))
    if [ "$delay" -gt "$max_delay" ]; then delay="$max_delay"; fi
done
rm -f "$child_file"
