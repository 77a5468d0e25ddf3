"""The public API: validation, recording, blow-ups, precision, the Dataset, the command line."""

import re
import resource

import numpy as np
import pytest
import xarray as xr

from rnnlab.engine import (
    WEIGHT_KINDS,
    base_matrix,
    record_steps,
    recurrent_matrix,
    scale_matrix,
    simulate_rnn,
)
from rnnlab.jobs import VARIABLES, to_dataset

from .sweeps import rnnlab


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(activation="softplus"), "unknown activation 'softplus'.*identity, relu"),
        (dict(dtype="float16"), "dtype must be"),
        (dict(steps=0), "steps must be >= 1"),
        (dict(input="chirp"), "input must be one of impulse, step, noise"),
        (dict(record=[0, 5000]), r"record steps must lie in \[0, 99\]"),
        (dict(record="sometimes"), "record must be"),
        (dict(gradient="magic"), "gradient must be"),
        (dict(C=np.ones((2, 3))), r"C has shape \(2, 3\)"),
        (dict(b=np.ones(7)), r"b has shape \(7,\)"),
        (dict(memory_rtol=0.0), "memory_rtol must be > 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    W = kwargs.pop("W", np.eye(4) * 0.5)
    with pytest.raises(ValueError, match=match):
        simulate_rnn(W, steps=kwargs.pop("steps", 100), **kwargs)


def test_non_square_W_is_refused():
    with pytest.raises(ValueError, match="W must be square"):
        simulate_rnn(np.ones((3, 4)))


def test_log_recording_includes_first_and_last_step():
    rec = record_steps(10**6, "log", 100)
    assert rec[0] == 0 and rec[-1] == 10**6 - 1
    assert np.all(np.diff(rec) > 0) and len(rec) <= 100
    assert len(record_steps(1000, "all")) == 1000 and len(record_steps(1000, "none")) == 0


def test_a_million_steps_with_log_recording_allocates_nothing_per_step():
    simulate_rnn(np.full(64, 0.99), activation="tanh", steps=10, record="log")  # compile first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    res = simulate_rnn(np.full(64, 0.99), activation="tanh", steps=10**6, record="log")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    # per-step storage would be 64 cases * 1e6 steps * 8 B = 488 MiB for each variable
    assert grown_mib < 50
    assert res["state"].shape == (64, len(res.time)) and len(res.time) <= 100
    assert res.time[-1] == 10**6 - 1


def test_blowup_is_recorded_and_the_case_stops():
    res = simulate_rnn([2.0, 0.5], activation="relu", steps=2000, record="all")
    assert res["blowup_step"][0] == 1024  # 2^1024 overflows float64
    assert np.isinf(res["state"][0, 1024])
    assert np.isnan(res["state"][0, 1025:]).all()
    assert np.isfinite(res["state"][0, :1024]).all()
    assert not res["bounded"][0] and np.isnan(res["growth_rate"][0])
    assert res["memory_horizon"][0] == -1
    # the other lane of the same block keeps going
    assert res["blowup_step"][1] == -1 and np.isfinite(res["state"][1]).all()
    vec = simulate_rnn(np.eye(3) * 2.0, activation="identity", steps=2000, record="all")
    b = vec["blowup_step"][0]
    assert 1000 < b < 1100 and np.isinf(vec["state_norm"][0, b])
    assert np.isnan(vec["state_norm"][0, b + 1 :]).all()


def test_float32_runs_in_float32():
    res = simulate_rnn([0.9], activation="tanh", steps=50, dtype="float32", record="all")
    assert res["state"].dtype == np.float32
    ref = simulate_rnn([0.9], activation="tanh", steps=50, record="all")
    np.testing.assert_allclose(res["state"], ref["state"], rtol=1e-5)  # 50 steps of 6e-8
    assert not np.array_equal(res["state"].astype(np.float64), ref["state"])


def test_sigmoid_converges_to_a_fixed_point_and_reports_it():
    w, b = 1.5, -0.5
    res = simulate_rnn([w], [1.0], [b], activation="sigmoid", steps=500)
    h = res["fixed_point"][0]
    assert res["saturation_step"][0] > 0
    assert h == pytest.approx(1 / (1 + np.exp(-(w * h + b))), abs=1e-12)


def test_estimated_gradient_is_a_lower_bound_with_the_exact_growth_rate():
    W = recurrent_matrix(48, "gaussian", seed=2, gain=1.5)
    kw = dict(activation="tanh", steps=600, record="all", input="noise", amplitude=0.5)
    exact = simulate_rnn(W, gradient="exact", **kw)
    est = simulate_rnn(W, gradient="estimate", gradient_probes=8, **kw)
    assert est.attrs["gradient_method"] == "estimate"
    assert np.all(est["log10_gradient_norm"] <= exact["log10_gradient_norm"] + 1e-9)
    assert est["growth_rate"][0] == pytest.approx(exact["growth_rate"][0], abs=0.01)
    auto = simulate_rnn(np.eye(130) * 0.5, steps=5)
    assert auto.attrs["gradient_method"] == "estimate"
    none = simulate_rnn(W, gradient="none", steps=20)
    assert np.isnan(none["log10_gradient_norm"]).all()


def test_weights_are_seeded_and_share_a_base_matrix():
    for kind in WEIGHT_KINDS:
        a, b = base_matrix(16, kind, seed=3), base_matrix(16, kind, seed=3)
        np.testing.assert_array_equal(a, b)
        if kind != "identity":
            assert not np.array_equal(a, base_matrix(16, kind, seed=4))
    base = base_matrix(16, "gaussian", seed=1)
    for rho in (0.5, 1.0, 2.0):
        W = recurrent_matrix(16, "gaussian", seed=1, spectral_radius=rho)
        assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(rho, rel=1e-12)
        np.testing.assert_allclose(W / np.linalg.norm(W), base / np.linalg.norm(base))
    S = recurrent_matrix(16, "orthogonal", seed=1, max_singular_value=1.3)
    np.testing.assert_allclose(np.linalg.svd(S, compute_uv=False), 1.3, rtol=1e-12)
    G = recurrent_matrix(16, "symmetric", seed=1)
    np.testing.assert_array_equal(G, G.T)
    with pytest.raises(ValueError, match="unknown weight kind 'sparse'"):
        base_matrix(4, "sparse")
    with pytest.raises(ValueError, match="exactly one of"):
        scale_matrix(base, gain=1.0, spectral_radius=1.0)


def test_to_dataset_has_schema_names_attributes_and_round_trips_through_zarr(tmp_path):
    w = np.array([0.5, 0.9, 1.1])
    res = simulate_rnn(w, activation="tanh", steps=200)
    ds = to_dataset(res, coords={"w": w})
    assert ds.state.dims == ("case", "time") and ds.memory_horizon.dims == ("case",)
    for name, var in ds.variables.items():
        if name in VARIABLES:
            assert {"long_name", "units", "description"} <= set(var.attrs), name
    assert ds.attrs["activation"] == "tanh" and "numba_version" in ds.attrs
    store = tmp_path / "r.zarr"
    ds.swap_dims(case="w").to_zarr(store, zarr_format=3, consolidated=False)
    back = xr.open_zarr(store, consolidated=False)
    xr.testing.assert_identical(back.load().drop_encoding(), ds.swap_dims(case="w"))
    with pytest.raises(ValueError, match="coordinate 'w' has shape"):
        to_dataset(res, coords={"w": [1.0]})


def test_command_line_version_help_and_bad_input(tmp_path):
    out = rnnlab("--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("rnnlab ")
    assert "demo" in rnnlab("--help", cwd=tmp_path).stdout
    bad = rnnlab("demo", "--steps", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--steps must be >= 1" in bad.stderr
    assert not (tmp_path / "results").exists()


def test_demo_writes_a_readable_store(tmp_path):
    out = rnnlab("demo", "--steps", "60", "--out", "demo.zarr", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ds = xr.open_zarr(tmp_path / "demo.zarr", group="scalar_sigmoid", consolidated=False)
    assert set(ds.dims) == {"w", "bias", "amplitude", "time"}
    assert int(ds.time[-1]) == 59
    # the lecture: sigmoid saturates in a few steps whatever w
    assert (ds.saturation_step.values > 0).all() and (ds.saturation_step.values < 60).all()


def _bad_calls():
    """(call, exception, what the message must say) of common mistakes in the Python API."""
    from rnnlab.engine import (
        fixed_points,
        init_layers,
        recurrent_matrix,
        remove_dominant_component,
        simulate_network,
        simulate_state_dict,
    )
    from rnnlab.engine.train import train

    lstm = init_layers("lstm", 4, 1)
    nan_lstm = [{**lstm[0], "weight_hh": lstm[0]["weight_hh"] * np.nan}]
    rnn = init_layers("rnn", 4, 1)[0]
    return {
        "W None": (lambda: simulate_rnn(None), ValueError, "W must be a number"),
        "W text": (lambda: simulate_rnn(["a", "b"]), ValueError, "W must be a number"),
        "W nan": (lambda: simulate_rnn([0.5, np.nan]), ValueError, "W holds nan at index 1"),
        "W inf": (lambda: simulate_rnn(np.diag([np.inf, 1.0])), ValueError, "W holds inf"),
        "C nan": (lambda: simulate_rnn([0.5, 0.6], [1.0, np.nan]), ValueError, "C holds nan"),
        "amplitude inf": (
            lambda: simulate_rnn([0.5], amplitude=np.inf),
            ValueError,
            "amplitude holds inf",
        ),
        "noise_seed 1.5": (
            lambda: simulate_rnn([0.5], input="noise", noise_seed=1.5),
            ValueError,
            "noise_seed must be integers",
        ),
        "layer nan": (
            lambda: simulate_network("lstm", nan_lstm, steps=5),
            ValueError,
            "layers[0]['weight_hh'] holds nan",
        ),
        "n 4.5": (lambda: recurrent_matrix(4.5), ValueError, "n must be an integer"),
        "n text": (lambda: init_layers("rnn", "4"), ValueError, "n must be an integer"),
        "radius -1": (
            lambda: recurrent_matrix(4, spectral_radius=-1.0),
            ValueError,
            "spectral radius must be a positive",
        ),
        "W not square": (
            lambda: remove_dominant_component(np.ones((3, 4)), np.ones(3)),
            ValueError,
            "W must be one square matrix",
        ),
        "u length": (
            lambda: remove_dominant_component(np.eye(4), np.ones(3)),
            ValueError,
            "u must be a vector of length n = 4",
        ),
        "module": (lambda: simulate_state_dict(object()), TypeError, "not the module"),
        "sigmoid": (
            lambda: simulate_state_dict({}, nonlinearity="sigmoid"),
            ValueError,
            "nonlinearity must be 'tanh' or 'relu'",
        ),
        "case axis": (
            lambda: fixed_points("rnn", [{k: np.stack([v, v]) for k, v in rnn.items()}]),
            ValueError,
            "without a case axis",
        ),
        "learning rates": (
            lambda: train(
                "lstm",
                "adding",
                seeds=(0, 1),
                hidden=4,
                length=5,
                batch=2,
                updates=1,
                learning_rate=[0.1, 0.2, 0.3],
            ),
            ValueError,
            "learning_rate must be one number or one",
        ),
    }


@pytest.mark.parametrize("name", list(_bad_calls()))
def test_a_mistake_in_the_python_api_is_one_error_naming_the_argument(name):
    """What an audit of the API found raising from inside NumPy or torch, or accepted
    silently (non-finite weights ran with every state NaN and read 'bounded'): one error
    from rnnlab's own checks, naming the argument."""
    call, exc, message = _bad_calls()[name]
    with pytest.raises(exc, match=re.escape(message)):
        call()


def test_a_nan_vector_has_a_nan_norm():
    """The norm of a state that went NaN is NaN (it read 0: max() skipped the NaN), so that
    the blow-up watch sees it."""
    from rnnlab.engine._numerics import norm

    assert np.isnan(norm(np.array([np.nan, np.nan]))) and np.isnan(norm(np.array([1.0, np.nan])))
    assert norm(np.array([np.inf, 1.0])) == np.inf and norm(np.array([3.0, 4.0])) == 5.0


def test_the_other_python_entry_points_refuse_the_wrong_type():
    from rnnlab.analysis import figures
    from rnnlab.jobs import to_dataset

    with pytest.raises(TypeError, match="result must be what simulate_rnn"):
        to_dataset({"a": 1})
    with pytest.raises(TypeError, match=r"ds must be an xarray.Dataset"):
        figures.memory_phase(np.zeros(3))
