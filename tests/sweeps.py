"""Helpers for the sweep tests: small specs, store comparison, real Dask processes."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import zarr

SCALAR_SPEC = """
[model]
family = "rnn"
n = 1

[grid]
activation = ["identity", "sigmoid", "tanh", "relu"]
w = {start = -1.5, stop = 1.5, num = 7}
bias = [-0.5, 0.0, 0.5]
amplitude = [-1.0, 1.0]

[run]
steps = 300
record = "log"
num_records = 30

[store]
path = "scalar.zarr"
block_seconds = %(block_seconds)s
"""

VECTOR_SPEC = """
[model]
family = "rnn"
n = %(n)s
weights = "gaussian"

[grid]
activation = ["tanh", "relu"]
spectral_radius = {start = 0.5, stop = 1.5, num = %(num)s}
seed = {range = %(seeds)s}

[run]
steps = %(steps)s
record = "log"
input = "noise"

[store]
path = "vector.zarr"
block_seconds = %(block_seconds)s
"""


def write_spec(folder: Path, template: str, name: str = "spec.toml", **values) -> Path:
    defaults = dict(block_seconds=5.0, n=8, num=5, seeds=3, steps=200)
    path = folder / name
    path.write_text(textwrap.dedent(template % {**defaults, **values}))
    return path


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a store, its integrity record included, read with zarr (no xarray
    decoding in between)."""
    group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    return {
        name: np.asarray(node[...])
        for name, node in group.members(max_depth=None)
        if isinstance(node, zarr.Array)
    }


def assert_same_store(a: Path, b: Path, ignore=("block_done", "integrity/chunk_bytes")) -> None:
    """Bit-for-bit equality of every variable (NaNs equal), except the block layout."""
    xa, xb = store_arrays(a), store_arrays(b)
    assert set(xa) == set(xb)
    for name in xa:
        if name in ignore:
            continue
        assert xa[name].dtype == xb[name].dtype, name
        np.testing.assert_array_equal(xa[name], xb[name], err_msg=name, strict=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rnnlab(*args, cwd, process=False, env=None, timeout=600):
    """Run the ``rnnlab`` command line: ``main(argv)`` in this process (pytest turns warnings
    into errors), or with ``process=True`` in a new Python process (warnings as errors too).

    Returns a ``subprocess.CompletedProcess`` (returncode, stdout, stderr) either way.
    """
    argv = [str(a) for a in args]
    if process:
        code = "import sys; from rnnlab.jobs.cli import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            env={**(os.environ if env is None else env), "PYTHONWARNINGS": "error"},
        )
    from rnnlab.jobs.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def rnnlab_popen(*args, cwd, env=None):
    code = "import sys; from rnnlab.jobs.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a test can kill the run and its cluster together
        env=env,
    )


def _dask_bin() -> str:
    return str(Path(sys.executable).with_name("dask"))


@contextlib.contextmanager
def dask_cluster(tmp_path: Path, workers: int = 2, nanny: bool = False, env=None):
    """A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, stopped at the end
    (``env``: their environment, default this process's).

    Yields ``(address, worker_processes)``.
    """
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir(exist_ok=True)
    procs = []
    files = []

    def log(name):
        files.append(open(logs / name, "w"))
        return files[-1]

    try:
        sched = subprocess.Popen(
            [
                _dask_bin(),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
                "--no-show",
            ],
            stdout=log("scheduler.log"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        procs.append(sched)
        _wait_for_port(port, 30)
        worker_procs = []
        for i in range(workers):
            w = subprocess.Popen(
                [
                    _dask_bin(),
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    ":0",
                    "--name",
                    f"w{i}",
                    "--local-directory",
                    str(tmp_path / f"w{i}"),
                    "--nanny" if nanny else "--no-nanny",
                ],
                stdout=log(f"worker{i}.log"),
                stderr=subprocess.STDOUT,
                env=env,
            )
            procs.append(w)
            worker_procs.append(w)
        from dask.distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(workers, timeout=60)
        yield address, worker_procs
    finally:
        # workers first, each given time to leave (a worker whose scheduler closes while it
        # is closing can hang), then the scheduler; whatever does not exit is killed
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in files:
            f.close()


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def wait_for_blocks(path: Path, k: int, timeout: float, proc=None) -> int:
    """Wait until at least ``k`` blocks of the store are done; return how many are."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            done = int((store_arrays_one(path, "block_done") == 1).sum())
        except Exception:  # the store may not exist yet
            done = 0
        if done >= k:
            return done
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {k} blocks done after {timeout} s")


def store_arrays_one(path: Path, name: str) -> np.ndarray:
    group = zarr.open_group(str(path), mode="r", use_consolidated=False)
    return np.asarray(group[name][...])
