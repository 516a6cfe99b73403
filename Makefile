# The two commands of the README: `make demo` (the main job) and `make test` (everything CI runs).
# Each creates the virtual environment and installs what it needs by itself.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# Real Feast, for the tests that run mlchaos against it: its own environment, so its many
# dependencies never meet mlchaos's.
FEAST_VENV  = .venv-feast
FEAST_STAMP = $(FEAST_VENV)/.installed
FEAST_PIN   = feast==0.67.0

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	touch $(STAMP)

$(FEAST_STAMP):
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/python -m pip install --quiet '$(FEAST_PIN)'
	touch $(FEAST_STAMP)

demo: $(STAMP)
	$(BIN)/mlchaos demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP) $(FEAST_STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/proxy_overhead.py
	$(BIN)/python benchmarks/observations.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/kill_switch.py

clean:
	rm -rf $(VENV) $(FEAST_VENV) reports .mypy_cache .ruff_cache .pytest_cache
