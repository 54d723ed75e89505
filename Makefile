# Two commands for a fresh machine (see README):
#   make demo   set everything up and run the platform with demo data
#   make test   set everything up and run the whole test suite (lint, types, tests)
# The virtual environment is created on first use and refreshed when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The gbstats oracle pins pandas<2/numpy<2, which chDB rules out; see pyproject.toml.
	$(BIN)/python -m pip install --quiet --no-deps 'gbstats==0.8.0'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/liftkit demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/sdk_eval.py
	$(BIN)/python benchmarks/stats.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/events_import.py
	$(BIN)/python benchmarks/delivery.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/rollback.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
