"""rnnlab.jobs: sweep specs, Dask scheduling and Zarr stores (and the result schema).

- :func:`run_sweep`: a spec file becomes a grid, scheduled on Dask, written block by block
  into one Zarr store; resumable (see docs/sweeps.md).
- :func:`load_spec`: validate a spec without running it.
- :func:`to_dataset`: an engine result as an ``xarray.Dataset`` with the schema's names.
"""

from .runner import SweepResult, run_sweep
from .schema import VARIABLES, provenance, to_dataset
from .spec import SpecError, load_spec
from .store import StoreError

__all__ = [
    "VARIABLES",
    "SpecError",
    "StoreError",
    "SweepResult",
    "load_spec",
    "provenance",
    "run_sweep",
    "to_dataset",
]
