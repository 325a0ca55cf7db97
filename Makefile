# Shipyard: the README's commands. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)
DATA_DIR ?= .data
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: openapi install ui-assets run test test-postgres-s3 test-unit test-integration bench lint compat-venv clean

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet uv; fi
	@uv venv --quiet --allow-existing -p 3.11 $(VENV) 2>/dev/null || uv venv --quiet --allow-existing $(VENV)
	uv pip install --quiet -p $(PY) -e '.[test]' -e './sdk[progress]'
	@touch $@

# The web UI's chart library (uPlot), from npm by its lock file; served from node_modules.
UI_DIR := service/shipyard_service/ui
$(UI_DIR)/node_modules/.package-lock.json: $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd $(UI_DIR) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; \
	else echo "npm not found: the web UI runs without its charts (apt-get install npm)"; fi

ui-assets: $(UI_DIR)/node_modules/.package-lock.json  ## the web UI's npm assets

install: $(VENV)/.installed ui-assets  ## install the service, the SDK, the test tools and UI assets

run: install  ## start the platform on its embedded defaults
	$(VENV)/bin/shipyard serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: install  ## run every test (unit, integration with real servers and runners, compat)
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-postgres-s3

# The integration suite again, on PostgreSQL and an S3-protocol data store (both started on
# loopback by tests/backends). test_secrets_at_rest reads the SQLite file itself.
# Tests marked slow (a 2-minute cron wait, an apt install) ran in the default pass already.
test-postgres-s3: install  ## integration tests on PostgreSQL + S3 (moto)
	SHIPYARD_TEST_BACKEND=postgres-s3 $(PY) -m pytest -q -ra tests/integration -m "not slow" $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

bench: install  ## benchmarks; each prints its baseline and the ratio
	$(PY) bench/run.py

openapi: install  ## refresh the committed OpenAPI document (docs/openapi.json)
	$(PY) -c "import json, tempfile; from tests.unit.test_openapi import current_spec; \
	from pathlib import Path; print(json.dumps(current_spec(Path(tempfile.mkdtemp())), indent=2, sort_keys=True))" > docs/openapi.json

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache test-output
