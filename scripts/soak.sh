#!/usr/bin/env bash
# `make soak`: start the stack if it is not running (scripts/stack.sh up), run the soak driver
# (scripts/soak.py) against it, stop the stack again (unless it was already running before), and exit
# with the driver's exit code (0 only when duplicates = lost = unexplained = 0).
#   SOAK_DOCS [2000]  SOAK_FAULTS [0.10]  EXECUTOR [local]  SOAK_SEED [1]  SOAK_TIMEOUT [10800 s]
# Report: test-artifacts/soak-report.json; the stack's logs are copied to test-artifacts/soak-logs/.
set -uo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"

ARTIFACTS="$REPO/test-artifacts"
mkdir -p "$ARTIFACTS"

keep_running=0
if bash "$REPO/scripts/stack.sh" status >/dev/null 2>&1; then
    keep_running=1
    echo "[soak] the stack is already running: using it, and leaving it running afterwards"
fi

finish() {
    local rc=$?
    rm -rf "$ARTIFACTS/soak-logs"
    cp -r "$SYNC_LOG_DIR" "$ARTIFACTS/soak-logs" 2>/dev/null || true
    if [ "$keep_running" = 0 ]; then
        bash "$REPO/scripts/stack.sh" down || true
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

if ! bash "$REPO/scripts/stack.sh" up; then
    echo "[soak] ERROR: the stack did not start; logs in $ARTIFACTS/soak-logs" >&2
    exit 3
fi

"$VENV/bin/python" "$REPO/scripts/soak.py" \
    --docs "${SOAK_DOCS:-2000}" --faults "${SOAK_FAULTS:-0.10}" --executor "${EXECUTOR:-local}" \
    --report "$ARTIFACTS/soak-report.json"
