"""Open rnnlab stores lazily with xarray, refusing what is not one or not complete."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

__all__ = ["IncompleteStoreError", "NotAStoreError", "missing_blocks", "open_results"]

#: The completion flags of a store (DESIGN.md: the only truth about completion).
DONE = "block_done"


class NotAStoreError(ValueError):
    """The path holds no rnnlab store."""


class IncompleteStoreError(ValueError):
    """The store has blocks that were never written; ``missing`` lists them."""

    def __init__(self, message: str, missing: list[dict]):
        super().__init__(message)
        self.missing = missing


def _open(path: Path):
    import xarray as xr

    with warnings.catch_warnings():
        # zarr-python flags consolidated metadata as a format-3 extension on every read
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        try:  # rnnlab stores are consolidated once at creation: one metadata read
            return xr.open_zarr(path, consolidated=True)
        except (KeyError, ValueError, FileNotFoundError):
            return xr.open_zarr(path, consolidated=False)


def missing_blocks(ds) -> list[dict]:
    """The blocks of a store not yet written, each as ``{dim: slice of coordinate values}``.

    Parameters
    ----------
    ds : xarray.Dataset
        A store opened with :func:`open_results` (``allow_incomplete=True`` for an
        incomplete one).

    Returns
    -------
    list of dict
        One dict per missing block: ``{"block": index, dim: (first, last) coordinate values}``.
    """
    done = np.asarray(ds[DONE].values) == 1
    chunks = json.loads(ds.attrs["block_chunks"])
    dims = list(chunks)
    shape = [ds.sizes[d] for d in dims]
    per_dim = [-(-s // chunks[d]) for s, d in zip(shape, dims, strict=True)]
    out = []
    for index in np.flatnonzero(~done):
        pos = np.unravel_index(int(index), per_dim) if dims else ()
        block: dict = {"block": int(index)}
        for p, d, s in zip(pos, dims, shape, strict=True):
            lo, hi = int(p) * chunks[d], min((int(p) + 1) * chunks[d], s)
            vals = ds[d].values[lo:hi]
            block[d] = tuple(v.item() if hasattr(v, "item") else v for v in (vals[0], vals[-1]))
        out.append(block)
    return out


def open_results(path, *, allow_incomplete: bool = False):
    """Open an rnnlab store lazily (Dask-backed), coordinates and attributes intact.

    Parameters
    ----------
    path : str or Path
        The store written by ``rnnlab run`` or :func:`rnnlab.jobs.run_sweep`.
    allow_incomplete : bool
        Open a store whose sweep has not finished anyway; the blocks not yet written read as
        the fill values (NaN, -1, False). The missing blocks are listed in
        ``ds.attrs["missing_blocks"]``.

    Returns
    -------
    xarray.Dataset
        The sweep: grid dimensions with 1-D coordinates, ``time``, the schema's variables
        with ``long_name``/``units``/``description``, and the spec and provenance as
        attributes (``spec``, ``spec_sha256``, ``family``, ``model_*``, ``run_*``, versions,
        host, start and end times).

    Raises
    ------
    NotAStoreError
        If ``path`` does not exist or holds no rnnlab store.
    IncompleteStoreError
        If blocks are missing (unless ``allow_incomplete``); the message says which and how
        to finish (``rnnlab run SPEC`` resumes) or open anyway.

    Examples
    --------
    >>> ds = open_results("results/lecture_scalar.zarr")  # doctest: +SKIP
    >>> ds.response.sel(activation="identity", bias=0.0, amplitude=1.0)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise NotAStoreError(f"{path}: no such store: run `rnnlab run SPEC` to make it")
    try:
        ds = _open(path)
    except Exception as err:  # zarr/xarray raise many kinds for a non-store folder
        raise NotAStoreError(f"{path}: not a Zarr store ({type(err).__name__}: {err})") from None
    if "spec_sha256" not in ds.attrs or DONE not in ds:
        raise NotAStoreError(f"{path}: a Zarr store, but not one written by rnnlab")
    missing = missing_blocks(ds)
    if missing:
        total = int(ds.attrs.get("nblocks", ds.sizes.get("block", 0)))
        if not allow_incomplete:
            where = [
                f"block {m['block']}: "
                + " ".join(f"{k}={v[0]}..{v[1]}" for k, v in m.items() if k != "block")
                for m in missing[:3]
            ]
            first = ", ".join(where)
            more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
            raise IncompleteStoreError(
                f"{path}: incomplete: {len(missing)} of {total} blocks missing ({first}{more}); "
                "finish it with `rnnlab run SPEC` (it resumes) or pass allow_incomplete=True",
                missing,
            )
        ds.attrs["missing_blocks"] = json.dumps([m["block"] for m in missing])
    return ds
