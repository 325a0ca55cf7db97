# Shipyard: the README's commands. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)
DATA_DIR ?= .data
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test test-unit test-integration bench lint compat-venv clean

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet uv; fi
	@uv venv --quiet --allow-existing -p 3.11 $(VENV) 2>/dev/null || uv venv --quiet --allow-existing $(VENV)
	uv pip install --quiet -p $(PY) -e '.[test]' -e './sdk[progress]'
	@touch $@

install: $(VENV)/.installed  ## install the service, the SDK and the test tools into .venv

run: install  ## start the platform on its embedded defaults
	$(VENV)/bin/shipyard serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: install  ## run every test (unit, integration with real servers and runners, compat)
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

bench: install  ## benchmarks; each prints its baseline and the ratio
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(DATA_DIR) .pytest_cache test-output
