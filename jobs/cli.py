"""The ``rnnlab`` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from importlib import metadata

import numpy as np

__all__ = ["main"]


def _version() -> str:
    try:
        return metadata.version("rnnlab")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``rnnlab: error: ...`` and the pointer to --help."""

    def error(self, message):
        self.exit(2, f"rnnlab: error: {self.prog}: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"give a positive, finite number of seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnnlab`` (one subcommand per task)."""
    parser = _Parser(
        prog="rnnlab",
        description="Massive grids of recurrent-network simulations: stability, memory and "
        "gradients (Numba kernels, Dask scheduling, Zarr stores).",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the engine demo (the lecture's scalar and vector recursions) into a Zarr store",
        description="Run the lecture's scalar and vector recursions, print what was measured "
        "next to the theory, and write the results to a Zarr store.",
    )
    demo.add_argument(
        "--out",
        default="results/demo.zarr",
        help="Zarr store to write (default: %(default)s; an earlier demo store there is "
        "replaced, any other folder refused)",
    )
    demo.add_argument("--steps", type=int, default=1000, help="steps per run (default: 1000)")

    val = sub.add_parser(
        "validate",
        help="check a sweep spec and print its grid, blocks and output size; runs nothing",
    )
    val.add_argument("spec", help="the sweep spec (TOML or YAML)")

    run = sub.add_parser(
        "run",
        help="run a sweep into its Zarr store (resumes an interrupted one)",
        description="Run a sweep spec into its Zarr store. With no scheduler option an "
        "embedded LocalCluster sized to the machine runs it. Running the same command again "
        "resumes: only unfinished blocks are recomputed.",
    )
    run.add_argument(
        "spec",
        metavar="SPEC",
        help="the sweep spec (TOML or YAML), or a store: its own spec, into itself",
    )
    run.add_argument("--store", help="Zarr store to write (default: the spec's store.path)")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a store that holds a different spec's sweep",
    )
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="submit to an existing Dask scheduler (tcp://host:port)",
    )
    where.add_argument(
        "--scheduler-file", metavar="FILE", help="submit to the scheduler described in this file"
    )
    where.add_argument(
        "--local",
        type=int,
        metavar="N",
        help="embedded LocalCluster with N single-threaded workers",
    )
    where.add_argument(
        "--sync", action="store_true", help="run blocks one by one in this process (debugging)"
    )
    run.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help="seconds to wait for a scheduler (or its scheduler file) to answer (default: "
        "10), or for the embedded cluster's workers to start (default: 60)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _dashboard_option(run)

    status = sub.add_parser(
        "status",
        help="print done, missing and damaged blocks and the provenance",
        description="Print the sweep's blocks (done, missing, damaged) and its provenance. "
        "Damaged blocks (a chunk missing, of another size, or with --verify failing its "
        "checksum) are marked not done, so that `rnnlab run STORE` recomputes them; the exit "
        "code is 1 if damage was found.",
    )
    status.add_argument("store", help="the sweep's Zarr store")
    status.add_argument(
        "--verify",
        action="store_true",
        help="also read every chunk and check its checksum (finds a changed byte)",
    )

    figures = sub.add_parser(
        "figures",
        help="draw every applicable figure of stores (PNG and SVG) with an index.html",
        description="Draw every figure that the stores have data for, as PNG and SVG, and an "
        "index.html with captions, key numbers and each store's spec and provenance.",
    )
    figures.add_argument("stores", nargs="+", metavar="STORE", help="rnnlab Zarr stores")
    figures.add_argument(
        "--out", default="results/report", help="report folder (default: %(default)s)"
    )
    figures.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="draw stores with missing or damaged blocks too (as gaps, said on each figure)",
    )
    report = sub.add_parser(
        "report",
        help="run sweep specs (resuming finished ones for free), then draw their figures",
        description="From nothing to a folder of figures: validate every spec, run each sweep "
        "into its store on one embedded cluster (a complete store is not recomputed), then "
        "write the figures and index.html of all the stores.",
    )
    report.add_argument("specs", nargs="+", metavar="SPEC", help="sweep specs (TOML or YAML)")
    report.add_argument(
        "--out", default="results/report", help="report folder (default: %(default)s)"
    )
    report.add_argument("--local", type=int, metavar="N", help="embedded cluster of N workers")
    report.add_argument("--sync", action="store_true", help="run in this process, no Dask")
    report.add_argument("--no-progress", action="store_true", help="no progress bars")
    report.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        help="seconds the embedded cluster's workers may take to start (default: 60)",
    )
    _dashboard_option(report)
    return parser


def _address(text: str) -> str:
    """``off`` or ``HOST:PORT`` with a port number (argparse type of --dashboard)."""
    host, sep, port = text.rpartition(":")
    if text.lower() == "off" or (sep and host and port.isdigit() and int(port) < 65536):
        return text
    raise argparse.ArgumentTypeError(
        f"give HOST:PORT (such as 127.0.0.1:8787) or off, not {text!r}"
    )


def _dashboard_option(parser) -> None:
    parser.add_argument(
        "--dashboard",
        type=_address,
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="where the embedded cluster's dashboard listens (default: a free port on "
        "127.0.0.1, this machine only; 0.0.0.0:8787 opens it to the network on purpose; "
        "'off' for none)",
    )


class _BadOption(ValueError):
    """An option the command cannot use (exit 2)."""


class _ClusterFailed(RuntimeError):
    """The embedded cluster did not start (exit 1)."""


def _check_listen(address: str) -> None:
    """Refuse a dashboard address this machine cannot listen on, before any cluster."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host.strip("[]"), int(port)))
    except OSError as err:
        raise _BadOption(
            f"--dashboard: cannot listen on {address} ({err.strerror}): give an address of "
            "this machine with a free port (127.0.0.1:0 picks one), or off"
        ) from None


def _embedded(args):
    """The embedded cluster's client of ``run`` and ``report``, its dashboard as asked."""
    from .runner import CLUSTER_TIMEOUT, embedded_client

    # the workers' warnings on a Ctrl-C (cancelled tasks) and their "Compute Failed" dumps
    # are noise on a terminal: a failed block is reported in one line by the run itself;
    # a DASK_LOGGING__DISTRIBUTED set by the user wins
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    dashboard = None if args.dashboard.lower() == "off" else args.dashboard
    if dashboard is not None:
        _check_listen(dashboard)
    timeout = getattr(args, "timeout", None) or CLUSTER_TIMEOUT
    try:
        client = embedded_client(args.local, dashboard=dashboard, timeout=timeout)
    except Exception as err:  # distributed raises assertions, timeouts, RuntimeErrors
        _close_clusters_quietly()
        raise _ClusterFailed(
            f"the embedded cluster did not start within {timeout:g} s "
            f"({type(err).__name__}: {str(err)[:200]}): retry with a longer --timeout, "
            "or run with --sync"
        ) from None
    if dashboard is not None:
        print(f"Dask dashboard: {client.dashboard_link}")
    return client


def _fail(msg: str) -> int:
    for line in msg.splitlines() or [msg]:
        print(f"rnnlab: error: {line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` command. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    hook = sys.unraisablehook
    if args.command in ("run", "report"):
        # a shell starts background jobs with SIGINT ignored, and Python keeps an inherited
        # "ignore": restore Ctrl-C / kill -INT, which stop a sweep cleanly (exit 130, resumable)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = _CtrlCInCallback(hook)
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:  # anywhere else (starting up, a cluster starting): one line
        _close_clusters_quietly()
        return _interrupted()
    finally:
        sys.unraisablehook = hook


class _CtrlCInCallback:
    """An unraisable-exception hook for a Ctrl-C that lands in a callback (distributed's
    garbage-collection timer): Python would print it and drop it, so the sweep went on.
    Raise it again where it counts, and keep quiet about that callback's aftermath."""

    def __init__(self, previous):
        self.previous, self.seen = previous, False

    def __call__(self, unraisable):
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            self.seen = True
            signal.raise_signal(signal.SIGINT)
        elif not self.seen:
            self.previous(unraisable)


def _interrupted(path=None) -> int:
    """The one line of a Ctrl-C (what is done, how to resume); the exit code 130."""
    from .store import read_done

    state = ""
    try:
        if path is not None and path.exists():
            done = read_done(path)
            state = f" with {int(done.sum())} of {done.size} blocks of {path} done"
    except Exception:  # a store still being created: nothing of it is there yet
        state = ""
    print(f"rnnlab: interrupted{state}: run the same command again to resume", file=sys.stderr)
    return 130


def _close_clusters_quietly() -> None:
    """Close an embedded cluster that Ctrl-C interrupted while it started.

    distributed cannot close cleanly a cluster whose workers are still starting (its exit
    hook asserts on their state and prints a traceback): close what can be closed here,
    silently, and drop that hook.
    """
    import atexit
    import contextlib
    import io

    spec = sys.modules.get("distributed.deploy.spec")
    if spec is None:
        return
    with contextlib.suppress(BaseException), contextlib.redirect_stderr(io.StringIO()):
        spec.close_clusters()
    atexit.unregister(spec.close_clusters)


def _dispatch(parser, args) -> int:
    from .paths import PathError

    if args.command == "demo":
        if args.steps < 1:
            parser.error(f"--steps must be >= 1, got {args.steps}")
        from .demo import run_demo

        try:
            run_demo(args.out, steps=args.steps)
        except PathError as err:
            return _fail(str(err))
        return 0
    from .runner import SweepError
    from .spec import SpecError
    from .store import StoreError

    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "run":
            return _run(args)
        if args.command == "status":
            return _status(args)
        if args.command == "figures":
            return _figures(args.stores, args.out, args.allow_incomplete)
        if args.command == "report":
            return _report(args)
    except (SpecError, StoreError, PathError, _BadOption) as err:
        return _fail(str(err))
    except (SweepError, _ClusterFailed, OSError) as err:  # the run failed, not its input
        if os.environ.get("RNNLAB_DEBUG"):
            raise
        _fail(_os_error(err) if isinstance(err, OSError) else str(err))
        return 1
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2  # pragma: no cover


def _os_error(err: OSError) -> str:
    """One line for an operating-system failure (a full disk, a file that vanished)."""
    where = f"{err.filename}: " if err.filename else ""
    return (
        f"{where}{err.strerror or err}: fix that and run the same command again (a sweep "
        "resumes; RNNLAB_DEBUG=1 shows the traceback)"
    )


def _validate(args) -> int:
    from .runner import open_sweep

    spec, grid, plan, path = open_sweep(args.spec)
    print(_describe(spec, grid, plan, path))
    print("spec is valid")
    return 0


def _describe(spec, grid, plan, path) -> str:
    from .families import get_family
    from .store import store_bytes

    family = get_family(spec.family)
    ntime = len(family.time_steps(spec.run))
    steps = f"{spec.run.steps} {family.step_name}s"
    steps += f", input {spec.run.input}" if family.has_input else ""
    dims = ", ".join(f"{d}: {n}" for d, n in zip(grid.dims, grid.shape, strict=True))
    return "\n".join(
        [
            f"spec:     family {spec.family}, {steps}, "
            f"recording {spec.run.record} ({ntime} {family.step_name}s kept)",
            f"grid:     {grid.size:,} cases ({dims or 'one case'})",
            f"blocks:   {plan.nblocks:,} of up to {int(np.prod(plan.chunks)):,} cases, "
            f"about {plan.seconds_per_block:.2g} s each on one core "
            f"(total about {plan.seconds_per_block * plan.nblocks:.3g} core-seconds)",
            f"store:    {path}, about {_size(store_bytes(spec, grid))} uncompressed",
        ]
    )


def _size(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1000:
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return f"{nbytes:.3g} PB"


def _run(args) -> int:
    from .runner import is_complete, open_sweep, run_sweep
    from .store import finalise, store_lock, unfinalised

    spec, grid, plan, path = open_sweep(args.spec, args.store)
    print(_describe(spec, grid, plan, path))
    if not args.overwrite and is_complete(spec, grid, path):  # no cluster to start for nothing
        if unfinalised(path):
            with store_lock(path):
                if finalise(path):
                    print(f"{path}: finalised (end time, metadata) after an earlier run stopped")
        print(f"{path}: all {plan.nblocks} blocks are done already; nothing to do")
        return 0
    client = None
    if args.scheduler or args.scheduler_file:
        client = _connect(args)
        if client is None:
            where = args.scheduler or args.scheduler_file
            return _fail(
                f"--scheduler: no Dask scheduler answered at {where} within {_wait(args):g} s: "
                "check the address and that the scheduler is running"
            )
        print(f"Dask dashboard: {client.dashboard_link}")
    elif not args.sync:
        if args.local is not None and args.local < 1:
            return _fail(f"--local must be >= 1, got {args.local}")
        client = _embedded(args)
    try:
        result = run_sweep(
            (spec, grid),
            client,
            store=path,
            overwrite=args.overwrite,
            sync=args.sync,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        return _interrupted(path)
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if not (args.scheduler or args.scheduler_file) and cluster is not None:
                cluster.close()
    if result.damage is not None:
        print(f"{path}: found {result.damage.summary()}: repaired")
    if result.ran == 0:
        print(f"{path}: all {result.nblocks} blocks are done already; nothing to do")
    else:
        resumed = f" ({result.already_done} were done already)" if result.already_done else ""
        print(f"{path}: ran {result.ran} blocks in {result.seconds:.1f} s{resumed}; complete")
    return 0


#: Seconds to wait for a scheduler to answer, unless --timeout says.
SCHEDULER_TIMEOUT = 10.0


def _wait(args) -> float:
    return args.timeout or SCHEDULER_TIMEOUT


def _connect(args):
    from dask.distributed import Client

    try:
        if args.scheduler:
            return Client(args.scheduler, timeout=_wait(args))
        # Dask waits for a missing scheduler file for ever: wait --timeout for it here
        deadline = time.monotonic() + _wait(args)
        while not os.path.exists(args.scheduler_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not os.path.exists(args.scheduler_file):
            return None
        return Client(scheduler_file=args.scheduler_file, timeout=_wait(args))
    except (OSError, TimeoutError, ValueError):
        return None


def _status(args) -> int:
    from pathlib import Path

    from . import integrity
    from .store import StoreError, store_attrs, stored_plan, stored_spec, trusted_attrs

    path = Path(args.store)
    if not path.exists():
        raise StoreError(f"{path}: no such store: give the path of an rnnlab store")
    attrs = store_attrs(path)
    if attrs is None:
        raise StoreError(f"{path}: not an rnnlab sweep store (no spec_sha256 attribute)")
    try:
        trusted_attrs(path, attrs)
    except StoreError as err:  # damage found: exit 1, as for any other damage
        _fail(str(err))
        return 1
    spec, grid = stored_spec(attrs)
    plan = stored_plan(attrs, grid)
    report = integrity.check(path, plan, verify=args.verify)
    done = report.intact
    if report.damage:
        note = _mark_damaged(path, report)
        attrs = store_attrs(path) or attrs
    else:
        attrs = _finalise_if_needed(path) or attrs
    print(_describe(spec, grid, plan, path))
    missing = np.flatnonzero(~done)
    print(f"done:     {int(done.sum())} of {done.size} blocks")
    if missing.size:
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if missing.size > 20 else "")
        print(f"missing:  {missing.size} blocks: {shown}")
    else:
        print("missing:  none (the sweep is complete)")
    checked = "sizes and checksums" if args.verify else "sizes; --verify reads checksums too"
    if report.damage:
        print(f"damaged:  {report.counts()} ({checked}):")
        for d in report.damage[:20]:
            print(f"          {d}")
        if len(report.damage) > 20:
            print(f"          ... and {len(report.damage) - 20} more")
        print(f"          {note}")
    else:
        print(f"damaged:  none (done blocks checked: {report.checked_blocks}; {checked})")
    for key in ("spec_sha256", "rnnlab_version", "git_commit", "host", "start_time", "end_time"):
        if key in attrs:
            print(f"{key + ':':<17} {attrs[key]}")
    return 1 if report.damage else 0


def _mark_damaged(path, report) -> str:
    """Mark the damaged blocks not done (under the store's lock); what was done, and the
    command that repairs the store."""
    from . import integrity
    from .store import StoreError, store_lock

    if report.unrepairable:
        return f"not repairable block by block: `rnnlab run {path} --overwrite` recomputes it"
    try:
        with store_lock(path):
            integrity.repair(path, report)
    except StoreError:
        return (
            f"not marked (another rnnlab command holds {path}): run `rnnlab status` again "
            "when it ends"
        )
    except OSError as err:
        return (
            f"not marked ({err.strerror}): `rnnlab run {path}` recomputes them where the "
            "store can be written"
        )
    if not report.blocks:
        return "the metadata was consolidated again from its documents (checked): repaired"
    return f"marked not done: `rnnlab run {path}` recomputes them"


def _finalise_if_needed(path) -> dict | None:
    """Finalise a store whose run stopped after its last block; its new attributes."""
    from .store import StoreError, finalise, store_attrs, store_lock, unfinalised

    try:
        if unfinalised(path):
            with store_lock(path):  # a run writing it now will finalise it itself
                if finalise(path):
                    print(f"{path}: finalised (end time, metadata) after an earlier run stopped")
                    return store_attrs(path)
    except StoreError:
        pass
    except OSError as err:
        print(
            f"{path}: complete but not finalised ({err.strerror}): run it again where it "
            "can be written"
        )
    return None


def _figures(stores, out, allow_incomplete: bool = False) -> int:
    # analysis sits above jobs (DESIGN.md): imported here, when the command asks for it
    from rnnlab.analysis import ReportError, write_report

    try:
        rep = write_report(stores, out, allow_incomplete=allow_incomplete)
    except ReportError as err:
        return _fail(str(err))
    print(f"{rep.out}: {len(rep.figures)} figures ({len(rep.skipped)} skipped: no data)")
    for line in (f"  {f['name']} ({f['store']})" for f in rep.figures):
        print(line)
    print(f"open {rep.out / 'index.html'}")
    return 0


def _report(args) -> int:
    from rnnlab.analysis.report import ReportError, check_out

    from .runner import is_complete, open_sweep, run_sweep

    if args.local is not None and args.local < 1:
        return _fail(f"--local must be >= 1, got {args.local}")
    sweeps = [open_sweep(spec) for spec in args.specs]  # every spec valid before any runs
    try:
        check_out(args.out)  # and the report's folder
    except ReportError as err:
        return _fail(str(err))
    pending = [s for s in sweeps if not is_complete(s[0], s[1], s[3])]
    client = None if args.sync or not pending else _embedded(args)  # no cluster for nothing
    try:
        for spec, grid, plan, path in sweeps:
            print(_describe(spec, grid, plan, path))
            result = run_sweep(
                (spec, grid), client, store=path, sync=args.sync, progress=not args.no_progress
            )
            if result.damage is not None:
                print(f"{path}: found {result.damage.summary()}: repaired")
            print(f"{path}: {result.ran} blocks run, {result.already_done} done already")
    except KeyboardInterrupt:
        return _interrupted()
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    return _figures([path for *_, path in sweeps], args.out)


def console() -> int:
    """The ``rnnlab`` console script: :func:`main`, where a closed output pipe (``rnnlab
    status STORE | head -1``) ends the command quietly, like any Unix tool; a sweep
    (``run``, ``report``) keeps Python's handling, so that it stops between blocks instead
    of dying in one."""
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "report"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console())
