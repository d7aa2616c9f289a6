# Recall Alerts: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest

.PHONY: i18n deps-containers image test-kube-play test-two-instances k8s-manifests lint-tests docs help deps install infra-up infra-down infra-status run test test-unit test-integration test-e2e lint schemas check-schemas bench clean
# uv from PATH, else the private copy `make deps` puts in .cache/uv-venv (expanded when a recipe runs).
UV = $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.cache/uv-venv/bin/uv)

help:
	@echo "make run          infrastructure + migrations + topics + five services + demo data (Ctrl-C stops)"
	@echo "make test         the whole test suite (starts the infrastructure it needs)"
	@echo "make deps         Debian packages and uv (both commands above run it first; safe to repeat)"
	@echo "make lint         ruff check, ruff format --check, mypy"
	@echo "make infra-up     Kafka, PostgreSQL and the SMTP sink, started locally"
	@echo "make infra-down   stop them"
	@echo "make test-unit | test-integration | test-e2e    one layer of the suite"
	@echo "make schemas      regenerate the committed JSON Schemas of the events and docs/asyncapi.json"
	@echo "make docs         schemas + the OpenAPI documents in docs/openapi/"
	@echo "make image        the service image localhost/recall-alerts (podman; Containerfile)"
	@echo "make test-kube-play   the Helm chart played with podman kube play + the end-to-end test"
	@echo "make k8s-manifests    deploy/k8s/recall-alerts.yaml from the Helm chart (helm template)"
	@echo "make test-two-instances   two instances of each service on three brokers, killed mid fan-out"
	@echo "make i18n         extract the pages' and notices' strings into their gettext catalogs (.pot, .po)"

# Debian packages and uv; idempotent (deploy/deps.sh says what it installs).
deps:
	@deploy/deps.sh

# deps, and podman, runc and debootstrap: the suite builds and runs the service image (make run needs none).
deps-containers:
	@RECALL_ALERTS_DEPS_CONTAINERS=1 deploy/deps.sh

# uv builds the workspace from uv.lock.
install: .venv/.installed
.venv/.installed: uv.lock docs/openapi/package-lock.json services/customer-api/tests/browser/package-lock.json pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml) | deps
	$(UV) sync --frozen
	@if command -v npm >/dev/null 2>&1; then cd docs/openapi && npm ci --no-audit --no-fund --silent; fi
	@if command -v npm >/dev/null 2>&1; then cd services/customer-api/tests/browser && npm ci --no-audit --no-fund --silent; fi
	@touch $@

infra-up: install
	PYTHON=$(CURDIR)/$(PY) deploy/infra.sh up

infra-down:
	deploy/infra.sh down

infra-status:
	deploy/infra.sh status

# devstack starts the infrastructure that is not running yet, and on Ctrl-C stops exactly that.
run: deps install
	$(PY) deploy/devstack.py run

# The slowest tests are listed at the end: CI's time budget is watched from them.
test: deps-containers infra-up
	$(PYTEST) --durations=30

test-unit: install
	$(PYTEST) -m "not integration and not e2e"

test-integration: deps-containers infra-up
	$(PYTEST) -m integration

test-e2e: infra-up
	$(PYTEST) -m e2e

# mypy once for the sources and scripts (files in pyproject), then once per test tree: each tree has its
# own conftest.py, and one run would see several modules named conftest.
TEST_TREES := shared/tests $(wildcard services/*/tests) tests
# The test trees mypy finds clean (all of them); `make lint` keeps them so. A new tree joins once
# `make lint-tests` shows it clean.
CLEAN_TEST_TREES := shared/tests services/recall-intake/tests services/purchase-matcher/tests \
	services/refund-logistics/tests services/customer-api/tests services/notifier/tests tests
# `make lint` (run by .ci/run): ruff lint and format, mypy on the sources and scripts and on the clean
# test trees; 0 findings.
lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) -m mypy
	@set -e; for tree in $(CLEAN_TEST_TREES); do echo "mypy $$tree"; $(PY) -m mypy "$$tree"; done

# Every test tree, the ones not clean yet included.
lint-tests: install
	@set -e; for tree in $(TEST_TREES); do echo "mypy $$tree"; $(PY) -m mypy "$$tree"; done

schemas: install
	$(PY) -m recall_shared.schemas write

# The committed schemas match the models (`make schemas` refuses to write a breaking change).
check-schemas: install
	$(PY) -m recall_shared.schemas check

docs: schemas
	$(PY) docs/openapi/export.py

# One image for the five services (Containerfile); the base is made with debootstrap unless BASE_IMAGE
# names one (docs/operations.md, Deployment).
image: deps-containers
	deploy/image/image.sh build

# deploy/k8s/recall-alerts.yaml: the Helm chart rendered with its default values (helm is built once into
# .cache/tools from the Go module proxy).
k8s-manifests: install
	$(PY) deploy/helm.py write-manifests

# The Helm chart played with podman kube play, and the walking skeleton against it (about 75 s once the
# image is built; not part of `make test`).
test-kube-play: deps-containers infra-up
	$(PYTEST) -m kube_play deploy/tests

# Two instances of each service on three local brokers; one of each killed during a fan-out.
test-two-instances: deps infra-up
	$(PYTEST) -m two_instances deploy/tests

# gettext catalogs (Babel): the msg(key, english) calls of each package's messages.py -> locale/messages.pot
# -> each language's messages.po (new strings arrive untranslated, changed ones fuzzy: the completeness
# tests fail until a translator fills them in). The .po files are compiled when a service loads them.
I18N_PACKAGES := shared/src/recall_shared services/customer-api/src/customer_api services/notifier/src/notifier
i18n: install
	@set -e; for pkg in $(I18N_PACKAGES); do \
	  .venv/bin/pybabel --quiet extract -F babel.cfg --no-default-keywords -k msg:1c,2 --no-location \
	    --omit-header -o $$pkg/locale/messages.pot $$pkg; \
	  .venv/bin/pybabel --quiet update -i $$pkg/locale/messages.pot -d $$pkg/locale --width 100 --ignore-obsolete \
	    --ignore-pot-creation-date --previous; \
	done

bench: infra-up
	$(PY) bench/outbox_relay.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache test-artifacts
