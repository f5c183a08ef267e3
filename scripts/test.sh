#!/usr/bin/env bash
# `make test`: start the stack (scripts/stack.sh up), run the whole test suite, stop the stack again
# (unless it was already running before), and exit with pytest's exit code.
#   scripts/test.sh [pytest args...]     no args: every test under tests/ (pyproject testpaths)
# junit XML: test-artifacts/junit.xml; the stack's logs are copied to test-artifacts/logs/.
set -uo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO" || exit 1

# SYNC_ARTIFACTS_DIR [test-artifacts]: where junit.xml and the logs go (.ci/run: one per lane).
ARTIFACTS="${SYNC_ARTIFACTS_DIR:-test-artifacts}"
case "$ARTIFACTS" in /*) ;; *) ARTIFACTS="$REPO/$ARTIFACTS" ;; esac
mkdir -p "$ARTIFACTS"

keep_running=0
if bash "$REPO/scripts/stack.sh" status >/dev/null 2>&1; then
    keep_running=1
    echo "[test] the stack is already running: using it, and leaving it running afterwards"
fi

# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
    local rc=$?
    rm -rf "$ARTIFACTS/logs"
    cp -r "$SYNC_LOG_DIR" "$ARTIFACTS/logs" 2>/dev/null || true
    if [ "$keep_running" = 0 ]; then
        bash "$REPO/scripts/stack.sh" down || true
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

if ! bash "$REPO/scripts/stack.sh" up; then
    echo "[test] ERROR: the stack did not start; logs in $ARTIFACTS/logs" >&2
    exit 3
fi

export SYNC_STACK_REQUIRED=1
start=$SECONDS
"$VENV/bin/python" -m pytest -p no:cacheprovider --junitxml="$ARTIFACTS/junit.xml" "$@"
rc=$?
echo "[test] pytest exited with $rc after $((SECONDS - start))s"
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
    for svc in scheduler api-server; do
        if [ -f "$SYNC_LOG_DIR/$svc.log" ]; then
            echo "----- last lines of $svc.log -----"
            tail -n 30 "$SYNC_LOG_DIR/$svc.log"
        fi
    done
fi
exit "$rc"
