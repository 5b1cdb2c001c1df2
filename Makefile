# Two entry points for people (demo, test); everything else is plumbing for them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test benchmark benchmark-compare clean airflow

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $@

demo: install
	$(BIN)/python scripts/demo.py

# Airflow's UI on this machine against the sandbox (SQLite, LocalExecutor); prints the URL and login; Ctrl-C stops.
airflow: install
	$(BIN)/python scripts/airflow_local.py

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

benchmark: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# The benchmarks at quick sizes, at BASE (default: the previous commit) and here, side by side.
BASE ?= HEAD~1
benchmark-compare: install
	$(BIN)/python benchmarks/compare.py --base $(BASE)

clean:
	rm -rf $(VENV) .demo .pytest_cache
