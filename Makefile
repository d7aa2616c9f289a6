# Recall Alerts: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest

.PHONY: docs help install infra-up infra-down infra-status run test test-unit test-integration test-e2e schemas check-schemas bench clean

help:
	@echo "make run          infrastructure + migrations + topics + five services + demo data (Ctrl-C stops)"
	@echo "make test         the whole test suite (starts the infrastructure it needs)"
	@echo "make infra-up     Kafka, PostgreSQL and the SMTP sink, started locally"
	@echo "make infra-down   stop them"
	@echo "make test-unit | test-integration | test-e2e    one layer of the suite"
	@echo "make schemas      regenerate the committed JSON Schemas of the events and docs/asyncapi.json"
	@echo "make docs         schemas + the OpenAPI documents in docs/openapi/"

# uv builds the workspace from uv.lock; installed with pip when missing.
install: .venv/.installed
.venv/.installed: uv.lock docs/openapi/package-lock.json pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml)
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --frozen
	@if command -v npm >/dev/null 2>&1; then cd docs/openapi && npm ci --no-audit --no-fund --silent; fi
	@touch $@

infra-up: install
	PYTHON=$(CURDIR)/$(PY) deploy/infra.sh up

infra-down:
	deploy/infra.sh down

infra-status:
	deploy/infra.sh status

run: infra-up
	$(PY) deploy/devstack.py run

test: infra-up
	$(PYTEST)

test-unit: install
	$(PYTEST) -m "not integration and not e2e"

test-integration: infra-up
	$(PYTEST) -m integration

test-e2e: infra-up
	$(PYTEST) -m e2e

schemas: install
	$(PY) -m recall_shared.schemas write

docs: schemas
	$(PY) docs/openapi/export.py

bench: infra-up
	$(PY) bench/outbox_relay.py

clean:
	rm -rf .venv .pytest_cache test-artifacts
