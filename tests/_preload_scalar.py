"""Imported by the fault tests' fork server: rnnlab's modules and the scalar kernels loaded
once (from the cache, in this single-threaded process), so that each killed child forks
ready to run instead of spending a second loading them."""

import dask.array  # noqa: F401  (imported by the store's creation)
import xarray  # noqa: F401
import zarr  # noqa: F401

from rnnlab.engine import simulate_rnn
from rnnlab.jobs import cli, runner, store  # noqa: F401

for _activation in ("identity", "sigmoid", "tanh", "relu"):
    simulate_rnn([0.5], activation=_activation, steps=3, parallel=False)
