# tenantgate: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install tenantgate with its dev tools

test: $(STAMP) ## run the test suite on a throwaway PostgreSQL (nothing needs to be running)
	$(BIN)/pytest -q -n 2 --dist loadfile

test-pg15: $(STAMP) ## run the test suite on the system's PostgreSQL (Debian 15) instead
	TENANTGATE_TEST_PG=system $(BIN)/pytest -q -n 2 --dist loadfile

test-citus: $(STAMP) ## the gate on a Citus coordinator + 2 workers (needs citus.so: ../shared/citus/build.sh)
	TENANTGATE_TEST_CITUS=1 $(BIN)/pytest -q tests/citus

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check tenantgate tests bench migrations
	$(BIN)/mypy

demo: $(STAMP) ## the main job: embedded PostgreSQL + seeded tenants + the MCP mediator over HTTP
	$(BIN)/tenantgate demo

bench: $(STAMP) ## run the benchmarks and write docs/benchmarks.md (needs node/npm for Toolbox)
	$(BIN)/python bench/run_all.py

bench-smoke: $(STAMP) ## a seconds-long run of every benchmark (what CI runs inside make test)
	$(BIN)/python bench/run_all.py --smoke

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: help install test test-pg15 test-citus lint demo bench bench-smoke clean
