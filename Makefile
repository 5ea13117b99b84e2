# One-command loops. Everything runs from the project's own virtualenv, which the first target creates.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DB_URL ?= sqlite:///data/warehouse.sqlite
DEMO_PATIENTS ?= 400
DEMO_SEED ?= 7

.PHONY: demo demo-data serve test lint format bench bench-large clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

demo-data: $(VENV)/.installed
	$(PY) -m etl generate --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED) --out data/demo
	$(PY) -m etl init --db $(DB_URL)
	$(PY) -m etl load data/demo/*.csv --db $(DB_URL) || [ $$? -eq 3 ]
	$(PY) -m etl status --db $(DB_URL)
	$(PY) -m etl users demo --db $(DB_URL)

demo: demo-data
	$(PY) -m dashboard --db $(DB_URL) --host 127.0.0.1 --port 8050

serve: $(VENV)/.installed
	$(PY) -m dashboard --db $(DB_URL) --host 127.0.0.1 --port 8050

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) -m bench --repeat 3

bench-large: $(VENV)/.installed
	$(PY) -m bench --large

clean:
	rm -rf $(VENV) data/demo data/warehouse.sqlite* .pytest_cache .ruff_cache
