# Two commands for a fresh machine (see README):
#   make demo   set everything up and run the platform with demo data
#   make test   set everything up and run the whole test suite (lint, types, tests)
# The virtual environment is created on first use and refreshed when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format typecheck pytest browser bench clean

# The dashboard's browser tests drive Debian's headless Chromium (Playwright, executable_path).
CHROMIUM ?= /usr/bin/chromium

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

pytest: $(STAMP) browser
	LIFTKIT_CHROMIUM=$(CHROMIUM) $(BIN)/pytest $(PYTEST_ARGS)

# Install Debian's chromium when it is missing (needs root, as on CI; else says how).
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

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
