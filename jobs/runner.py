"""Run a sweep: validate, plan, create the store once, schedule blocks on Dask, resume.

:func:`run_sweep` is the Python API behind ``rnnlab run``. Blocks are submitted in waves (a
bounded number in flight, refilled as blocks complete), so 10^5 blocks never flood the
scheduler. A block's task is the module-level function :func:`run_block`: it depends only on
the spec and the block index, so a block that runs twice (a worker died after writing) writes
the same values again.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rnnlab.engine import CAPACITY_OUTPUTS
from rnnlab.engine.network import CAPACITY_MIN_STEPS

from . import integrity
from .families import get_family
from .faults import fault_point
from .paths import check_target, remove_own, staging
from .schema import provenance
from .spec import Grid, Spec, SpecError, load_spec, parse_spec
from .store import (
    BlockPlan,
    StoreError,
    check_memory,
    check_plan,
    check_size,
    check_store_writable,
    check_writable,
    create_store,
    finalise,
    plan_blocks,
    store_attrs,
    store_lock,
    stored_plan,
    stored_spec,
    trusted_attrs,
    write_block,
)

__all__ = [
    "SweepError",
    "SweepResult",
    "is_complete",
    "open_sweep",
    "run_block",
    "run_sweep",
    "warm_kernels",
]


class SweepError(RuntimeError):
    """A block could not be computed or written; ``str(err)`` is one line saying which, why,
    and that the blocks done are kept (the same command resumes)."""

    @classmethod
    def of_block(cls, path: Path, index: int, err: BaseException) -> SweepError:
        if isinstance(err, OSError) and err.strerror:
            why = f"{err.strerror}: {err.filename}" if err.filename else err.strerror
        else:
            text = str(err).strip().splitlines()
            why = f"{type(err).__name__}: {text[0][:300] if text else ''}".rstrip(": ")
        return cls(
            f"{path}: block {index} failed ({why}); the blocks done are kept: fix the cause "
            "and run the same command again to resume"
        )


@dataclass
class SweepResult:
    """What a sweep did: the store path, how many blocks it ran and found done, and the
    damage it found (and recomputed) in blocks marked done."""

    path: Path
    nblocks: int
    ran: int
    already_done: int
    seconds: float
    damage: integrity.Report | None = None

    def __fspath__(self) -> str:
        return str(self.path)


def open_sweep(spec_or_path, store: str | Path | None = None):
    """Validate a spec (a spec file, a store, a dict or a Spec) and plan its blocks.

    A path to an rnnlab store stands for the spec it was made with, and for itself as the
    store (unless ``store`` says otherwise).

    Returns
    -------
    (Spec, Grid, BlockPlan, Path)
    """
    if isinstance(spec_or_path, str | Path) and Path(spec_or_path).is_dir():
        spec, grid = _spec_of_store(Path(spec_or_path))
        store = spec_or_path if store is None else store
    elif isinstance(spec_or_path, str | Path):
        spec, grid = load_spec(spec_or_path)
    elif isinstance(spec_or_path, dict):
        spec, grid = parse_spec(spec_or_path, text=_dict_text(spec_or_path))
    elif isinstance(spec_or_path, tuple):
        spec, grid = spec_or_path
    else:
        raise TypeError("spec_or_path must be a path, a dict, or (Spec, Grid)")
    check_size(spec, grid)
    check_memory(spec, grid)
    plan = plan_blocks(spec, grid)
    check_plan(spec, grid, plan)
    if store is None:
        path = check_target(spec.store.path, "store.path")
    else:
        path = check_target(store, "--store")
    if path.is_symlink():  # the store is where the link points (the link is the user's)
        path = path.resolve()
    return spec, grid, plan, path


def _spec_of_store(path: Path) -> tuple[Spec, Grid]:
    attrs = store_attrs(path)
    if attrs is None:
        raise SpecError(
            [f"{path}: a folder that is not an rnnlab store: give a spec file or a store"]
        )
    return stored_spec(trusted_attrs(path, attrs))


def _dict_text(d: dict) -> str:
    import json

    return json.dumps(d, sort_keys=True, default=str)


def run_block(spec: Spec, grid: Grid, plan: BlockPlan, path: str, index: int) -> tuple[int, int]:
    """The task of one block: run it, write it, mark it done. Returns (index, cases).

    BLAS is limited to one thread meanwhile: each worker thread runs its own serial kernel.
    """
    with threadpool_limits(1, user_api="blas"):
        ncase = write_block(Path(path), spec, grid, plan, index)
    return index, ncase


def warm_kernels(spec: Spec, grid: Grid) -> None:
    """Compile, or load from Numba's cache, every kernel the sweep's blocks will call, by
    running one case of two steps (``CAPACITY_MIN_STEPS`` for the memory capacity) per kernel
    in this process.

    Workers started afterwards (the embedded cluster, or ``dask worker`` processes on a file
    system that sees this one's cache) then load the machine code instead of compiling it
    each before its first block.
    """
    family = get_family(spec.family)
    fixed = {k: v for k, v in spec.model.items() if k != "family"}
    outputs = list(family.variables(fixed, grid.coords, spec.run))
    capacity = set(CAPACITY_OUTPUTS) & set(outputs)
    steps = CAPACITY_MIN_STEPS if capacity else 2  # the capacity's window needs this many
    run = spec.run.model_copy(update={"steps": steps, "record": "all", "num_delays": 1})
    for variant in family.kernel_variants(fixed, grid.coords):
        flat = {d: np.asarray([variant.get(d, grid.coords[d][0])]) for d in grid.dims}
        params = family.case_params(fixed, flat, 1)
        if "loss_step" in params and params["loss_step"][0] is not None:
            params["loss_step"] = np.zeros(1, dtype=np.int64)  # a step of the 2-step probe
        family.run_cases(params, run, outputs)


def is_complete(spec: Spec, grid: Grid, path: Path) -> bool:
    """Whether ``path`` holds this spec's finished sweep, every block done and intact (so
    that a run has nothing to do)."""
    attrs = store_attrs(path)
    if attrs is None or attrs.get("spec_sha256") != spec.sha256:
        return False
    if attrs.get("rnnlab_version") != provenance()["rnnlab_version"]:
        return False
    if integrity.attributes_damage(attrs) is not None:
        return False  # the run refuses it, saying why
    report = integrity.check(path, stored_plan(attrs, grid))
    return bool(report.done.all()) and not report.damage


def _refuse_foreign(path: Path, attrs: dict | None) -> None:
    """Refuse a non-empty folder that is not an rnnlab store (``attrs`` None)."""
    if path.exists() and attrs is None and any(path.iterdir()):
        raise StoreError(
            f"store.path: {path} exists and is not an rnnlab store: rnnlab writes a new "
            "store only into a new or empty folder (and --overwrite replaces only its own "
            "stores): choose another --store"
        )


def _prepare_store(spec: Spec, grid: Grid, plan: BlockPlan, path: Path, overwrite: bool):
    """Create the store, or check that the existing one is this spec's.

    Returns the block plan in force (the stored one when resuming) and the done flags.
    """
    attrs = store_attrs(path)
    if attrs is not None and not overwrite:
        trusted_attrs(path, attrs)
        if attrs.get("spec_sha256") != spec.sha256:
            raise StoreError(
                f"store.path: {path} holds a sweep of a different spec: use --overwrite to "
                "replace it, or another --store"
            )
        ours = provenance()["rnnlab_version"]
        if attrs.get("rnnlab_version") != ours:
            raise StoreError(
                f"store.path: {path} was written by rnnlab {attrs.get('rnnlab_version')}, this "
                f"is {ours}: use --overwrite to recompute it, or another --store"
            )
        check_store_writable(path)
        return _resume(path, stored_plan(attrs, grid))
    _refuse_foreign(path, attrs)
    check_writable(path)
    # built beside its place and renamed into it: a killed creation leaves no store behind
    tmp = staging(path, "creating")
    try:
        create_store(tmp, spec, grid, plan)
        fault_point("create")
        if overwrite and attrs is not None:
            remove_own(path, lambda p: store_attrs(p) is not None, "store.path", "an rnnlab store")
        try:
            if path.exists():
                path.rmdir()  # an empty folder (anything else appeared meanwhile)
            tmp.rename(path)
        except OSError:
            raise StoreError(
                f"store.path: {path} was created by someone else while this run made it "
                "(another run of the same store?): run the command again to resume that one"
            ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return plan, np.zeros(plan.nblocks, dtype=bool), None


def _resume(path: Path, plan: BlockPlan):
    """The plan, the done flags and the damage of an existing store: blocks marked done
    whose chunks are missing or of another size are marked not done, to be recomputed."""
    report = integrity.check(path, plan)
    if report.unrepairable:
        raise StoreError(f"store.path: {report.beyond_blocks(path)}")
    integrity.repair(path, report)
    return plan, report.intact, report if report.damage else None


def run_sweep(
    spec_or_path,
    client=None,
    *,
    store: str | Path | None = None,
    overwrite: bool = False,
    sync: bool = False,
    max_in_flight: int | None = None,
    progress: bool | Callable[[int, int, int, float], None] = False,
) -> SweepResult:
    """Run a sweep into its Zarr store, resuming if the store holds part of it already.

    Parameters
    ----------
    spec_or_path : str, Path, dict or (Spec, Grid)
        The spec file (TOML or YAML), a store (its own spec, into itself), or the spec as a
        dict.
    client : dask.distributed.Client, optional
        Where to run the blocks. Default: an embedded ``LocalCluster`` sized to the machine
        (one single-threaded worker process per core), closed at the end.
    store : path, optional
        Overrides the spec's ``store.path``.
    overwrite : bool
        Replace a store that holds another spec's sweep (refused otherwise).
    sync : bool
        Run the blocks one after the other in this process (no Dask; for debugging).
    max_in_flight : int, optional
        Most blocks submitted at once (default: 4 per worker thread).
    progress : bool or callable
        True for a progress bar on the terminal; a callable gets
        ``(blocks_done, blocks_total, cases_done, elapsed_seconds)`` after each block.

    Returns
    -------
    SweepResult
        Its ``path`` is the store; ``os.fspath(result)`` works too.

    Raises
    ------
    rnnlab.jobs.spec.SpecError
        For an invalid spec (nothing is written).
    rnnlab.jobs.store.StoreError
        For a store that holds another spec, or a path that cannot be written.
    """
    t0 = time.perf_counter()
    spec, grid, plan, path = open_sweep(spec_or_path, store)
    _refuse_foreign(path, store_attrs(path))  # before the lock file is made beside it
    check_writable(path)
    with store_lock(path):
        result = _sweep_locked(
            spec, grid, plan, path, client, overwrite, sync, progress, max_in_flight
        )
    result.seconds = time.perf_counter() - t0
    return result


def _sweep_locked(spec, grid, plan, path, client, overwrite, sync, progress, max_in_flight):
    """The sweep, with the store's writer lock held."""
    plan, done, damage = _prepare_store(spec, grid, plan, path, overwrite)
    todo = [int(i) for i in np.flatnonzero(~done)]
    result = SweepResult(path, plan.nblocks, 0, int(done.sum()), 0.0, damage)
    if not todo:
        finalise(path)  # a run killed after its last block ends here
        return result
    cases_per_block = int(np.prod(plan.chunks, dtype=np.int64))
    reporter = _Reporter(progress, plan.nblocks, int(done.sum()), cases_per_block)
    try:
        if sync:
            for i in todo:
                try:
                    _, n = run_block(spec, grid, plan, str(path), i)
                except Exception as err:
                    raise SweepError.of_block(path, i, err) from err
                reporter.block_done(n)
        else:
            warm_kernels(spec, grid)
            _run_on_dask(client, spec, grid, plan, path, todo, max_in_flight, reporter)
    finally:
        reporter.close()
    finalise(path)
    result.ran = len(todo)
    return result


def _run_on_dask(client, spec, grid, plan, path, todo, max_in_flight, reporter):
    from dask.distributed import as_completed

    own = client is None
    if own:
        client = embedded_client()
        reporter.message(f"Dask dashboard: {client.dashboard_link}")
    try:
        nthreads = sum(client.nthreads().values()) or 1
        window = max_in_flight or 4 * nthreads
        # scatter the spec once: every task refers to it instead of pickling it again
        spec_f, grid_f, plan_f = client.scatter([spec, grid, plan], broadcast=True)
        where = str(path.absolute())  # workers may run in another folder
        pending, index = iter(todo), {}

        def submit(i):
            fut = client.submit(run_block, spec_f, grid_f, plan_f, where, i, pure=False)
            index[fut.key] = i
            return fut

        queue = as_completed([submit(i) for i in _take(pending, window)])
        for fut in queue:
            try:
                _, n = fut.result()
            except Exception as err:
                client.cancel([f for f in list(queue.futures) if f is not fut])
                raise SweepError.of_block(path, index[fut.key], err) from err
            reporter.block_done(n)
            for i in _take(pending, 1):
                queue.add(submit(i))
    finally:
        if own:
            cluster = client.cluster
            client.close()
            cluster.close()


def _take(it, k):
    out = []
    for _ in range(k):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


#: Where the embedded cluster's dashboard listens unless told: a free port, this machine only.
DASHBOARD = "127.0.0.1:0"


#: Seconds an embedded cluster's workers may take to start, unless told.
CLUSTER_TIMEOUT = 60.0


#: Dask starts workers with glibc's heap trimmed above 64 KiB, which also fixes glibc's mmap
#: threshold at 128 KiB: every array the kernels allocate per call (a few MB for BPTT) is a
#: fresh mapping whose pages fault in again each call. Training ran 1.75x slower for it
#: (measured: 740,000 page faults per 500 LSTM updates, against none). The embedded cluster
#: keeps freed memory up to 128 MiB and serves arrays up to 32 MiB (glibc's largest) from
#: the heap.
WORKER_MALLOC = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 2**27,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 2**25,
}


def _is_main_guard(node) -> bool:
    """Whether an AST statement is ``if __name__ == "__main__":`` (either order)."""
    import ast

    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    sides = [node.test.left, *node.test.comparators]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def unguarded_main() -> bool:
    """Whether starting worker processes now would run the caller's script again.

    Dask's worker processes are spawned: each imports the main module, which runs its
    module-level code again unless that code sits under ``if __name__ == "__main__":``.
    True when the main module is a file (``python script.py`` or ``python -m module``) and
    the statement of it that is running (on the main thread) is not inside such a block.
    False in a notebook, ``python -c``, the ``rnnlab`` command and pytest.
    """
    import ast
    import sys
    import threading

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = sys._current_frames().get(threading.main_thread().ident)
    line, own = None, getattr(main, "__dict__", None)
    while frame is not None:  # the outermost frame of the main module's own code
        if frame.f_globals is own and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if not path or line is None:
        return False
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            return not _is_main_guard(node)
    return True


#: The one line a script without the main guard sees before its sweep runs on threads.
UNGUARDED_NOTICE = (
    "rnnlab: this script starts the embedded Dask cluster outside "
    '`if __name__ == "__main__":`, so its workers run as threads of this process; put the '
    "call under that guard for one worker process per core"
)


def embedded_client(
    n_workers: int | None = None,
    dashboard: str | None = DASHBOARD,
    timeout: float = CLUSTER_TIMEOUT,
    processes: bool | None = None,
):
    """A ``Client`` on a new ``LocalCluster``: one single-threaded worker per core, each its
    own process (threads of this one when :func:`unguarded_main`: a script without the main
    guard would otherwise run again in every worker, and fail).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes (default: one per core).
    dashboard : str or None
        ``HOST:PORT`` of the dashboard (default ``127.0.0.1:0``: a free port reachable from
        this machine only), or None for no dashboard. The scheduler, the workers and their
        nannies always listen on 127.0.0.1 only.
    timeout : float
        Seconds each worker may take to start (and, later, to miss its scheduler before it
        stops); past it the cluster fails to start with an error instead of waiting.
    processes : bool, optional
        Worker processes (True) or threads of this process (False; the kernels release the
        GIL, so they run in parallel too). Default: processes, unless
        :func:`unguarded_main` (then threads, with :data:`UNGUARDED_NOTICE` on stderr).
    """
    import sys

    import dask
    from dask.distributed import Client, LocalCluster

    if processes is None:
        processes = not unguarded_main()
        if not processes:
            print(UNGUARDED_NOTICE, file=sys.stderr)
    n = n_workers or os.cpu_count() or 1
    # listening on 127.0.0.1 only (threads too: tcp, whose dashboard link names that host)
    where = {"host": "127.0.0.1", **({} if processes else {"protocol": "tcp"})}
    with dask.config.set(WORKER_MALLOC):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=dashboard,
            worker_dashboard_address=None,
            death_timeout=timeout,
            **where,
        )
    return Client(cluster, timeout=timeout)


class _Reporter:
    """Progress: a rich bar on a terminal, a callable, or nothing."""

    def __init__(self, progress, total: int, done: int, cases_per_block: int):
        self.total, self.done, self.cases = total, done, 0
        self.t0 = time.perf_counter()
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("blocks"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=total, completed=done, rate="")

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text)

    def block_done(self, ncase: int) -> None:
        self.done += 1
        self.cases += ncase
        elapsed = time.perf_counter() - self.t0
        if self.bar is not None:
            rate = f"{self.cases / max(elapsed, 1e-9):,.0f} cases/s"
            self.bar.update(self.task, completed=self.done, rate=rate)
        if self.callback is not None:
            self.callback(self.done, self.total, self.cases, elapsed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
