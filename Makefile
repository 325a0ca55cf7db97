# Shipyard: the README's commands. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# uv, pinned, in the project's own tool folder: never installed into the system Python.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
DATA_DIR ?= .data
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: openapi install install-run ui-assets sandbox-tool run test test-postgres-s3 test-unit bench lint clean

$(UV):
	@echo "==> uv $(UV_VERSION) into $(TOOLS)/ (once)"
	@$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --disable-pip-version-check "uv==$(UV_VERSION)"

# What running needs: the service and the SDK. uv prints its progress while it works.
$(VENV)/.installed-run: pyproject.toml sdk/pyproject.toml | $(UV)
	@echo "==> the service and the SDK into $(VENV)/ (what \`make run\` needs)"
	@$(UV) venv --quiet --allow-existing -p 3.11 $(VENV) 2>/dev/null || $(UV) venv --quiet --allow-existing $(VENV)
	$(UV) pip install -p $(PY) -e . -e './sdk[progress,fast]'
	@touch $@

# The test tools (pytest, moto, playwright, ruff, ...): only `make test` and friends.
$(VENV)/.installed-test: $(VENV)/.installed-run
	@echo "==> the test tools into $(VENV)/ (what \`make test\` needs)"
	$(UV) pip install -p $(PY) -e '.[test]' -e './sdk[progress,fast]'
	@touch $@

# The web UI's chart library (uPlot), from npm by its lock file; served from node_modules.
UI_DIR := service/shipyard_service/ui
$(UI_DIR)/node_modules/.package-lock.json: $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd $(UI_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; \
	else echo "npm not found: the web UI runs without its charts (apt-get install npm)"; fi

ui-assets: $(UI_DIR)/node_modules/.package-lock.json  ## the web UI's npm assets

install-run: $(VENV)/.installed-run ui-assets  ## what running needs: the service, the SDK, UI assets

install: install-run $(VENV)/.installed-test  ## and the test tools

# The step code sandbox's tool (docs/sandbox.md): Debian's bubblewrap, when root can install it.
sandbox-tool:  ## install bubblewrap (apt-get, waiting for the dpkg lock)
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 bubblewrap >/dev/null \
	    || { apt-get update -qq -o DPkg::Lock::Timeout=300 && apt-get install -y -qq \
	         --no-install-recommends -o DPkg::Lock::Timeout=300 bubblewrap >/dev/null; }; \
	  else echo "bwrap not found: step code runs without a sandbox (apt-get install bubblewrap)"; fi; \
	fi

run: install-run sandbox-tool  ## start the platform on its embedded defaults
	$(VENV)/bin/shipyard serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

# The PostgreSQL + S3 pass runs beside the default one: both mostly wait on servers and
# runners (load ~1 on 2 cores), so together they take about the default pass's time. Its
# output is printed after the default pass's; either failing fails the target.
test: install  ## run every test (unit, integration with real servers and runners, compat)
	@log=$$(mktemp); \
	$(MAKE) --no-print-directory test-postgres-s3 > "$$log" 2>&1 & beside=$$!; \
	$(PY) -m pytest -q -ra $(PYTEST_ARGS); default=$$?; \
	wait $$beside; beside=$$?; \
	echo "==> the PostgreSQL + S3 pass (ran beside the default one)"; cat "$$log"; rm -f "$$log"; \
	if [ $$default -ne 0 ]; then exit $$default; fi; exit $$beside

# The integration suite again, on PostgreSQL and an S3-protocol data store (both started on
# loopback by tests/backends). test_secrets_at_rest reads the SQLite file itself.
# Tests marked slow (a 2-minute cron wait, an apt install) ran in the default pass already.
test-postgres-s3: install  ## integration tests on PostgreSQL + S3 (moto)
	SHIPYARD_TEST_BACKEND=postgres-s3 $(PY) -m pytest -q -ra tests/integration -m "not slow" $(PYTEST_ARGS)

test-unit: install  ## the fast pass: unit tests and the in-process app tests (tests/app)
	$(PY) -m pytest -q tests/unit tests/app $(PYTEST_ARGS)

bench: install  ## benchmarks; each prints its baseline and the ratio
	$(PY) bench/run.py

openapi: install  ## refresh the committed OpenAPI document (docs/openapi.json)
	$(PY) -c "import json, tempfile; from tests.unit.test_openapi import current_spec; \
	from pathlib import Path; print(json.dumps(current_spec(Path(tempfile.mkdtemp())), indent=2, sort_keys=True))" > docs/openapi.json

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(TOOLS) $(DATA_DIR) .pytest_cache test-output
