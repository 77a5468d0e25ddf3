"""Open rnnlab stores lazily with xarray, refusing what is not one, not complete or damaged."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from rnnlab.jobs.integrity import DONE, check, hidden_chunks

__all__ = [
    "DamagedStoreError",
    "IncompleteStoreError",
    "NotAStoreError",
    "missing_blocks",
    "open_results",
    "stored_fixed_points",
    "trained_network",
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


def _open(store, consolidated: bool = True):
    import xarray as xr

    with warnings.catch_warnings():
        # zarr-python flags consolidated metadata as a format-3 extension on every read
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        if consolidated:  # rnnlab stores are consolidated: one metadata read
            try:
                return xr.open_zarr(store, consolidated=True)
            except (KeyError, ValueError, FileNotFoundError) as err:
                if "checksum" in str(err):
                    raise
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
    plan = _plan(path)
    report = check(path, plan, verify=verify)
    if report.unrepairable:
        raise DamagedStoreError(report.beyond_blocks(path), [], report.damage)
    intact = report.intact
    store = path
    if allow_incomplete and not intact.all():
        store = _hiding_store(path, hidden_chunks(path, plan, np.flatnonzero(~intact)))
    try:
        ds = _open(store, consolidated=not report.stale_consolidation)
    except ValueError as err:  # a chunk read at opening (a coordinate) fails its checksum
        raise DamagedStoreError(
            f"{path}: a coordinate cannot be read ({str(err)[:120]}): recompute the store "
            f"with `rnnlab run {path} --overwrite`",
            [],
            report.damage,
        ) from None
    ds[DONE] = ds[DONE].copy(data=intact.astype(np.int8))
    missing = missing_blocks(ds)
    if missing and not allow_incomplete:
        raise _incomplete(path, ds, missing, report)
    if missing:
        ds = _mask_cases(ds, intact, plan)
        ds.attrs["missing_blocks"] = json.dumps([m["block"] for m in missing])
    if report.blocks:
        ds.attrs["damaged_blocks"] = json.dumps(report.blocks)
    return ds


def _plan(path: Path):
    """The block plan of the rnnlab store at ``path`` (from its attributes and spec)."""
    import zarr

    from rnnlab.jobs.spec import SpecError
    from rnnlab.jobs.store import StoreError, stored_plan, stored_spec, trusted_attrs

    try:
        attrs = dict(zarr.open_group(str(path), mode="r", use_consolidated=False).attrs)
    except Exception as err:  # zarr raises many kinds for a folder that is not a store
        raise NotAStoreError(f"{path}: not a Zarr store ({type(err).__name__}: {err})") from None
    if "spec_sha256" not in attrs or "block_chunks" not in attrs:
        raise NotAStoreError(f"{path}: a Zarr store, but not one written by rnnlab")
    try:
        trusted_attrs(path, attrs)
    except StoreError as err:
        raise DamagedStoreError(str(err), [], []) from None
    try:
        return stored_plan(attrs, stored_spec(attrs)[1])
    except (SpecError, KeyError, ValueError) as err:
        raise DamagedStoreError(
            f"{path}: its attributes are damaged ({str(err)[:120]}): recompute it with "
            f"`rnnlab run SPEC --store {path} --overwrite`",
            [],
            [],
        ) from None


def _mask_cases(ds, intact: np.ndarray, plan):
    """Every grid variable NaN in the cases of blocks not done or damaged (integer and
    boolean summaries become floats: their fill values -1 and False would read as "never
    forgot", "never blew up")."""
    import dask.array as da
    import xarray as xr

    dims = list(json.loads(ds.attrs["block_chunks"]))
    flags = intact.reshape(plan.nblocks_per_dim)

    def block(x, block_info=None):
        info = block_info[None]
        return np.full(info["chunk-shape"], flags[tuple(info["chunk-location"])])

    lazy = da.map_blocks(block, da.empty(plan.shape, chunks=plan.chunks, dtype=bool), dtype=bool)
    mask = xr.DataArray(lazy, dims=dims)
    for name, var in ds.data_vars.items():
        if name != DONE and tuple(var.dims[: len(dims)]) == tuple(dims):
            ds[name] = var.where(mask)
    return ds


def _repair_command(path: Path, damage) -> str:
    """The commands that recompute the damaged blocks: a checksum-only damage must be marked
    by ``status --verify`` first (``run`` compares sizes only)."""
    if damage.needs_verify:
        return f"`rnnlab status {path} --verify` then `rnnlab run {path}`"
    return f"`rnnlab run {path}`"


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
            f"{path}: damaged: {damage.summary()}: recompute those blocks with "
            f"{_repair_command(path, damage)}, or open it anyway with {ANYWAY}",
            missing,
            damage.damage,
        )
    return IncompleteStoreError(
        f"{path}: incomplete: {len(missing)} of {total} blocks missing ({first}{more}); {fix}",
        missing,
    )


def trained_network(ds, *, initial: bool = False) -> dict:
    """One trained network of a ``train`` store, ready for the stability engine.

    Parameters
    ----------
    ds : xarray.Dataset
        A store of the ``train`` family that holds ``trained_weights`` (``run.outputs``),
        selected down to one case: ``ds.sel(cell="lstm", seed=2)``.
    initial : bool
        The same network before training instead (its seed's initialisation, drawn again
        by :func:`rnnlab.engine.train.init_network`).

    Returns
    -------
    dict
        ``cell``, ``layers`` (PyTorch's layout, as :func:`rnnlab.engine.simulate_network`
        takes them), ``readout`` (``weight``, ``bias``), ``activation``, ``variant``,
        ``task``.

    Examples
    --------
    >>> net = trained_network(ds.sel(cell="gru", seed=0))  # doctest: +SKIP
    >>> simulate_network(net["cell"], net["layers"], activation=net["activation"],
    ...                  variant=net["variant"], steps=1000)  # doctest: +SKIP
    """
    from rnnlab.engine.tasks import TASKS
    from rnnlab.engine.train import init_network, network_from_vector

    if not hasattr(ds, "data_vars"):
        raise ValueError("ds: give the Dataset selected to one case, ds.sel(...), not one of "
                         "its variables")  # fmt: skip
    if "trained_weights" not in ds.data_vars:
        raise ValueError('ds: no trained_weights: run the train sweep with run.outputs = '
                         '[..., "trained_weights"]')  # fmt: skip
    w = ds["trained_weights"].squeeze()  # a dimension of one value is one case too
    if w.ndim != 1:
        others = [d for d in w.dims if d != "parameter"]
        raise ValueError(f"ds: select one case first, e.g. ds.sel({others[0]}=...): "
                         f"trained_weights has dims {w.dims}")  # fmt: skip
    if np.isnan(w.values).all():
        raise ValueError("ds: this case's trained_weights are all NaN (its block was not "
                         "run): complete the sweep with rnnlab run STORE")  # fmt: skip
    s = _case_settings(ds, w)
    task = TASKS[str(s["task"])]
    sizes = (str(s["cell"]), int(s["n"]), int(s["layers"]), task.inputs, task.outputs)
    if initial:
        scale = None if s["init_scale"] in (None, "none") else float(s["init_scale"])
        layers, readout = init_network(
            *sizes,
            seed=int(s["seed"]),
            init=str(s["init"]),
            scale=scale,
            forget_bias=float(s["forget_bias"]),
        )
    else:
        try:
            layers, readout = network_from_vector(*sizes, w.values)
        except ValueError as err:
            raise ValueError(
                f"ds: {str(err).removeprefix('vector: ')}: keep the case's grid "
                "coordinates in the selection (do not drop them)"
            ) from None
    return {"cell": sizes[0], "layers": layers, "readout": readout,
            "activation": str(s["activation"]), "variant": str(s["variant"]),
            "task": str(s["task"])}  # fmt: skip


def stored_fixed_points(ds):
    """The fixed points a ``train`` sweep stored for one case (``fixed_points_*`` in
    ``run.outputs``), as :func:`rnnlab.engine.fixedpoints.fixed_points` returns them.

    Parameters
    ----------
    ds : xarray.Dataset
        A ``train`` store selected down to one case: ``ds.sel(cell="gru", seed=0)``.

    Returns
    -------
    rnnlab.engine.fixedpoints.FixedPoints
        The stored points (at most ``run.num_fixed_points``, most reached first), their
        eigenvalues truncated to the network's state, their class names.

    Examples
    --------
    >>> fp = stored_fixed_points(ds.sel(cell="gru", seed=0))  # doctest: +SKIP
    >>> fp.kind, abs(fp.eigenvalues[:, 0])  # doctest: +SKIP
    """
    from rnnlab.engine.fixedpoints import FIXED_POINT_KINDS, FixedPoints

    names = ("count", "outside", "state", "eigenvalues", "kind", "residual", "starts")
    missing = [f"fixed_points_{k}" for k in names if f"fixed_points_{k}" not in ds.data_vars]
    if missing:
        raise ValueError(f"ds: no {', '.join(missing)}: run the train sweep with them in "
                         "run.outputs")  # fmt: skip
    grid = [d for d in ds["fixed_points_count"].dims if ds.sizes[d] > 1]
    if grid:
        raise ValueError(f"ds: select one case first, e.g. ds.sel({grid[0]}=...)")
    case = {d: 0 for d in ds["fixed_points_count"].dims}  # dimensions of one value
    v = {k: ds[f"fixed_points_{k}"].isel(case).values for k in names}
    if int(v["count"]) < 0:
        raise ValueError("ds: this case's network has no fixed points stored: its weights or "
                         "its states on the task are not finite (it diverged)")  # fmt: skip
    m = int(np.sum(v["kind"] >= 0))
    width = int(np.sum(~np.isnan(v["state"][0]))) if m else 0
    return FixedPoints(
        points=v["state"][:m, :width],
        residual=v["residual"][:m],
        eigenvalues=v["eigenvalues"][:m, :width],
        kind=np.array([FIXED_POINT_KINDS[int(k)] for k in v["kind"][:m]], dtype=object),
        starts=v["starts"][:m].astype(np.int64),
        outside=int(v["outside"]),
    )


def _case_settings(ds, w) -> dict:
    """A case's settings: its coordinates, else the spec's fixed values, else the family's
    defaults (stored with the weights)."""
    from rnnlab.jobs.families import get_family

    family = get_family("train")  # attrs lost on the way: the family's own defaults
    stored = json.loads(w.attrs.get("model_defaults", "{}"))
    out = {}
    for key in family.network_settings:
        default = stored.get(key, family.params[key].default)
        if key in w.coords:
            out[key] = w.coords[key].item()
        else:
            out[key] = ds.attrs.get(f"model_{key}", default)
    return out
