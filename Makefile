# One command each: everything installs itself into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA_DIR ?= data/demo

.PHONY: install demo test ui bench validate clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## build the demo warehouse on the simulated clouds (last 30 days)
	$(BIN)/finops-pipeline demo --data-dir $(DATA_DIR)

test: $(STAMP)  ## the whole test suite
	$(BIN)/pytest -q

ui: $(STAMP)  ## Dagster UI (webserver + daemon) over the demo warehouse, simulated clouds running
	$(BIN)/finops-pipeline ui --data-dir $(DATA_DIR)

validate: $(STAMP)
	$(BIN)/dagster definitions validate -w workspace.yaml

bench: $(STAMP)  ## benchmarks (quick); make bench ARGS=--full for the documented sizes
	$(BIN)/python -m benchmarks $(ARGS)

clean-demo:
	rm -rf $(DATA_DIR)
