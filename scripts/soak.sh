#!/usr/bin/env bash
# `make soak`: start the stack if it is not running (scripts/stack.sh up), run the soak driver
# (scripts/soak.py) against it, stop the stack again (unless it was already running before), and exit
# with the driver's exit code (0 only when duplicates = lost = unexplained = 0).
#   SOAK_DOCS [2000]  SOAK_FAULTS [0.10]  EXECUTOR [local]  SOAK_SEED [1]  SOAK_TIMEOUT [10800 s]
# Report: test-artifacts/soak-report.json; the stack's logs are copied to test-artifacts/soak-logs/.
set -uo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO" || exit 1

ARTIFACTS="$REPO/test-artifacts"
mkdir -p "$ARTIFACTS"

# shellcheck source=scripts/stack_run.sh
. "$REPO/scripts/stack_run.sh"
stack_run soak "$ARTIFACTS/soak-logs"

"$VENV/bin/python" "$REPO/scripts/soak.py" \
    --docs "${SOAK_DOCS:-2000}" --faults "${SOAK_FAULTS:-0.10}" --executor "${EXECUTOR:-local}" \
    --report "$ARTIFACTS/soak-report.json"
