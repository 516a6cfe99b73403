# The two commands of the README: `make demo` (the main job) and `make test` (everything CI runs).
# Each creates the virtual environment and installs what it needs by itself.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlchaos demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/proxy_overhead.py
	$(BIN)/python benchmarks/observations.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/kill_switch.py

clean:
	rm -rf $(VENV) reports .mypy_cache .ruff_cache .pytest_cache
