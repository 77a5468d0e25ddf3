"""Sweeps through real Dask processes on 127.0.0.1: equal to --sync, robust to killed processes."""

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

# ~30 blocks of ~0.2 s: long enough to kill something in the middle, short enough for CI
LONG = dict(n=32, num=10, seeds=6, steps=20000, block_seconds=0.2)


def _on(address):
    """``rnnlab run`` arguments for the existing scheduler at ``address``."""
    return ("run", "spec.toml", "--scheduler", address, "--no-progress", "--store", "dist.zarr")


@pytest.fixture
def reference(tmp_path):
    """The same sweep run with --sync, to compare against."""

    def make(**values):
        write_spec(tmp_path, VECTOR_SPEC, **values)
        out = rnnlab(
            "run", "spec.toml", "--sync", "--no-progress", "--store", "sync.zarr", cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        return tmp_path / "sync.zarr"

    return make


def test_sweep_through_a_real_scheduler_and_workers_equals_sync(tmp_path, reference):
    sync = reference(n=8, num=5, seeds=4, steps=500, block_seconds=0.001)
    with dask_cluster(tmp_path, workers=2) as (address, _):
        out = rnnlab(*_on(address), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Dask dashboard" in out.stdout
    assert_same_store(sync, tmp_path / "dist.zarr", ignore=())


def test_embedded_cluster_with_different_worker_counts_equals_sync(tmp_path, reference):
    sync = reference(n=8, num=5, seeds=4, steps=500, block_seconds=0.001)
    for workers in ("1", "2"):
        out = rnnlab(
            "run",
            "spec.toml",
            "--local",
            workers,
            "--no-progress",
            "--store",
            f"local{workers}.zarr",
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        assert_same_store(sync, tmp_path / f"local{workers}.zarr", ignore=())


def test_a_worker_killed_mid_sweep_does_not_lose_blocks(tmp_path, reference):
    sync = reference(**LONG)
    with dask_cluster(tmp_path, workers=2) as (address, workers):
        run = rnnlab_popen(*_on(address), cwd=tmp_path)
        wait_for_blocks(tmp_path / "dist.zarr", 3, timeout=180, proc=run)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert (store_arrays_one(tmp_path / "dist.zarr", "block_done") == 1).all()
    assert_same_store(sync, tmp_path / "dist.zarr", ignore=())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_killed_run_resumes_and_ends_equal(tmp_path, reference, sig):
    sync = reference(**LONG)
    args = ("run", "spec.toml", "--local", "2", "--no-progress", "--store", "run.zarr")
    run = rnnlab_popen(*args, cwd=tmp_path)
    done = wait_for_blocks(tmp_path / "run.zarr", 3, timeout=180, proc=run)
    if sig == signal.SIGKILL:
        os.killpg(run.pid, signal.SIGKILL)  # the run and its embedded cluster, at once
    else:
        run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    if sig == signal.SIGINT:
        assert run.returncode == 130, f"{done} blocks done at the signal\n{stdout}\n{stderr}"
    before = int((store_arrays_one(tmp_path / "run.zarr", "block_done") == 1).sum())
    assert done <= before < len(store_arrays_one(tmp_path / "run.zarr", "block_done"))
    again = rnnlab(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    total = len(store_arrays_one(tmp_path / "run.zarr", "block_done"))
    assert f"ran {total - before} blocks" in again.stdout
    assert_same_store(sync, tmp_path / "run.zarr", ignore=())
    last = rnnlab(*args, cwd=tmp_path)
    assert last.returncode == 0 and "nothing to do" in last.stdout
