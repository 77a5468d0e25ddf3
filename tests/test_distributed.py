"""Sweeps through real Dask processes on 127.0.0.1: equal to --sync, robust to killed
processes, and workers that find every kernel compiled."""

import os
import signal

import pytest

from .sweeps import (
    VECTOR_SPEC,
    assert_same_store,
    dask_cluster,
    rnnlab,
    rnnlab_popen,
    store_arrays_one,
    wait_for_blocks,
    write_spec,
)

# ~16 blocks of ~0.15 s: long enough to kill something in the middle, short enough for CI
LONG = dict(n=32, num=6, seeds=4, steps=10000, block_seconds=0.1)
SHORT = dict(n=8, num=5, seeds=4, steps=500, block_seconds=0.001)


def _on(address):
    """``rnnlab run`` arguments for the existing scheduler at ``address``."""
    return ("run", "spec.toml", "--scheduler", address, "--no-progress", "--store", "dist.zarr")


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The sweeps run with --sync once per module, to compare against."""
    made = {}

    def make(**values):
        key = tuple(sorted(values.items()))
        if key not in made:
            folder = tmp_path_factory.mktemp("sync")
            write_spec(folder, VECTOR_SPEC, **values)
            out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=folder)
            assert out.returncode == 0, out.stderr
            made[key] = folder / "vector.zarr"
        return made[key]

    return make


def test_an_embedded_cluster_equals_sync_and_its_workers_compile_nothing(tmp_path, references):
    """An embedded cluster of one worker gives the sync store bit for bit (two workers: the
    resume test below), and its fresh worker process loads every kernel from the cache."""
    from rnnlab.engine._jit import compile_stats
    from rnnlab.jobs.runner import embedded_client, run_sweep

    sync = references(**SHORT)
    spec = write_spec(tmp_path, VECTOR_SPEC, **SHORT)
    client = embedded_client(1)
    try:
        run_sweep(spec, client, store=tmp_path / "local.zarr")
        stats = client.run(compile_stats)
    finally:
        client.close()
        client.cluster.close()
    assert_same_store(sync, tmp_path / "local.zarr", ignore=())
    assert len(stats) == 1
    assert _worker_compiles(stats) == dict.fromkeys(stats, 0), stats


def test_a_sweep_on_a_real_cluster_survives_a_killed_worker_and_equals_sync(tmp_path, references):
    """Through a separately started scheduler and two workers, one of them killed mid-sweep:
    no block is lost and the store equals the --sync one bit for bit."""
    sync = references(**LONG)
    write_spec(tmp_path, VECTOR_SPEC, **LONG)
    with dask_cluster(tmp_path, workers=2) as (address, workers):
        run = rnnlab_popen(*_on(address), cwd=tmp_path)
        wait_for_blocks(tmp_path / "dist.zarr", 3, timeout=180, proc=run)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert "Dask dashboard" in stdout
    assert (store_arrays_one(tmp_path / "dist.zarr", "block_done") == 1).all()
    assert_same_store(sync, tmp_path / "dist.zarr", ignore=())


def _done(store) -> int:
    return int((store_arrays_one(store, "block_done") == 1).sum())


def _interrupt(args, cwd, store, sig, after: int) -> int:
    """Start ``rnnlab run``, send ``sig`` once ``after`` more blocks are done (SIGKILL to
    the whole process group: the run and its embedded cluster at once); return the blocks
    done then."""
    before = _done(store) if store.exists() else 0
    run = rnnlab_popen(*args, cwd=cwd)
    done = wait_for_blocks(store, before + after, timeout=180, proc=run)
    if sig == signal.SIGKILL:
        os.killpg(run.pid, signal.SIGKILL)
    else:
        run.send_signal(sig)
    stdout, stderr = run.communicate(timeout=120)
    if sig == signal.SIGINT:  # exit 130 and one line, no Dask noise
        assert run.returncode == 130, f"{done} blocks done at the signal\n{stdout}\n{stderr}"
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnnlab: interrupted with "), stderr
        assert lines[0].endswith(": run the same command again to resume")
    now = _done(store)
    assert done <= now < len(store_arrays_one(store, "block_done")), "not mid-sweep"
    return now


def test_a_run_stopped_by_sigint_then_killed_resumes_and_ends_equal(tmp_path, references):
    """Ctrl-C (exit 130, the blocks written kept), then SIGKILL of the run and its cluster,
    then a resume that runs only the missing blocks: equal to --sync bit for bit."""
    sync = references(**LONG)
    write_spec(tmp_path, VECTOR_SPEC, **LONG)
    store = tmp_path / "run.zarr"
    args = ("run", "spec.toml", "--local", "2", "--no-progress", "--store", store.name)
    _interrupt(args, tmp_path, store, signal.SIGINT, after=3)
    before = _interrupt(args, tmp_path, store, signal.SIGKILL, after=2)
    again = rnnlab(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    total = len(store_arrays_one(store, "block_done"))
    assert f"ran {total - before} blocks" in again.stdout
    assert_same_store(sync, store, ignore=())
    last = rnnlab(*args, cwd=tmp_path)
    assert last.returncode == 0 and "nothing to do" in last.stdout
    assert "Dask dashboard" not in last.stdout  # no cluster is started for nothing


# -- warm workers: a fresh worker process finds every kernel in the cache ------------------

WARM_SPEC = """
[model]
family = "rnn"
n = 1
activation = "identity"  # the quickest kernel to compile
[grid]
w = {start = 0.5, stop = 1.5, num = 16}
[run]
steps = 200
[store]
path = "warm.zarr"
block_seconds = 0.00001
"""


def _fresh_cache(tmp_path):
    """An environment whose Numba cache starts empty (the engine's folder goes below it)."""
    return {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}


def _worker_compiles(stats: dict) -> dict:
    """{worker: number of specialisations it compiled} from ``client.run(compile_stats)``."""
    return {w: sum(row["compiled"] for row in s.values()) for w, s in stats.items()}


def test_separately_started_workers_compile_nothing(tmp_path):
    """From an empty cache: the run compiles each kernel once, before submitting any block;
    ``dask worker`` processes started on their own load them (zero compiles). (Without the
    runner's warm-up they compiled 22 specialisations each.)"""
    (tmp_path / "spec.toml").write_text(WARM_SPEC)
    env = _fresh_cache(tmp_path)
    with dask_cluster(tmp_path, workers=2, env=env) as (address, _):
        out = rnnlab(*_on(address), cwd=tmp_path, process=True, env=env)
        assert out.returncode == 0, out.stderr
        from dask.distributed import Client

        with Client(address, timeout=30) as client:
            from rnnlab.engine._jit import compile_stats

            stats = client.run(compile_stats)
    assert len(stats) == 2
    assert _worker_compiles(stats) == dict.fromkeys(stats, 0), stats
    assert sum(r["loaded"] for s in stats.values() for r in s.values()) >= 1, stats
