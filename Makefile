# bigdata.stack developer commands. `make up` deploys the dev stack; `make test` proves everything.
# Each target installs what it needs first (make setup is idempotent), so on a fresh machine every
# command below is one command.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ENV ?= dev
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export BIGDATA_CACHE_DIR ?= $(HOME)/.cache/bigdata-stack
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
SIM_NAME ?= bigdata-sim
SIM_KUBECONFIG := $(BIGDATA_CACHE_DIR)/kwok/clusters/$(SIM_NAME)/kubeconfig.yaml
# The node agent of the simulated cluster (Kafka and HDFS pods run as real processes, needs root):
# auto = on when run as root. `make up`'s cluster is $(SIM_NAME); make test and make bench use a
# cluster of their own without the agent, so they never touch what make up deployed.
SIM_RUNTIME ?= auto
sim_runtime = $(if $(filter auto,$(1)),$(shell [ "$$(id -u)" = 0 ] && echo true || echo false),$(1))
TEST_SIM_NAME := bigdata-test
TEST_KUBECONFIG := $(BIGDATA_CACHE_DIR)/kwok/clusters/$(TEST_SIM_NAME)/kubeconfig.yaml
PLAYBOOK := $(BIN)/ansible-playbook
PYTEST := $(BIN)/pytest
# pytest-xdist workers of make test; the shared simulated cluster's tests stay one at a time (tests/conftest.py).
TEST_WORKERS ?= 2

.PHONY: help setup up down sim-up sim-down status logs test test-unit test-render test-molecule lint bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## Create the virtualenv with every pinned dependency (idempotent)
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

up: setup ## Deploy the dev stack (uses your kubeconfig's cluster, else kind, else the simulated cluster)
	@eval "$$($(BIN)/python tools/select_cluster.py --env $(ENV))"; \
	$(PLAYBOOK) site.yml -i inventories/$(ENV) -e bigdata_kubeconfig="$$BIGDATA_KUBECONFIG" "$${BIGDATA_EXTRA_ARGS[@]}"

down: setup ## Remove the dev stack (data is kept; add ARGS='-e bigdata_teardown_delete_data=true')
	@eval "$$($(BIN)/python tools/select_cluster.py --env $(ENV) --existing)"; \
	$(PLAYBOOK) teardown.yml -i inventories/$(ENV) -e bigdata_kubeconfig="$$BIGDATA_KUBECONFIG" $(ARGS)

status: setup ## Show what runs
	@eval "$$($(BIN)/python tools/select_cluster.py --env $(ENV) --existing)"; \
	$(PLAYBOOK) playbooks/status.yml -i inventories/$(ENV) -e bigdata_kubeconfig="$$BIGDATA_KUBECONFIG"

logs: setup ## Collect every container's log of the dev stack into ./logs/<time> (ARGS='-e bigdata_logs_dir=DIR')
	@eval "$$($(BIN)/python tools/select_cluster.py --env $(ENV) --existing)"; \
	$(PLAYBOOK) playbooks/logs.yml -i inventories/$(ENV) -e bigdata_kubeconfig="$$BIGDATA_KUBECONFIG" $(ARGS)

sim-up: setup ## Start the simulated cluster shaped like inventories/$(ENV) (builds it once; SIM_RUNTIME=false: no node agent)
	$(PLAYBOOK) playbooks/simcluster.yml -i inventories/$(ENV) -e simcluster_name=$(SIM_NAME) \
	  -e simcluster_runtime=$(call sim_runtime,$(SIM_RUNTIME))

sim-down: setup ## Remove the simulated cluster
	$(PLAYBOOK) playbooks/simcluster.yml -i inventories/$(ENV) -e simcluster_name=$(SIM_NAME) -e simcluster_state=absent

test: setup ## Everything: lint, sanity, then one pytest run (unit, render, bad input, simulated cluster, Molecule)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory sim-up ENV=dev SIM_NAME=$(TEST_SIM_NAME) SIM_RUNTIME=false
	BIGDATA_TEST_KUBECONFIG=$(TEST_KUBECONFIG) $(PYTEST) -n $(TEST_WORKERS) --durations=30 tests

test-unit: setup ## Only the unit tests (no cluster)
	$(PYTEST) tests/unit

test-render: setup ## Only the render tests (no cluster)
	$(PYTEST) tests/render

test-molecule: setup ## Only the Molecule scenarios (dev, prod), on a simulated cluster of their own
	$(PYTEST) -p no:xdist tests/molecule

lint: setup ## ansible-lint (production profile) and ansible-test sanity for the plugins
	$(BIN)/ansible-lint
	bash tools/sanity.sh

bench: setup ## Benchmarks (ratios and rates, never assertions on time), on make test's simulated cluster
	$(MAKE) --no-print-directory sim-up ENV=dev SIM_NAME=$(TEST_SIM_NAME) SIM_RUNTIME=false
	BIGDATA_TEST_KUBECONFIG=$(TEST_KUBECONFIG) $(BIN)/python tools/bench_deploy.py
	BIGDATA_TEST_KUBECONFIG=$(TEST_KUBECONFIG) $(BIN)/python tools/bench.py
	$(BIN)/python tools/bench_pipelines.py
	BIGDATA_TEST_KUBECONFIG=$(TEST_KUBECONFIG) $(BIN)/python tools/bench_redeploy.py
	$(BIN)/python tools/bench_topology.py

clean: ## Remove the virtualenv and test outputs (not the binary cache)
	rm -rf $(VENV) tests/output .pytest_cache
