#!/usr/bin/env bash
# Sourced by scripts/test.sh and scripts/soak.sh: the start and stop around one run on the local stack.
#   stack_run TAG LOGS_DIR
# Starts the stack (scripts/stack.sh up) unless it is already running; when the script exits, copies
# the stack's logs to LOGS_DIR and stops the stack again, only if this run started it. The script's
# exit code is kept. A stack that does not start ends the script with exit code 3.

stack_run() {
    _STACK_RUN_TAG=$1
    _STACK_RUN_LOGS=$2
    _STACK_RUN_KEEP=0
    if bash "$REPO/scripts/stack.sh" status >/dev/null 2>&1; then
        _STACK_RUN_KEEP=1
        echo "[$_STACK_RUN_TAG] the stack is already running: using it, and leaving it running afterwards"
    fi
    trap _stack_run_finish EXIT
    trap 'exit 130' INT TERM HUP
    if ! bash "$REPO/scripts/stack.sh" up; then
        echo "[$_STACK_RUN_TAG] ERROR: the stack did not start; logs in $_STACK_RUN_LOGS" >&2
        exit 3
    fi
}

# shellcheck disable=SC2317  # run by the EXIT trap
_stack_run_finish() {
    local rc=$?
    rm -rf "$_STACK_RUN_LOGS"
    cp -r "$SYNC_LOG_DIR" "$_STACK_RUN_LOGS" 2>/dev/null || true
    if [ "$_STACK_RUN_KEEP" = 0 ]; then
        bash "$REPO/scripts/stack.sh" down || true
    fi
    exit "$rc"
}
