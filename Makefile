# One command each: everything installs itself into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA_DIR ?= data/demo
# uv installs the lock (and resolves it: `make lock`); pinned so every machine resolves alike.
UV_VERSION ?= 0.13.9
UV := $(BIN)/uv
LOCK := requirements.lock

# focus-validator (FinOps Foundation) needs Python >= 3.12: its own venv, made on first use.
FOCUS_VENV ?= .venv-focus
# FOCUS_PYTHON: a Python >= 3.12 for it (default: python3.12/3.13 on PATH, else a pyenv-installed one).
FOCUS_PYTHON ?=

# The suite's workers (pytest-xdist): one per core of the 2-core CI machine, whole files per worker
# (a module's servers and fixtures start once). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile

.PHONY: install demo test test-fast coverage mutations lint format lock ui bench validate focus-validate clean-demo

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: every package's .pyc written once, in parallel, at install; otherwise the first
# processes that import dagster (the test workers, each `dagster dev`, the benchmark's children) all
# compile it at once: 18 s more here, about 170 s of worker time less in a fresh clone's test run.
$(STAMP): pyproject.toml $(LOCK) | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## .venv with the locked dependencies (dev + simulator) and the project, editable

lock: | $(UV)  ## re-resolve requirements.lock from pyproject.toml (keeps pins that still fit; ARGS=--upgrade for the newest)
	$(UV) pip compile pyproject.toml --extra dev --extra simulator --python-version 3.11 --python-platform linux \
		-o $(LOCK) $(ARGS)

demo: $(STAMP)  ## build the demo warehouse on the simulated clouds (last 30 days)
	$(BIN)/finops-pipeline demo --data-dir $(DATA_DIR)

test: lint  ## lint, then the whole test suite on $(TEST_WORKERS) workers
	$(BIN)/pytest -q $(XDIST)

test-fast: lint  ## the suite without the tests marked slow (the dagster dev backfill, the benchmark smoke)
	$(BIN)/pytest -q $(XDIST) -m "not slow"

coverage: $(STAMP)  ## the whole suite with line and branch coverage per module (pyproject.toml [tool.coverage])
	$(BIN)/pytest -q $(XDIST) --cov --cov-branch --cov-report=term-missing:skip-covered

mutations: $(STAMP)  ## each metric-mapping mutation of finops_pipeline_tests/mutations.py must fail its tests
	$(BIN)/python -m finops_pipeline_tests.mutations

lint: $(STAMP)  ## ruff's lint rules and format (pyproject.toml [tool.ruff])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## ruff format the tree
	$(BIN)/ruff format .

ui: $(STAMP)  ## Dagster UI (webserver + daemon) over the demo warehouse, simulated clouds running
	$(BIN)/finops-pipeline ui --data-dir $(DATA_DIR)

validate: $(STAMP)
	$(BIN)/dagster definitions validate -w workspace.yaml

focus-validate: $(STAMP)  ## FOCUS 1.2 rules of focus-validator 2.2.1 on the demo warehouse's focus_cost_and_usage (ARGS=--per-source)
	test -f $(DATA_DIR)/finops.duckdb || $(MAKE) demo
	$(BIN)/python -m finops_pipeline.focus_validate --data-dir $(DATA_DIR) --venv $(FOCUS_VENV) $(if $(FOCUS_PYTHON),--python $(FOCUS_PYTHON)) $(ARGS)

bench: $(STAMP)  ## benchmarks (quick); make bench ARGS=--full for the documented sizes
	$(BIN)/python -m benchmarks $(ARGS)

clean-demo:
	rm -rf $(DATA_DIR)
