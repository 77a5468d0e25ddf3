"""The sweep store: block planning, the Zarr template, block writes and completion.

One sweep = one Zarr (format 3) store = one ``xarray.Dataset`` whose grid dimensions are
chunked exactly like the blocks, so that every block writes whole chunks only (no two tasks ever
touch the same chunk). ``block_done`` (one element per block, chunks of one) is written last by
each block and is the only truth about completion.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.engine import OUTPUTS
from rnnlab.engine.network import delays_for

from .families import get_family
from .faults import fault_point
from .integrity import (
    DONE,
    codecs,
    create_record,
    read_flags,
    record_block,
    record_coordinates,
    record_metadata,
)
from .schema import KIND_DIMS, TIME_DIM, provenance
from .spec import Grid, Spec

__all__ = [
    "BlockPlan",
    "StoreError",
    "create_store",
    "finalise",
    "plan_blocks",
    "read_done",
    "store_lock",
    "trusted_attrs",
    "write_block",
]

#: Small sweeps are cut into at least this many blocks (if each keeps MIN_BLOCK_SECONDS).
MIN_BLOCKS = 16
MIN_BLOCK_SECONDS = 0.5
#: At most this many blocks: a smaller block_seconds than that allows is coarsened.
MAX_BLOCKS = 100_000
#: The cost of a grid larger than this many cases is averaged over a sample of this size.
COST_SAMPLE = 100_000
#: A block's working memory stays under this: more cases than fit are cut into more blocks
#: (a fixed number, so that the plan depends on the spec only, not on the machine).
BLOCK_BYTES = 2**30
#: A case's results are held about this many times while a block runs (the kernel's
#: float64 rows, the collected arrays, the reshaped region written to Zarr).
RESULT_COPIES = 3


class StoreError(RuntimeError):
    """A store that cannot be used (exists with another spec, not writable, not a sweep)."""


@dataclass(frozen=True)
class BlockPlan:
    """How the grid is cut: ``chunks[d]`` cases along each grid dimension per block."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    seconds_per_block: float

    @property
    def nblocks_per_dim(self) -> tuple[int, ...]:
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunks, strict=True))

    @property
    def nblocks(self) -> int:
        return int(np.prod(self.nblocks_per_dim, dtype=np.int64))

    def position(self, index: int) -> tuple[int, ...]:
        """Block ``index``'s place in the block grid (C order): its chunk coordinates."""
        if not self.shape:
            return ()
        return tuple(int(p) for p in np.unravel_index(index, self.nblocks_per_dim))

    def block_slices(self, index: int) -> tuple[slice, ...]:
        """The grid slices of block ``index`` (C order over the block grid)."""
        return tuple(
            slice(p * c, min((p + 1) * c, s))
            for p, c, s in zip(self.position(index), self.chunks, self.shape, strict=True)
        )


def plan_blocks(spec: Spec, grid: Grid, target_seconds: float | None = None) -> BlockPlan:
    """Choose block (= chunk) sizes so that a block takes about ``target_seconds`` on one core.

    The target is ``store.block_seconds`` (default 5 s), lowered for small sweeps so that there
    are at least ``MIN_BLOCKS`` blocks to share among workers, but never below
    ``MIN_BLOCK_SECONDS`` (per-block overhead). Trailing dimensions are kept whole while the
    block's estimated cost stays under the target; the first dimension that would exceed it is
    split, and the leading ones get chunks of one. The estimate is the family's cost model
    averaged over the grid. The plan depends on the spec only (not on the machine), and a
    resumed sweep uses the plan stored with it.
    """
    target = spec.store.block_seconds if target_seconds is None else target_seconds
    per_case = _mean_case_seconds(spec, grid)
    most = max(1, int(BLOCK_BYTES // max(case_bytes(spec, grid), 1.0)))
    if target_seconds is None:
        target = min(target, max(MIN_BLOCK_SECONDS, per_case * grid.size / MIN_BLOCKS))
    plan = _cut(grid, per_case, target, most)
    # coarsened: a task and a chunk file per block have their cost too
    target = max(target, per_case * grid.size / MAX_BLOCKS)
    while plan.nblocks > MAX_BLOCKS and target < per_case * grid.size:  # ends: target grows
        target *= 1.25
        plan = _cut(grid, per_case, target, most)
    return plan


def case_bytes(spec: Spec, grid: Grid) -> float:
    """Working memory of the grid's largest case in a block: the family's arrays (weights,
    tangents; largest at the largest ``n`` and ``layers``) and ``RESULT_COPIES`` copies of
    its results."""
    return sum(_case_parts(spec, grid))


def _case_parts(spec: Spec, grid: Grid) -> tuple[float, float]:
    """(the model's arrays, the copies of the results) of the largest case, in bytes."""
    family = get_family(spec.family)
    fixed = {k: v for k, v in spec.model.items() if k != "family"}
    flat = {d: np.asarray(grid.coords[d][:1]) for d in grid.dims}
    for d in set(grid.dims) & {"n", "layers"}:
        flat[d] = np.asarray([grid.coords[d].max()])
    params = family.case_params(fixed, flat, 1)
    model = float(family.case_bytes(params, spec.run)[0])
    return model, float(RESULT_COPIES * _result_bytes(spec, grid))


def check_plan(spec: Spec, grid: Grid, plan: BlockPlan) -> None:
    """Refuse a plan of more than ``MAX_BLOCKS`` blocks (possible only when the memory
    bound keeps the blocks small)."""
    from .spec import SpecError

    if plan.nblocks > MAX_BLOCKS:
        raise SpecError(
            [
                f"grid: {plan.nblocks:,} blocks of at most {int(np.prod(plan.chunks)):,} "
                f"cases (each block holds at most {BLOCK_BYTES / 2**30:g} GiB), more than "
                f"{MAX_BLOCKS:,}: shrink the grid, or record fewer steps"
            ]
        )


def check_memory(spec: Spec, grid: Grid) -> None:
    """Refuse a sweep whose largest case cannot fit in this machine's memory (half of it,
    as the engine's own check), before anything is allocated."""
    from rnnlab.engine._memory import memory_limit

    from .spec import SpecError

    model, results = _case_parts(spec, grid)
    limit = memory_limit()
    if model + results <= limit:
        return
    need = (
        f"{(model + results) / 2**30:,.1f} GiB of memory, more than half of this "
        f"machine's ({limit / 2**30:,.1f} GiB)"
    )
    if results >= model:
        raise SpecError(
            [
                f"run.steps: one case records about {need}: record fewer steps "
                '(run.record = "log", run.num_records) or fewer outputs (run.outputs)'
            ]
        )
    sizes = {d: int(grid.coords[d].max()) for d in ("n", "layers") if d in grid.dims}
    fixed = {d: spec.model[d] for d in ("n", "layers") if d in spec.model}
    which = ", ".join(f"{k} = {v}" for k, v in {**fixed, **sizes}.items())
    raise SpecError(
        [
            f"model.n: one case ({which or 'the largest'}) needs about {need}: choose a "
            "smaller n or fewer layers"
        ]
    )


def store_bytes(spec: Spec, grid: Grid) -> int:
    """The store's size, uncompressed: 8 bytes per value of every variable and case."""
    return _result_bytes(spec, grid) * grid.size


def _result_bytes(spec: Spec, grid: Grid) -> int:
    """The results of one case: every value of every variable at its stored size."""
    family = get_family(spec.family)
    fixed = {k: v for k, v in spec.model.items() if k != "family"}
    variables = family.variables(fixed, grid.coords, spec.run)
    shapes = _trailing(family, fixed, grid, spec.run, variables)[0]
    sizes = {v: variable_dtype(v, spec.run, family).itemsize for v in variables}
    return sum(sizes[v] * int(np.prod(shapes[k], dtype=np.int64)) for v, k in variables.items())


def _trailing(family, fixed, grid, run, variables):
    """Per kind of variable, the shape and the dimension names after the grid's
    (:data:`rnnlab.jobs.schema.KIND_DIMS`): per case (), per recorded step (time,), a vector
    per step (time, unit), the weights of a network (parameter,), a Lyapunov spectrum
    (exponent,), a value per delay (delay,), per fixed point (point,), its state (point,
    component) and its eigenvalues (point, eigenvalue)."""
    ntime = len(family.time_steps(run))
    kinds = set(variables.values())
    units = family.units(fixed, grid.coords) if "vector" in kinds else 0
    params = family.parameters(fixed, grid.coords) if "weights" in kinds else 0
    states = family.state_size(fixed, grid.coords) if "point_states" in kinds else 0
    delays = delays_for(run.steps, run.num_delays)
    points = run.num_fixed_points
    shapes = {"summary": (), "step": (ntime,), "vector": (ntime, units), "weights": (params,),
              "spectrum": (run.num_exponents,), "delays": (delays,), "points": (points,),
              "point_states": (points, states), "point_eigenvalues": (points, states)}  # fmt: skip
    return shapes, KIND_DIMS


def check_size(spec: Spec, grid: Grid) -> None:
    """Refuse a store larger than ``store.max_bytes`` before anything is written."""
    from .spec import SpecError

    nbytes = store_bytes(spec, grid)
    if nbytes > spec.store.max_bytes:
        raise SpecError(
            [
                f"store.max_bytes: the store would hold about {nbytes / 1e9:.3g} GB "
                f"(uncompressed), more than store.max_bytes = {spec.store.max_bytes / 1e9:.3g} GB:"
                " raise store.max_bytes if the disk has room, or shrink the grid or record "
                "fewer steps"
            ]
        )


def _cut(grid: Grid, per_case: float, target: float, most: int) -> BlockPlan:
    """Blocks of about ``target`` seconds and at most ``most`` cases: trailing dimensions
    whole, then one split."""
    chunks = [1] * len(grid.shape)
    cases = 1
    for d in reversed(range(len(grid.shape))):
        room = max(1, min(int(target / (per_case * cases)), most // cases))
        chunks[d] = min(grid.shape[d], room)
        cases *= chunks[d]
        if chunks[d] < grid.shape[d]:
            break
    return BlockPlan(tuple(grid.shape), tuple(chunks), per_case * cases)


def _mean_case_seconds(spec: Spec, grid: Grid) -> float:
    """The cost model averaged over the grid: over every case of a grid of at most
    ``COST_SAMPLE`` cases, else over a fixed sample of that many (so that the plan depends
    on the spec only, and a grid of 10^12 cases is never materialised)."""
    family = get_family(spec.family)
    fixed = {k: v for k, v in spec.model.items() if k != "family"}
    if grid.size <= COST_SAMPLE:
        flat = _flat_coords(grid, tuple(slice(0, s) for s in grid.shape))
        params = family.case_params(fixed, flat, grid.size)
    else:
        picks = np.random.default_rng(0).integers(0, grid.size, COST_SAMPLE, dtype=np.int64)
        where = np.unravel_index(picks, grid.shape)
        flat = {d: grid.coords[d][i] for d, i in zip(grid.dims, where, strict=True)}
        params = family.case_params(fixed, flat, COST_SAMPLE)
    return float(np.mean(family.case_seconds(params, spec.run)))


def stored_spec(attrs: dict) -> tuple[Spec, Grid]:
    """The spec a store was created with (TOML, or YAML/JSON text)."""
    import tomllib

    from .spec import parse_spec

    text = attrs["spec"]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        import yaml

        data = yaml.safe_load(text)
    return parse_spec(data, text)


def stored_plan(attrs: dict, grid: Grid) -> BlockPlan:
    """The block plan a store was created with (from its ``block_chunks`` attribute)."""
    return plan_of(attrs, dict(zip(grid.dims, grid.shape, strict=True)))


def plan_of(attrs: dict, sizes) -> BlockPlan:
    """The block plan recorded in a store's attributes, given the sizes of its dimensions."""
    chunks = json.loads(attrs["block_chunks"])
    seconds = float(attrs.get("block_seconds_estimate", "nan"))
    shape = tuple(int(sizes[d]) for d in chunks)
    return BlockPlan(shape, tuple(int(c) for c in chunks.values()), seconds)


def _flat_coords(grid: Grid, slices: tuple[slice, ...]) -> dict[str, np.ndarray]:
    """Per-case coordinate values of a block, flattened in C order."""
    if not grid.dims:
        return {}
    sub = [grid.coords[d][s] for d, s in zip(grid.dims, slices, strict=True)]
    mesh = np.meshgrid(*sub, indexing="ij")
    return {d: m.ravel() for d, m in zip(grid.dims, mesh, strict=True)}


def _fill(dtype: np.dtype):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "c":
        return dtype.type(complex(np.nan, np.nan))
    if dtype.kind == "b":
        return False
    return -1


def create_store(path: Path, spec: Spec, grid: Grid, plan: BlockPlan) -> None:
    """Write the store's template (metadata, coordinates, empty variables, the empty
    integrity record) once."""
    import dask.array as da
    import xarray as xr
    import zarr

    family = get_family(spec.family)
    fixed = {k: v for k, v in spec.model.items() if k != "family"}
    variables = family.variables(fixed, grid.coords, spec.run)
    time = family.time_steps(spec.run)
    extra, trailing = _trailing(family, fixed, grid, spec.run, variables)
    data_vars = {}
    for name, kind in variables.items():
        dtype = variable_dtype(name, spec.run, family)
        full, chk = (*grid.shape, *extra[kind]), (*plan.chunks, *extra[kind])
        arr = da.full(full, _fill(dtype), dtype=dtype, chunks=chk or -1)
        attrs = family.variable_attrs(name)
        data_vars[name] = xr.Variable((*grid.dims, *trailing[kind]), arr, attrs=attrs)
        data_vars[name].encoding = {"chunks": chk or None, "fill_value": _fill(dtype), **codecs()}
    data_vars[DONE] = xr.Variable(
        ("block",),
        da.zeros(plan.nblocks, dtype=np.int8, chunks=1),
        attrs={
            "long_name": "block completed",
            "units": "1",
            "description": "1 once the block's results are written (written last by each "
            "block); the only truth about completion.",
        },
    )
    data_vars[DONE].encoding = {"chunks": (1,), "fill_value": 0, **codecs()}
    coords = {d: xr.Variable(d, _coord_values(grid.coords[d])) for d in grid.dims}
    coords[TIME_DIM] = xr.Variable(TIME_DIM, time, attrs=family.variable_attrs("time"))
    for kind in dict.fromkeys(variables.values()):  # an index along every trailing dimension
        for dim, size in zip(trailing[kind], extra[kind], strict=True):
            if dim not in coords:
                coords[dim] = xr.Variable(dim, np.arange(size), attrs=family.variable_attrs(dim))
    for var in coords.values():
        var.encoding = codecs()
    attrs = {
        "title": f"rnnlab sweep: family {spec.family}, {grid.size} cases",
        "family": spec.family,
        "spec": spec.text,
        "spec_sha256": spec.sha256,
        "block_chunks": json.dumps(dict(zip(grid.dims, plan.chunks, strict=True))),
        "nblocks": plan.nblocks,
        "block_seconds_estimate": plan.seconds_per_block,
        "Conventions": "CF-1.10",
        **{f"model_{k}": _attr_value(v) for k, v in fixed.items()},
        **{f"run_{k}": _attr_value(v) for k, v in spec.run.model_dump().items()},
        **provenance(),
    }
    attrs["end_time"] = ""
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    with quiet_consolidation():
        ds.to_zarr(path, mode="w", compute=False, zarr_format=3, consolidated=False)
        group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
        create_record(group, plan.nblocks, list(variables))
        record_coordinates(Path(path), group)
        record_metadata(Path(path), group)
        zarr.consolidate_metadata(str(path))


@contextlib.contextmanager
def quiet_consolidation():
    """Consolidated metadata is an extension of Zarr format 3 (zarr-python warns about it).

    We consolidate anyway, once at creation and once at completion: opening a store then reads
    one metadata document instead of one per variable; readers without the extension fall
    back to the per-array metadata, which is always complete.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


def _attr_value(v):
    return "none" if v is None else v


def _coord_values(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "US":
        return values.astype(object)  # DESIGN.md: strings as object dtype
    return values


def variable_dtype(name: str, run, family=None) -> np.dtype:
    """The stored dtype of a variable: the run's precision for states, else the table's
    (the family's table: the recurrence kernels' by default)."""
    kind = (OUTPUTS if family is None else family.table)[name].dtype
    return np.dtype(run.dtype if kind == "state" else kind)


def write_block(path: Path, spec: Spec, grid: Grid, plan: BlockPlan, index: int) -> int:
    """Run block ``index`` and write its region, then mark it done. Returns its case count.

    Idempotent: a block that runs twice writes the same values twice.
    """
    import zarr

    family = get_family(spec.family)
    fixed = {k: v for k, v in spec.model.items() if k != "family"}
    slices = plan.block_slices(index)
    flat = _flat_coords(grid, slices)
    bshape = tuple(s.stop - s.start for s in slices)
    ncase = int(np.prod(bshape, dtype=np.int64))
    params = family.case_params(fixed, flat, ncase)
    variables = family.variables(fixed, grid.coords, spec.run)
    results = family.run_cases(params, spec.run, list(variables))
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    arrays = {}
    for i, name in enumerate(variables):
        arrays[name] = group[name]
        arr = results[name]
        arr = _padded(arr, arrays[name].shape[len(bshape) :])
        trailing = arr.shape[1:]  # (), (time,), (time, unit), (parameter,), ...
        arrays[name][(*slices, *(slice(None),) * len(trailing))] = arr.reshape((*bshape, *trailing))
        if i == 0:
            fault_point("block_data")
    record_block(Path(path), group, arrays, plan.position(index), index)
    fault_point("block_done")
    group[DONE][index] = 1
    fault_point("between_blocks")
    return ncase


def _padded(arr: np.ndarray, shape: tuple) -> np.ndarray:
    """A block's values (cases, ...) padded with the fill value to the store's trailing
    shape: a block's networks can be smaller than the grid's largest (its weights, its
    fixed points' states)."""
    if arr.shape[1:] == tuple(shape):
        return arr
    out = np.full((arr.shape[0], *shape), _fill(arr.dtype), dtype=arr.dtype)
    out[(slice(None), *(slice(0, k) for k in arr.shape[1:]))] = arr
    return out


def read_done(path: Path) -> np.ndarray:
    """The ``block_done`` flags of a store, as booleans (an element that cannot be read, or
    holds anything but 1, is not done)."""
    import zarr

    group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    try:
        array = group[DONE]
    except (KeyError, ValueError, OSError):
        raise StoreError(
            f"{path}: damaged beyond its blocks ({DONE}/zarr.json missing or unreadable): "
            "use --overwrite to recompute it"
        ) from None
    return read_flags(array)[0] == 1


@contextlib.contextmanager
def store_lock(path: Path):
    """Hold the store's writer lock (one ``run`` per store at a time).

    The lock is an OS file lock (``filelock``) on ``.NAME.lock`` beside the store, so the
    operating system releases it when its holder dies: a lock left by a killed run is taken
    over by the next one. ``.NAME.lock.json`` says who holds it (host, pid, start time).

    Raises
    ------
    StoreError
        One line naming the holder, if another process holds the lock.
    """
    import datetime as _dt
    import socket

    from filelock import FileLock, Timeout

    path = Path(path)
    real = path.resolve()  # one lock whatever the path: a symlink, ".", a relative path
    lock_file = real.parent / f".{real.name}.lock"
    info = real.parent / f".{real.name}.lock.json"
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = json.loads(info.read_text())
            who = f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
        except (OSError, ValueError, KeyError):
            who = "another process"
        raise StoreError(
            f"store.path: {path} is being written by another run ({who}): wait for it to end "
            "or stop it (a lock left by a killed run is released by the system)"
        ) from None
    try:
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        info.write_text(
            json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": now})
        )
        yield
    finally:
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()


def unfinalised(path: Path) -> bool:
    """Whether every block is done but the end time or its consolidated copy is missing."""
    import zarr

    if not read_done(path).all():
        return False
    if not zarr.open_group(str(path), mode="r", use_consolidated=False).attrs.get("end_time"):
        return True
    try:
        with quiet_consolidation():
            listed = zarr.open_group(str(path), mode="r", use_consolidated=True).attrs
    except Exception:  # no consolidated metadata at all
        return True
    return not listed.get("end_time")


def finalise(path: Path) -> bool:
    """Once every block is done: the end time and the consolidated metadata, once.

    Idempotent, so that a run killed after its last block is finalised by the next ``run``
    or ``status``: the end time is written if it is missing, and the metadata consolidated
    again if its copy of the attributes has no end time. Returns whether anything was
    written.
    """
    import datetime as _dt

    import zarr

    if not unfinalised(path):
        return False
    group = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    if not group.attrs.get("end_time"):
        group.attrs["end_time"] = _dt.datetime.now(_dt.UTC).isoformat()
    fault_point("finalise")
    with quiet_consolidation():
        zarr.consolidate_metadata(str(path))
    return True


def store_attrs(path: Path) -> dict | None:
    """The attributes of an existing rnnlab store, or None if ``path`` holds none."""
    import zarr

    if not Path(path).exists():
        return None
    try:
        group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    except Exception:
        return None
    attrs = dict(group.attrs)
    return attrs if "spec_sha256" in attrs else None


def trusted_attrs(path: Path, attrs: dict) -> dict:
    """``attrs`` of the store at ``path``, after checking them (their checksum, the spec
    against its sha256).

    Raises
    ------
    StoreError
        One line: the attributes are damaged, so the store's own spec cannot be used to
        recompute it; the command that does, from the spec file.
    """
    from .integrity import attributes_damage

    bad = attributes_damage(attrs)
    if bad is not None:
        raise StoreError(
            f"{path}: damaged beyond its blocks ({bad.what}): its own spec cannot be "
            f"trusted: recompute it from the spec file with `rnnlab run SPEC --store {path} "
            "--overwrite`"
        )
    return attrs


def check_store_writable(path: Path) -> None:
    """Raise StoreError unless the blocks of the existing store ``path`` can be written."""
    path = Path(path)
    folders = [path, *(p for p in path.iterdir() if p.is_dir())]
    probe = path / f".rnnlab-write-test-{os.getpid()}"
    try:
        probe.write_text("")
        probe.unlink()
        bad = next((p for p in folders if not os.access(p, os.W_OK | os.X_OK)), None)
        if bad is not None:
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        raise StoreError(
            f"store.path: {path} cannot be written ({err.strerror}): make it writable "
            f"(chmod -R u+w {path}) or run into another --store"
        ) from None


def check_writable(path: Path) -> None:
    """Raise StoreError unless the store's folder can be created and written."""
    parent = Path(path).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".rnnlab-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise StoreError(
            f"store.path: cannot write to {parent} ({err.strerror}): choose a writable path"
        ) from None
