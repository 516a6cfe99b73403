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
# Real model servers, each in its own environment too: Seldon MLServer with its scikit-learn
# runtime, and KServe's ModelServer (the tests' model is scikit-learn).
MLSERVER_VENV  = .venv-mlserver
MLSERVER_STAMP = $(MLSERVER_VENV)/.installed
MLSERVER_PINS  = mlserver==1.7.1 mlserver-sklearn==1.7.1
KSERVE_VENV    = .venv-kserve
KSERVE_STAMP   = $(KSERVE_VENV)/.installed
KSERVE_PINS    = kserve==0.21.0 scikit-learn==1.9.1
# Real Chaos Toolkit (`chaos run`) with mlchaos installed beside it, as a team using the
# extension would have it: its own environment (1.19.0 is the last for Python 3.11).
CHAOSTOOLKIT_VENV  = .venv-chaostoolkit
CHAOSTOOLKIT_STAMP = $(CHAOSTOOLKIT_VENV)/.installed
CHAOSTOOLKIT_PINS  = chaostoolkit==1.19.0
# The Node Toxiproxy client (toxiproxy-node-client, pinned by its lock file), for the tests of
# the Toxiproxy-compatible API; without npm the step is skipped and so is that test.
NODE_CLIENT = tests/proxy/toxiproxy_node
NODE_STAMP  = $(NODE_CLIENT)/node_modules/.installed

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

$(MLSERVER_STAMP):
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/python -m pip install --quiet $(MLSERVER_PINS)
	touch $(MLSERVER_STAMP)

$(KSERVE_STAMP):
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(KSERVE_VENV)/bin/python -m pip install --quiet $(KSERVE_PINS)
	touch $(KSERVE_STAMP)

demo: $(STAMP)
	$(BIN)/mlchaos demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

$(CHAOSTOOLKIT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(CHAOSTOOLKIT_VENV)
	$(CHAOSTOOLKIT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHAOSTOOLKIT_VENV)/bin/python -m pip install --quiet $(CHAOSTOOLKIT_PINS) -e .
	touch $(CHAOSTOOLKIT_STAMP)

$(NODE_STAMP): $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	if command -v npm >/dev/null; then \
		cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; \
	fi

unit: $(STAMP) $(FEAST_STAMP) $(MLSERVER_STAMP) $(KSERVE_STAMP) $(CHAOSTOOLKIT_STAMP) $(NODE_STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP) $(MLSERVER_STAMP)
	$(BIN)/python benchmarks/proxy_overhead.py
	$(BIN)/python benchmarks/proxy_model_server.py
	$(BIN)/python benchmarks/observations.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/kill_switch.py

clean:
	rm -rf $(VENV) $(FEAST_VENV) $(MLSERVER_VENV) $(KSERVE_VENV) reports .mypy_cache .ruff_cache .pytest_cache
