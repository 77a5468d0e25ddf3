# rnnlab: the two commands of the README, and a few helpers.
#   make run    set up .venv and run the main job on the embedded defaults
#   make test   set up .venv, lint, and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench clean clean-cache

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "rnnlab needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# the tests also compare with PyTorch; constraints.txt pins the CPU build this machine has
$(BIN)/.test-installed: $(BIN)/.installed constraints.txt
	$(BIN)/python -m pip install --quiet -e ".[test,torch]" -c constraints.txt
	touch $@

# every lecture spec (a finished store is not recomputed), then the figures and index.html
run: $(BIN)/.installed
	$(BIN)/rnnlab report examples/lecture_*.toml --out results/report

test: $(BIN)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_rnn.py
	$(BIN)/python benchmarks/bench_sweep.py

# Numba's cache checks only the file that defines a kernel, not the files it calls: after
# editing engine/activations.py or engine/fastexp.py, clear it (a fresh clone has none)
clean-cache:
	find . -path ./$(VENV) -prune -o \( -name '*.nbi' -o -name '*.nbc' \) -exec rm -f {} +

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
