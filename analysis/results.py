"""Open rnnlab stores lazily with xarray, refusing what is not one, not complete or damaged."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from rnnlab.jobs.integrity import DONE, check, hidden_chunks, read_flags

__all__ = [
    "DamagedStoreError",
    "IncompleteStoreError",
    "NotAStoreError",
    "missing_blocks",
    "open_results",
]


#: How the messages say "draw what there is" (the report says it its own way).
ANYWAY = "allow_incomplete=True"


class NotAStoreError(ValueError):
    """The path holds no rnnlab store."""


class IncompleteStoreError(ValueError):
    """The store has blocks that were never written; ``missing`` lists them."""

    def __init__(self, message: str, missing: list[dict]):
        super().__init__(message)
        self.missing = missing


class DamagedStoreError(IncompleteStoreError):
    """Chunks of done blocks are missing or altered; ``damage`` lists them."""

    def __init__(self, message: str, missing: list[dict], damage: list):
        super().__init__(message, missing)
        self.damage = damage


def _open(store):
    import xarray as xr

    with warnings.catch_warnings():
        # zarr-python flags consolidated metadata as a format-3 extension on every read
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        try:  # rnnlab stores are consolidated once at creation: one metadata read
            return xr.open_zarr(store, consolidated=True)
        except (KeyError, ValueError, FileNotFoundError):
            return xr.open_zarr(store, consolidated=False)


def _hiding_store(path: Path, hidden: set[str]):
    """A read-only Zarr store of ``path`` on which the keys ``hidden`` do not exist: their
    chunks read as the fill value (NaN, -1, False), without reading their bytes."""
    from zarr.storage import LocalStore

    class HidingStore(LocalStore):
        def __init__(self, root, *, read_only=True, hidden=frozenset()):
            super().__init__(root, read_only=True)
            self.hidden = frozenset(hidden)

        def with_read_only(self, read_only=False):
            return type(self)(self.root, hidden=self.hidden)

        async def get(self, key, prototype=None, byte_range=None):
            if key in self.hidden:
                return None
            return await super().get(key, prototype, byte_range)

        def get_sync(self, key, *, prototype=None, byte_range=None):
            if key in self.hidden:
                return None
            return super().get_sync(key, prototype=prototype, byte_range=byte_range)

    return HidingStore(path, hidden=hidden)


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


def open_results(path, *, allow_incomplete: bool = False, verify: bool = False):
    """Open an rnnlab store lazily (Dask-backed), coordinates and attributes intact.

    Before anything is read, the store is compared with its integrity record: a chunk of a
    done block that is missing, has another size, or (``verify=True``) fails its checksum
    makes the store *damaged*.

    Parameters
    ----------
    path : str or Path
        The store written by ``rnnlab run`` or :func:`rnnlab.jobs.run_sweep`.
    allow_incomplete : bool
        Open a store whose sweep has not finished, or is damaged, anyway: every chunk of a
        block not done or damaged reads as the fill value (NaN, -1, False), and the blocks
        are listed in ``ds.attrs["missing_blocks"]`` (and the damaged ones in
        ``ds.attrs["damaged_blocks"]``); the report's figures say so.
    verify : bool
        Also read every chunk once and check its CRC-32C (finds a changed byte that leaves
        the size unchanged). Without it, such a chunk is refused when it is read (xarray
        raises "Stored and computed checksum do not match").

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
        to finish (``rnnlab run STORE`` resumes) or open anyway.
    DamagedStoreError
        (an IncompleteStoreError) if chunks of done blocks are damaged (unless
        ``allow_incomplete``), and always if a coordinate is: the message names them and the
        command that repairs them.

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
    ds, damage = _checked(path, ds, verify, allow_incomplete)
    missing = missing_blocks(ds)
    if missing and not allow_incomplete:
        raise _incomplete(path, ds, missing, damage)
    if missing:
        ds.attrs["missing_blocks"] = json.dumps([m["block"] for m in missing])
    if damage is not None and damage.blocks:
        ds.attrs["damaged_blocks"] = json.dumps(damage.blocks)
    return ds


def _checked(path: Path, ds, verify: bool, allow_incomplete: bool):
    """The store compared with its record; ``block_done`` replaced by the flags in force
    (done and intact), and, to draw what there is, every other block's chunks hidden."""
    import zarr

    from rnnlab.jobs.store import plan_of

    plan = plan_of(ds.attrs, ds.sizes)
    group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    flags, unreadable = read_flags(group[DONE])
    done = flags == 1
    report = check(path, plan, verify=verify, done=done)
    if report.unrepairable:
        raise DamagedStoreError(
            f"{path}: damaged beyond its blocks ({report.unrepairable[0]}): recompute it "
            f"with `rnnlab run {path} --overwrite`",
            [],
            report.damage,
        )
    intact = done.copy()
    intact[report.blocks] = False
    if not intact.all() and allow_incomplete:
        hidden = hidden_chunks(path, plan, np.flatnonzero(~intact))
        hidden |= {f"{DONE}/{group[DONE].metadata.encode_chunk_key((i,))}" for i in unreadable}
        ds = _open(_hiding_store(path, hidden))
    ds[DONE] = ds[DONE].copy(data=intact.astype(np.int8))
    return ds, report


def _incomplete(path: Path, ds, missing: list[dict], damage) -> IncompleteStoreError:
    """The error of a store with blocks missing or damaged: which, and what to do."""
    total = int(ds.attrs.get("nblocks", ds.sizes.get("block", 0)))
    where = [
        f"block {m['block']}: "
        + " ".join(f"{k}={v[0]}..{v[1]}" for k, v in m.items() if k != "block")
        for m in missing[:3]
    ]
    first = ", ".join(where)
    more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
    fix = f"finish it with `rnnlab run {path}` (it resumes), or open it anyway with {ANYWAY}"
    if damage is not None and damage.damage:
        return DamagedStoreError(
            f"{path}: damaged: {damage.summary()}: recompute those blocks with `rnnlab run "
            f"{path}`, or open it anyway with {ANYWAY}",
            missing,
            damage.damage,
        )
    return IncompleteStoreError(
        f"{path}: incomplete: {len(missing)} of {total} blocks missing ({first}{more}); {fix}",
        missing,
    )
