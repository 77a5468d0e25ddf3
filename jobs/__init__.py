"""rnnlab.jobs: sweep specs, Dask scheduling and Zarr stores (and the result schema)."""

from .schema import VARIABLES, provenance, to_dataset

__all__ = ["VARIABLES", "provenance", "to_dataset"]
