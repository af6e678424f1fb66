# Two commands do all set-up on a fresh Debian bookworm machine:
#   make demo   converge the embedded inventory (inventories/local) on this host
#   make test   lint + unit + integration tests against real services
# Every target is idempotent; a second run only checks and moves on.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

REPO        := $(CURDIR)
VENV        := $(REPO)/.venv
SYSTEM_PY   := /usr/bin/python3
COLLECTIONS := $(REPO)/.build/collections
LINK        := $(COLLECTIONS)/ansible_collections/openclaw/standalone
# Survives fresh clones on the same machine (rootfs tarball, sanity venv).
CACHE       ?= $(HOME)/.cache/openclaw-standalone

export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export OPENCLAW_CACHE_DIR := $(CACHE)

# Debian packages: the controller venv's Python, the services the tests run
# for real, the tools the test images are built with, the ones the tests run
# skill recipes (jq) and gateway hooks (nodejs) with, and the Python
# libraries the modules import on a managed server (this host, in the demo).
DEBIAN_PACKAGES := python3 python3-venv python3-docker python3-psycopg2 python3-requests \
	git ca-certificates curl jq openssl tar nodejs \
	postgresql postgresql-client nginx pebble certbot python3-certbot-dns-rfc2136 bind9 debootstrap shellcheck

PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: host
host: ## Install missing Debian packages (apt-get)
	@tools/ensure-debian-packages.sh $(DEBIAN_PACKAGES)
	@command -v docker >/dev/null || tools/ensure-debian-packages.sh docker.io

$(VENV)/.installed: requirements/controller.txt requirements/test.txt requirements/constraints.txt
	@test -x $(VENV)/bin/python || $(SYSTEM_PY) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements/test.txt -c requirements/constraints.txt
	@touch $@
	@echo "venv: $(VENV) ready"

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the pinned toolchain

.PHONY: collection
collection: ## Make the checkout importable as openclaw.standalone
	@mkdir -p $(dir $(LINK))
	@test -L $(LINK) || ln -sfn ../../../.. $(LINK)

.PHONY: images
images: host ## Build (or reuse) the offline Docker test images
	@tests/images/build.sh

.PHONY: setup
setup: host venv collection

.PHONY: lint
lint: setup ## ansible-lint (production), ruff, yamllint, ansible-test sanity, galaxy-importer, antsibull-docs lint
	ansible-lint --profile production
	ruff check .
	ruff format --check .
	yamllint --strict .
	tools/ansible-test-sanity.sh
	tools/collection-docs-check.sh

.PHONY: sanity
sanity: setup ## ansible-test sanity only
	tools/ansible-test-sanity.sh

.PHONY: unit
unit: setup ## Unit tests
	pytest tests/unit $(PYTEST_ARGS)

.PHONY: integration
integration: setup images ## Integration tests (real PostgreSQL, nginx, Pebble, Docker)
	pytest tests/integration $(PYTEST_ARGS)

.PHONY: molecule
molecule: setup images ## Molecule scenarios (full site with testinfra, tenant lifecycle) on this host
	molecule test --all

.PHONY: test
test: lint unit integration molecule bench-check ## Everything CI runs

.PHONY: demo
demo: setup images ## Converge inventories/local on this host
	tools/demo.sh

# The benchmarks' own venv: the naive baseline needs the `ansible` package's
# collections and the Mitogen evaluation needs mitogen; neither belongs in the
# venv the collection is tested with.
BENCH_VENV := $(REPO)/.build/bench-venv
BENCH_ARGS ?=
BENCH_RESULTS := bench/results/$(shell date -u +%Y-%m-%d).json

$(BENCH_VENV)/.installed: requirements/bench.txt requirements/controller.txt requirements/constraints.txt
	@test -x $(BENCH_VENV)/bin/python || $(SYSTEM_PY) -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements/bench.txt -c requirements/constraints.txt
	@touch $@

.PHONY: bench
bench: setup images $(BENCH_VENV)/.installed ## Benchmarks against the baselines; bench/results/<date>.json and docs/benchmarks.md (BENCH_ARGS=--sizes 1,10)
	$(BENCH_VENV)/bin/python bench/run.py --output $(BENCH_RESULTS) $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/report.py $(BENCH_RESULTS)

.PHONY: bench-check
bench-check: setup images $(BENCH_VENV)/.installed ## The benchmark harness runs: everything once on one tenant, report into .build/
	$(BENCH_VENV)/bin/python bench/run.py --quick --output .build/bench-check/results.json
	$(BENCH_VENV)/bin/python bench/report.py .build/bench-check/results.json --output .build/bench-check/benchmarks.md

.PHONY: docs
docs: setup ## Regenerate the README's inventory reference from the roles' argument specs
	python tools/inventory_reference.py --write

.PHONY: build
build: setup ## Build the collection tarball into .build/dist
	@mkdir -p .build/dist
	ansible-galaxy collection build --force --output-path .build/dist .

.PHONY: clean
clean: ## Remove build output (keeps .venv and the rootfs cache)
	rm -rf .build tests/output .pytest_cache .ruff_cache
