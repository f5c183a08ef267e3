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

# shellcheck source=scripts/stack_run.sh
. "$REPO/scripts/stack_run.sh"
stack_run test "$ARTIFACTS/logs"

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
