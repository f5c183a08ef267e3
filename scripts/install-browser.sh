#!/usr/bin/env bash
# Debian's Chromium + ChromeDriver for the browser tests (make test's `browser` prerequisite).
# Installs them when missing and we are root with apt-get; otherwise only warns. Never fails.
set -uo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
warn() { echo "[browser] WARNING: $*; the browser tests will be skipped" >&2; }
if [ "$(id -u)" -ne 0 ]; then
    warn "chromium is not installed and we are not root (install it: sudo apt-get install chromium chromium-driver)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    warn "chromium is not installed and apt-get is not available"
    exit 0
fi
echo "[browser] installing Debian's chromium and chromium-driver (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >/tmp/install-browser.log 2>&1; then
    tail -n 20 /tmp/install-browser.log >&2
    warn "apt-get could not install chromium"
fi
exit 0
