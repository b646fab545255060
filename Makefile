# The two commands of the README. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make test` runs the suite twice: on the newest Airflow (.venv, whatever PyPI has) and on
# the lowest one pyproject.toml accepts (.venv-lowest). The lowest venv resolves everything as
# PyPI stood the day Airflow $(LOWEST_AIRFLOW) came out, as Airflow's own constraints file for
# that release would, so nothing in it can drift; only the test tools pinned in the test extras
# (and the few packages those pins need newer versions of) come from later.
LOWEST_AIRFLOW := 3.1.0
LOWEST_AIRFLOW_DATE := 2025-09-26T00:00:00Z
LOWEST_NEWER := pytest pytest-asyncio ruff mypy playwright psycopg2-binary asyncpg build twine \
	packaging pathspec librt ast-serialize rich pytest-cov coverage
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
# Deployment, browser and packaging tests run once, on the newest Airflow.
LOWEST_MARKERS := not deployment and not packaging

# The branch-coverage gate of client/ and recovery/ (>= 95%, [tool.coverage] in pyproject.toml),
# on the newest run only. `make test-newest COV=` runs without it (e.g. with a PYTEST_ARGS subset).
COV := --cov --cov-report=term

.PHONY: test test-newest test-lowest demo lint types clean mutation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[test]'
	touch $(STAMP)

$(LOWEST_STAMP): pyproject.toml Makefile $(STAMP)
	rm -rf $(LOWEST)
	$(BIN)/uv venv -q --python $(PYTHON) $(LOWEST)
	$(BIN)/uv pip install -q --python $(LOWEST)/bin/python \
		--exclude-newer $(LOWEST_AIRFLOW_DATE) \
		$(foreach p,$(LOWEST_NEWER),--exclude-newer-package $(p)=2100-01-01T00:00:00Z) \
		-e '.[test]' 'apache-airflow==$(LOWEST_AIRFLOW)'
	touch $(LOWEST_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

test-newest: $(STAMP)
	$(BIN)/pytest $(COV) $(PYTEST_ARGS)

test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/pytest -m '$(LOWEST_MARKERS)' $(PYTEST_ARGS)

test: lint types
	$(MAKE) --no-print-directory test-newest
	$(MAKE) --no-print-directory test-lowest

# Mutation testing of the safety-critical modules (tools/mutation.py writes docs/mutation.md).
# Slow, so not part of `make test`. MUTATION_ARGS: e.g. `--only safety gate`, `--max-children 1`.
mutation: $(STAMP)
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[test,mutation]'
	$(BIN)/python tools/mutation.py $(MUTATION_ARGS)

demo: $(STAMP)
	$(BIN)/python demo/run_demo.py

clean:
	rm -rf $(VENV) $(LOWEST) .mypy_cache .pytest_cache .ruff_cache
