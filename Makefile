# rnnlab: the two commands of the README, and a few helpers.
#   make run    set up .venv and run the main job on the embedded defaults
#   make test   set up .venv, lint, and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "rnnlab needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/rnnlab run examples/lecture_scalar.toml
	$(BIN)/rnnlab run examples/lecture_vector.toml

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_rnn.py
	$(BIN)/python benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
