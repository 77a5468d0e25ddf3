"""Sweeps end to end, in process: equal to the engine, deterministic, resumable, refusals."""

import numpy as np
import pytest
import xarray as xr

from rnnlab.engine import base_matrix, impulse_direction, simulate_rnn
from rnnlab.jobs.runner import run_sweep
from rnnlab.jobs.spec import SpecError
from rnnlab.jobs.store import StoreError

from .sweeps import SCALAR_SPEC, VECTOR_SPEC, assert_same_store, rnnlab, write_spec


def test_scalar_sweep_equals_the_engine_called_directly(tmp_path):
    spec = write_spec(tmp_path, SCALAR_SPEC)
    res = run_sweep(spec, store=tmp_path / "s.zarr", sync=True)
    assert res.ran == res.nblocks
    ds = xr.open_zarr(res.path)
    assert ds.attrs["spec_sha256"] and ds.attrs["end_time"]
    assert set(ds.state.dims) == {"activation", "w", "bias", "amplitude", "time"}
    for act in ("identity", "tanh"):
        sub = ds.sel(activation=act, bias=0.5, amplitude=-1.0)
        w = sub.w.values
        direct = simulate_rnn(
            w, 1.0, 0.5, activation=act, steps=300, amplitude=-1.0, record="log", num_records=30
        )
        np.testing.assert_array_equal(sub.state.values, direct["state"])
        np.testing.assert_array_equal(sub.memory_horizon.values, direct["memory_horizon"])
        np.testing.assert_array_equal(sub.growth_rate.values, direct["growth_rate"])
    for name, var in ds.data_vars.items():
        assert {"long_name", "units", "description"} <= set(var.attrs), name


def test_vector_sweep_uses_common_random_numbers(tmp_path):
    spec = write_spec(tmp_path, VECTOR_SPEC)
    ds = xr.open_zarr(run_sweep(spec, store=tmp_path / "v.zarr", sync=True).path)
    sub = ds.sel(activation="tanh", seed=1)
    base = base_matrix(8, "gaussian", seed=1)
    rho = np.abs(np.linalg.eigvals(base)).max()
    W = np.stack([base * (r / rho) for r in sub.spectral_radius.values])
    direct = simulate_rnn(
        W,
        impulse_direction(8, 1),
        activation="tanh",
        steps=200,
        input="noise",
        noise_seed=1,
        record="log",
    )
    np.testing.assert_array_equal(sub.log10_gradient_norm.values, direct["log10_gradient_norm"])
    # the measured spectral radius is not stored twice: the coordinate is the value
    assert "spectral_radius" in ds.coords and "max_singular_value" in ds.data_vars


def test_block_size_does_not_change_the_result(tmp_path):
    one = run_sweep(
        write_spec(tmp_path, VECTOR_SPEC, "a.toml", block_seconds=100.0),
        store=tmp_path / "one.zarr",
        sync=True,
    )
    many = run_sweep(
        write_spec(tmp_path, VECTOR_SPEC, "b.toml", block_seconds=0.0001),
        store=tmp_path / "many.zarr",
        sync=True,
    )
    assert one.nblocks == 1 and many.nblocks > 5
    assert_same_store(one.path, many.path)


def test_an_interrupted_sweep_resumes_and_ends_equal(tmp_path):
    spec = write_spec(tmp_path, VECTOR_SPEC, block_seconds=0.0001)
    full = run_sweep(spec, store=tmp_path / "full.zarr", sync=True)

    def stop_after_4(done, total, cases, elapsed):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, store=tmp_path / "part.zarr", sync=True, progress=stop_after_4)
    resumed = run_sweep(spec, store=tmp_path / "part.zarr", sync=True)
    assert resumed.already_done == 4 and resumed.ran == full.nblocks - 4
    assert_same_store(full.path, resumed.path, ignore=())
    again = run_sweep(spec, store=tmp_path / "part.zarr", sync=True)
    assert again.ran == 0 and again.already_done == full.nblocks


def test_a_store_of_another_spec_is_refused_unless_overwrite(tmp_path):
    store = tmp_path / "s.zarr"
    run_sweep(write_spec(tmp_path, VECTOR_SPEC, "a.toml"), store=store, sync=True)
    other = write_spec(tmp_path, VECTOR_SPEC, "b.toml", steps=50)
    with pytest.raises(StoreError, match="different spec: use --overwrite"):
        run_sweep(other, store=store, sync=True)
    before = (store / "zarr.json").read_bytes()
    out = rnnlab("run", "b.toml", "--sync", "--store", "s.zarr", cwd=tmp_path)
    assert out.returncode == 2 and "different spec: use --overwrite" in out.stderr
    assert (store / "zarr.json").read_bytes() == before
    res = run_sweep(other, store=store, sync=True, overwrite=True)
    assert xr.open_zarr(res.path).sizes["time"] < 50


def test_bad_input_on_the_command_line_exits_2_and_writes_nothing(tmp_path):
    write_spec(tmp_path, VECTOR_SPEC)
    (tmp_path / "blocker").write_text("a file, not a folder")
    out = rnnlab("run", "spec.toml", "--sync", "--store", "blocker/x.zarr", cwd=tmp_path)
    assert out.returncode == 2 and "store.path: cannot write" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    (tmp_path / "taken.zarr").mkdir()
    (tmp_path / "taken.zarr" / "data.txt").write_text("someone's data")
    out = rnnlab("run", "spec.toml", "--sync", "--store", "taken.zarr", cwd=tmp_path)
    assert out.returncode == 2 and "is not an rnnlab store" in out.stderr
    assert (tmp_path / "taken.zarr" / "data.txt").read_text() == "someone's data"


def test_a_scheduler_that_does_not_answer_fails_fast(tmp_path):
    from .sweeps import free_port

    write_spec(tmp_path, VECTOR_SPEC)
    import time

    t0 = time.time()
    out = rnnlab(
        "run",
        "spec.toml",
        "--scheduler",
        f"tcp://127.0.0.1:{free_port()}",
        "--timeout",
        "2",
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "no Dask scheduler answered" in out.stderr
    assert time.time() - t0 < 30
    assert not (tmp_path / "vector.zarr").exists()


def test_spec_errors_from_python_raise_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"run\.steps"):
        run_sweep({"model": {"family": "rnn"}, "run": {"steps": 0}, "store": {"path": "x"}})


def test_status_lists_done_and_missing_blocks_and_the_provenance(tmp_path):
    spec = write_spec(tmp_path, VECTOR_SPEC, block_seconds=0.0001)

    def stop_after_2(done, total, cases, elapsed):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, store=tmp_path / "s.zarr", sync=True, progress=stop_after_2)
    out = rnnlab("status", "s.zarr", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "done:     2 of" in out.stdout and "missing:" in out.stdout
    assert "spec_sha256:" in out.stdout and "start_time:" in out.stdout
    run_sweep(spec, store=tmp_path / "s.zarr", sync=True)
    assert "none (the sweep is complete)" in rnnlab("status", "s.zarr", cwd=tmp_path).stdout
    bad = rnnlab("status", "nothing.zarr", cwd=tmp_path)
    assert bad.returncode == 2 and "nothing.zarr: no such store" in bad.stderr


def test_a_store_from_another_rnnlab_version_is_not_resumed(tmp_path):
    import zarr

    spec = write_spec(tmp_path, VECTOR_SPEC)
    from rnnlab.jobs.integrity import _attributes_crc

    res = run_sweep(spec, store=tmp_path / "s.zarr", sync=True)
    group = zarr.open_group(str(res.path), mode="r+", use_consolidated=False)
    group.attrs["rnnlab_version"] = "0.0.1"  # as that version would have written them:
    group.attrs["attributes_crc32c"] = _attributes_crc(dict(group.attrs))  # consistent
    with pytest.raises(StoreError, match=r"written by rnnlab 0\.0\.1"):
        run_sweep(spec, store=res.path, sync=True)
