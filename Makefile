# iSeller <-> Accurate Online sync: set up and run the project on a fresh machine.
#
#   make demo    everything (venv, PostgreSQL, sandboxes, Airflow), seeded, DAGs unpaused; Ctrl-C stops it
#   make test    the same stack, then the whole test suite (junit XML in test-artifacts/)
#   make up      the demo stack in the background (logs and pid files in .local/); make down stops it
#   EXECUTOR=celery  the Celery lane of demo/up/test: Redis, WORKERS=2 Celery workers, FAB auth (soak: local only)
#   make soak    the stack under a mixed, hostile workload with faults and kills (SOAK_DOCS=2000 SOAK_FAULTS=0.10)
#   make lint    ruff + mypy          make bench   bench/run_all.py          make clean   local state
#   make pins    re-resolve requirements*.in into the exact pins of requirements*.txt (docs/dependencies.md)
#
# Ports and secrets: see scripts/env.sh (AIRFLOW_PORT=8080, ACCURATE_SANDBOX_PORT=8181,
# ISELLER_SANDBOX_PORT=8182, SYNC_PG_PORT=5433, ...). Extra pytest arguments: make test PYTEST_ARGS="-k x".

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
export VENV
# The lane: EXECUTOR=local (LocalExecutor, the default) or EXECUTOR=celery (Redis, WORKERS Celery
# workers, FAB; docs/local-stack.md). Both reach every script through the environment.
EXECUTOR ?= local
WORKERS ?= 2
export EXECUTOR WORKERS
# First Python >= 3.11 found (override: make venv PYTHON=/path/to/python3.12).
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	  if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; \
	  then command -v $$p; break; fi; done)
STAMP := $(VENV)/.requirements.stamp
PYTEST_ARGS ?=
# Extra pip-compile arguments for make pins, e.g. PINS_ARGS="--upgrade-package celery".
PINS_ARGS ?=

.PHONY: help venv pins demo up down status test soak browser lint bench clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

# The runtime pins plus the development tools. Re-installs only when either file changes (or the
# virtualenv is missing or too old). The Docker image installs requirements.txt alone.
$(STAMP): requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: Python 3.11 or newer not found (looked for python3.11, python3.12, python3.13, python3)." >&2; \
	  echo "Install it, or run: make venv PYTHON=/path/to/python3.11" >&2; exit 1; fi
	@if [ -x "$(VENV)/bin/python" ] && ! "$(VENV)/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  echo "$(VENV) uses a Python older than 3.11: recreating it"; rm -rf "$(VENV)"; fi
	@if [ ! -x "$(VENV)/bin/python" ]; then \
	  echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"; "$(PYTHON)" -m venv "$(VENV)"; fi
	@echo "installing requirements.txt and requirements-dev.txt into $(VENV)"
	@start=$$SECONDS; \
	  "$(VENV)/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q \
	    -r requirements.txt -r requirements-dev.txt 2>&1 \
	    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; \
	  echo "requirements installed in $$((SECONDS - start))s"
	@touch "$@"

# requirements.in -> requirements.txt, then requirements-dev.in -> requirements-dev.txt (which is
# constrained by requirements.txt). Pins that still fit are kept; PINS_ARGS="--upgrade" moves all.
pins: venv
	@export CUSTOM_COMPILE_COMMAND="make pins"; \
	  for f in requirements requirements-dev; do \
	    echo "resolving $$f.in -> $$f.txt"; \
	    "$(VENV)/bin/pip-compile" --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
	      $(PINS_ARGS) --output-file "$$f.txt" "$$f.in" 2>&1 \
	      | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; \
	  done
	@echo "pins written: run make venv (or make test) to install them"

demo: venv
	@bash scripts/demo.sh

up: venv
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down

status:
	@bash scripts/stack.sh status

test: venv browser
	@bash scripts/test.sh $(PYTEST_ARGS)

# Verdict from both sandboxes; exits non-zero on any duplicate, lost or unexplained document (docs/soak.md).
SOAK_DOCS ?= 2000
SOAK_FAULTS ?= 0.10
soak: venv
	@SOAK_DOCS="$(SOAK_DOCS)" SOAK_FAULTS="$(SOAK_FAULTS)" EXECUTOR="$(EXECUTOR)" bash scripts/soak.sh

# Debian's Chromium for the browser tests; never fails the build (warns instead).
browser:
	@bash scripts/install-browser.sh

# Runs both linters, then fails if either found something.
lint: venv
	@rc=0; $(VENV)/bin/ruff check . || rc=1; \
	  dirs=$$(for d in include plugins; do if [ -n "$$(find $$d -name '*.py' 2>/dev/null | head -n 1)" ]; then echo $$d; fi; done); \
	  if [ -n "$$dirs" ]; then $(VENV)/bin/mypy $$dirs || rc=1; fi; \
	  exit $$rc

bench: venv
	@set -e; . scripts/env.sh; "$$VENV/bin/python" bench/run_all.py

clean:
	@if [ -x "$(VENV)/bin/python" ]; then bash scripts/stack.sh down; fi
	@if [ -L .local/pg ]; then rm -rf "$$(readlink -f .local/pg)"; fi
	rm -rf .local test-artifacts .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
