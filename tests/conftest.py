"""Shared helpers for the tests: random cases and the comparison with the NumPy reference."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from rnnlab.engine import noise_keys, recurrent_matrix, simulate_rnn
from rnnlab.engine.reference import input_sequence, rnn_reference

from . import compile_budget  # registers the compile recorder before any kernel compiles

# The tiers: make test (60 hypothesis examples per property) and make test-all
# (RNNLAB_TIER=exhaustive: 1000 examples, and the tests marked slow).
settings.register_profile("test", max_examples=60)
settings.register_profile("exhaustive", max_examples=1000)
#: The ISA tests' Numba caches (tests/test_isa.py, started by pytest_collection_finish).
_ISA_FOLDER = tempfile.TemporaryDirectory(prefix="rnnlab-isa-")

settings.load_profile("exhaustive" if os.environ.get("RNNLAB_TIER") == "exhaustive" else "test")


def random_cases(rng, n, ncase, radius=(0.5, 1.3)):
    """Random W, C, b, amplitude for ``ncase`` cases of size ``n``."""
    if n == 1:
        W = rng.uniform(-radius[1], radius[1], ncase)
        C = rng.uniform(-2, 2, ncase)
        b = rng.uniform(-1, 1, ncase)
    else:
        W = np.stack(
            [
                recurrent_matrix(n, "gaussian", int(s), spectral_radius=rng.uniform(*radius))
                for s in rng.integers(0, 10_000, ncase)
            ]
        )
        C = rng.standard_normal((ncase, n))
        b = 0.3 * rng.standard_normal((ncase, n))
    amp = rng.uniform(-2, 2, ncase)
    return W, C, b, amp


def run_both(W, C, b, amp, activation, inp, steps, dtype="float64", **kw):
    """The engine's result and the list of per-case reference results."""
    ncase = len(amp)
    seeds = np.arange(ncase)
    res = simulate_rnn(
        W,
        C,
        b,
        activation=activation,
        steps=steps,
        input=inp,
        amplitude=amp,
        noise_seed=seeds,
        record="all",
        dtype=dtype,
        **kw,
    )
    n = 1 if np.ndim(W) == 1 else W.shape[1]
    keys = noise_keys(seeds, n)
    refs = []
    for i in range(ncase):
        x = input_sequence(inp, steps, amp[i], int(keys[i]))
        Wi = np.atleast_2d(W[i])
        refs.append(
            rnn_reference(
                Wi,
                np.atleast_1d(C[i]),
                np.atleast_1d(b[i]),
                x,
                activation,
                dtype,
                saturation_tol=res.attrs["saturation_tol"],
            )
        )
    return res, refs


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def pytest_collection_modifyitems(config, items):
    """The compile budget is checked after every other test (it reads what they compiled)."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/test_compile.py::test_the_suite"))


def pytest_collection_finish(session):
    """The ISA tests' subprocesses start now, to compile while the first tests run."""
    if any(item.path.name == "test_isa.py" for item in session.items):
        from . import test_isa

        test_isa.start_compiling(Path(_ISA_FOLDER.name))


def pytest_sessionfinish(session):
    from . import test_isa

    test_isa.stop_compiling()
    _ISA_FOLDER.cleanup()


def pytest_terminal_summary(terminalreporter):
    for line in compile_budget.report_lines():
        terminalreporter.write_line(line)
