# rnnlab: the two commands of the README, and a few helpers.
#   make run       set up .venv and run the main job on the embedded defaults
#   make test      set up .venv, lint, and run the tests (what CI runs)
#   make test-all  the same and the exhaustive tier (long runs, 1000 examples per property)
#   make study     the full training study (examples/study_*.toml, about 40 min on 2 cores)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run study test test-all lint bench bench-train clean clean-cache

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

# the full training study (T up to 200, 5 seeds; see docs/training.md), then its figures
study: $(BIN)/.installed
	$(BIN)/rnnlab report examples/study_*.toml --out results/study_report

test: $(BIN)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

test-all: $(BIN)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	RNNLAB_TIER=exhaustive $(BIN)/python -m pytest -m "slow or not slow"

lint: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the side-by-side tables (with PyTorch: the test extras; pip install -e .[bench] adds JAX)
bench: $(BIN)/.test-installed
	$(BIN)/python benchmarks/bench_table.py
	$(BIN)/python benchmarks/bench_table.py --isa avx2
	$(BIN)/python benchmarks/float32_accuracy.py
	$(BIN)/python benchmarks/bench_rnn.py
	$(BIN)/python benchmarks/bench_compile.py

# training and BPTT against PyTorch (it needs the test extras: PyTorch)
bench-train: $(BIN)/.test-installed
	$(BIN)/python benchmarks/bench_bptt.py
	$(BIN)/python benchmarks/bench_train.py

# the engine's compiled kernels (engine/__pycache__/rnnlab-<hash of the engine's sources>)
clean-cache:
	rm -rf engine/__pycache__/rnnlab-*

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
