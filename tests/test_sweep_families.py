"""The layered families (lstm, gru, cec, stacked rnn) and mlp run from specs through the sweep
runner into Zarr, equal to the engine called directly; bad settings are refused."""

import numpy as np
import pytest
import xarray as xr

from rnnlab.engine import (
    impulse_direction,
    init_layers,
    mlp_weights,
    simulate_mlp,
    simulate_network,
    simulate_rnn,
)
from rnnlab.jobs.runner import run_sweep

from .sweeps import rnnlab, write_spec

LSTM_SPEC = """
[model]
family = "lstm"
n = 6
init = "normal"
init_scale = 0.4
peepholes = true
loss_step = 30

[grid]
variant = ["vanilla", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG", "FGR"]
forget_bias = [0.0, 3.0]
layers = [1, 2]
seed = {range = 2}

[run]
steps = 40
record = "all"
input = "noise"

[store]
path = "lstm.zarr"
block_seconds = 0.001
"""


def _stacked(cell, n, layers, seed, **kw):
    w = init_layers(cell, n, layers, seed=seed, **kw)
    return [{k: v[None] for k, v in d.items()} for d in w]


def test_lstm_sweep_equals_the_engine(tmp_path):
    spec = write_spec(tmp_path, LSTM_SPEC)
    res = run_sweep(spec, store=tmp_path / "l.zarr", sync=True)
    assert res.nblocks > 1
    ds = xr.open_zarr(res.path)
    assert ds.log10_input_weight_grad.dims == ("variant", "forget_bias", "layers", "seed", "time")
    for variant, fb, L, seed in (("FGR", 3.0, 2, 1), ("CIFG", 0.0, 1, 0), ("vanilla", 3.0, 1, 1)):
        layers = _stacked(
            "lstm", 6, L, seed, init="normal", scale=0.4, forget_bias=fb, peepholes=True,
            gate_recurrence=variant == "FGR",
        )  # fmt: skip
        direct = simulate_network(
            "lstm", layers, variant=variant, steps=40, input="noise", noise_seed=seed,
            loss_step=30, record="all",
        )  # fmt: skip
        sub = ds.sel(variant=variant, forget_bias=fb, layers=L, seed=seed)
        for name in direct.keys():
            np.testing.assert_array_equal(sub[name].values, direct[name][0], err_msg=name)
    # the variants differ as they should: no forget gate means f = 1
    np.testing.assert_array_equal(ds.forget_gate_mean.sel(variant="NFG").values, 1.0)
    # CIFG's forget bias acts through f = 1 - i: the input gate's bias lowered by it
    layers = _stacked("lstm", 6, 1, 0, init="normal", scale=0.4, peepholes=True)
    layers[0]["bias_ih"][0, :6] -= 3.0
    direct = simulate_network(
        "lstm", layers, variant="CIFG", steps=40, input="noise", noise_seed=0, loss_step=30,
        record="all",
    )  # fmt: skip
    cifg = ds.sel(variant="CIFG", layers=1, seed=0)
    np.testing.assert_array_equal(
        cifg.forget_gate_mean.sel(forget_bias=3.0).values, direct["forget_gate_mean"][0]
    )
    f0, f3 = (cifg.forget_gate_mean.sel(forget_bias=b).values[1:] for b in (0.0, 3.0))
    assert np.all(f3 > f0) and np.all(f3 > 0.8), (f0, f3)
    for name, var in ds.data_vars.items():
        assert {"long_name", "units", "description"} <= set(var.attrs), name


def test_gru_cec_and_stacked_rnn_sweeps(tmp_path):
    gru = """
[model]
family = "gru"
n = 5
[grid]
layers = [1, 3]
init = ["pytorch", "orthogonal"]
[run]
steps = 60
[store]
path = "gru.zarr"
"""
    ds = xr.open_zarr(
        run_sweep(write_spec(tmp_path, gru), store=tmp_path / "gru.zarr", sync=True).path
    )
    direct = simulate_network("gru", _stacked("gru", 5, 3, 0, init="orthogonal"), steps=60)
    sub = ds.sel(layers=3, init="orthogonal")
    np.testing.assert_array_equal(sub.log10_gradient_norm.values, direct["log10_gradient_norm"][0])
    np.testing.assert_array_equal(sub.update_gate_mean.values, direct["update_gate_mean"][0])

    cec = """
[model]
family = "cec"
n = 4
init = "normal"
init_scale = 1.0
[grid]
activation = ["tanh", "relu", "linear"]
[run]
steps = 500
[store]
path = "cec.zarr"
"""
    ds = xr.open_zarr(
        run_sweep(write_spec(tmp_path, cec), store=tmp_path / "cec.zarr", sync=True).path
    )
    np.testing.assert_allclose(ds.log10_gradient_norm.values, 0.0, atol=1e-12)
    assert (ds.memory_horizon.values == -1).all()  # the carousel never forgets

    rnn = """
[model]
family = "rnn"
n = 6
loss_step = 20
[grid]
layers = [1, 2]
spectral_radius = [0.8, 1.2]
[run]
steps = 30
record = "all"
input = "noise"
[store]
path = "rnn.zarr"
"""
    ds = xr.open_zarr(
        run_sweep(write_spec(tmp_path, rnn), store=tmp_path / "rnn.zarr", sync=True).path
    )
    assert "log10_input_weight_grad" in ds and "state" not in ds
    # one layer through the layered kernel equals the rnn kernel
    from rnnlab.engine import recurrent_matrix

    W = recurrent_matrix(6, "gaussian", 0, spectral_radius=1.2)
    direct = simulate_rnn(W, impulse_direction(6, 0), steps=30, input="noise", record="all")
    sub = ds.sel(layers=1, spectral_radius=1.2)
    for name in ("state_norm", "response", "log10_gradient_norm"):
        np.testing.assert_allclose(sub[name].values, direct[name][0], rtol=1e-10, err_msg=name)
    assert np.isfinite(ds.log10_input_weight_grad.sel(time=slice(0, 20))).all()


def test_mlp_sweep_equals_the_engine(tmp_path):
    mlp = """
[model]
family = "mlp"
n = 16
[grid]
activation = ["tanh", "relu"]
gain = [0.5, 1.0, 2.0]
init = ["normal", "orthogonal"]
[run]
steps = 40
record = "all"
[store]
path = "mlp.zarr"
"""
    ds = xr.open_zarr(
        run_sweep(write_spec(tmp_path, mlp), store=tmp_path / "mlp.zarr", sync=True).path
    )
    W = mlp_weights(16, 40, "normal", 0)
    direct = simulate_mlp(
        W, np.array([0.5, 1.0, 2.0]) / 4.0, activation="relu",
        input_direction=impulse_direction(16, 0),
    )  # fmt: skip
    sub = ds.sel(activation="relu", init="normal")
    np.testing.assert_array_equal(sub.log10_gradient_norm.values, direct["log10_gradient_norm"])
    # orthogonal weights with gain 1 keep a linear-regime relu/tanh gradient near 1 longer than
    # gain 0.5 (vanishing) and below gain 2 (exploding for relu)
    g = ds.log10_gradient_norm.sel(activation="relu", init="orthogonal").isel(time=-1).values
    assert g[0] < g[1] < g[2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('family = "lstm"\nloss_step = 50', "model.loss_step: 50 is not a simulated step"),
        ('family = "lstm"\ninit_scale = 0.5', "model.init_scale: init 'pytorch' has no scale"),
        ('family = "lstm"\nvariant = "XYZ"', "model.variant: 'XYZ' is not allowed"),
        ('family = "gru"\nvariant = "NFG"', "model.variant: unknown parameter"),
        ('family = "mlp"\ngain = -1.0', "model.gain: must be >= 0.0"),
        ('family = "rnn"\nlayers = 0', "model.layers: must be >= 1"),
    ],
)
def test_bad_family_settings_exit_2_naming_the_field(tmp_path, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(f"[model]\n{text}\n[run]\nsteps = 20\n[store]\npath = 'x.zarr'\n")
    out = rnnlab("run", str(spec), "--sync", cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr, out.stderr
    assert not (tmp_path / "x.zarr").exists()


def test_estimate_gradient_is_refused_for_layered_families(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(
        '[model]\nfamily = "lstm"\n[run]\nsteps = 20\ngradient = "estimate"\n'
        "[store]\npath = 'x.zarr'\n"
    )
    out = rnnlab("validate", str(spec), cwd=tmp_path)
    assert out.returncode == 2
    assert "run.gradient" in out.stderr


BIAS_SPEC = """
[model]
family = "rnn"
n = 64
activation = "identity"
gain = 0.0
bias = 0.5
[grid]
bias_std = [0.15, 0.3]
seed = {range = 100}
[run]
steps = 3
record = "all"
outputs = ["hidden_state"]
[store]
path = "b.zarr"
"""


def test_random_biases_are_normal_per_unit_and_layer(tmp_path):
    """bias_std: with W = 0 and the identity, h(t) = b for t >= 1, so the stored states are
    the biases themselves: over 100 seeds x 64 units their mean is the bias and their
    standard deviation bias_std (within 4 standard errors of the normal law: mean, and
    variance by its chi-square spread), units and seeds uncorrelated, the same draws scaled
    along bias_std (common random numbers), and each stacked layer drawn on its own."""
    ds = xr.open_zarr(run_sweep(write_spec(tmp_path, BIAS_SPEC), store=tmp_path / "b.zarr",
                                sync=True).path)  # fmt: skip
    b = ds.hidden_state.isel(time=2).values  # (bias_std, seed, unit)
    for j, std in enumerate((0.15, 0.3)):
        z = b[j].ravel()
        se = std / np.sqrt(z.size)
        assert abs(z.mean() - 0.5) < 4 * se
        assert abs(z.var(ddof=1) / std**2 - 1) < 4 * np.sqrt(2 / (z.size - 1))
        corr = np.corrcoef(b[j][:, :-1].ravel(), b[j][:, 1:].ravel())[0, 1]
        assert abs(corr) < 4 / np.sqrt(z.size)
    np.testing.assert_allclose((b[1] - 0.5) / 0.3, (b[0] - 0.5) / 0.15, atol=1e-12)
    stacked = BIAS_SPEC.replace("bias = 0.5", "bias = 0.5\nlayers = 2\nloss_step = 2")
    ds2 = xr.open_zarr(run_sweep(write_spec(tmp_path, stacked), store=tmp_path / "s.zarr",
                                 sync=True).path)  # fmt: skip
    h = ds2.hidden_state.isel(time=2, bias_std=1).values  # (seed, 2 n): layer 0, then 1
    np.testing.assert_allclose(h[:, :64], b[1], atol=1e-12)  # the same draws either kernel
    from rnnlab.jobs.families.rnn import _base

    # layer 1: h1 = Q h0 + b1 (W_hh = 0), Q the seed's orthogonal inter-layer matrix
    b1 = np.stack([h[s, 64:] - _base(s, 64, "orthogonal", -1)[0] @ h[s, :64] for s in range(100)])
    assert abs(b1.mean() - 0.5) < 4 * 0.3 / 80 and abs(b1.std() / 0.3 - 1) < 4 * np.sqrt(2 / 6399)
    assert abs(np.corrcoef(b1.ravel(), h[:, :64].ravel())[0, 1]) < 4 / 80  # its own draw
    out = rnnlab("validate", write_spec(tmp_path, BIAS_SPEC.replace("n = 64", "n = 1")),
                 cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2 and "model.bias_std: random biases need n > 1" in out.stderr


LYAPUNOV_SPEC = """
[model]
family = "%(family)s"
n = 6
%(model)s

[grid]
%(grid)s
seed = {range = 2}

[run]
steps = 400
record = "none"
input = "%(input)s"
num_exponents = %(k)s
outputs = ["growth_rate", "lyapunov_exponents", "kaplan_yorke_dimension", "entropy_rate"]

[store]
path = "l.zarr"
block_seconds = 0.001
"""


def test_lyapunov_spectra_are_stored_on_an_exponent_dimension(tmp_path):
    """rnn (linear: lambda_1 = ln of the swept spectral radius), lstm (equal to the engine on
    the family's weights, NaN beyond its 2 n state rows) and mlp (orthogonal linear layers:
    every exponent ln gain, per layer) spectra through the real runner into Zarr."""

    def sweep(name, **kw):
        text = LYAPUNOV_SPEC % {"family": name, "input": "noise", "k": 8, **kw}
        (tmp_path / name).mkdir()
        res = run_sweep(write_spec(tmp_path / name, text), store=tmp_path / f"{name}.zarr",
                        sync=True)  # fmt: skip
        return xr.open_zarr(res.path)

    rnn = sweep("rnn", model='activation = "identity"', grid="spectral_radius = [0.5, 0.9]")
    lam = rnn.lyapunov_exponents
    assert lam.dims == ("spectral_radius", "seed", "exponent") and lam.sizes["exponent"] == 8
    np.testing.assert_allclose(lam.isel(exponent=0), np.log([[0.5] * 2, [0.9] * 2]), atol=1e-9)
    assert np.isnan(lam.isel(exponent=slice(6, None))).all()
    assert (rnn.kaplan_yorke_dimension == 0).all() and (rnn.entropy_rate == 0).all()
    lstm_model = 'init = "normal"\ninit_scale = 0.5'
    lstm = sweep("lstm", model=lstm_model, grid="forget_bias = [0, 2]", k=16)
    layers = _stacked("lstm", 6, 1, 1, init="normal", scale=0.5, forget_bias=2.0)
    direct = simulate_network("lstm", layers, steps=400, input="noise", noise_seed=1,
                              outputs=["lyapunov_exponents"], num_exponents=16)  # fmt: skip
    got = lstm.lyapunov_exponents.sel(forget_bias=2, seed=1).values
    np.testing.assert_array_equal(got, direct["lyapunov_exponents"][0])
    assert np.isfinite(got[:12]).all() and np.isnan(got[12:]).all()
    mlp = sweep("mlp", model='activation = "linear"\ninit = "orthogonal"', grid="gain = [0.8, 1.2]",
                input="impulse")  # fmt: skip
    want = np.log([0.8, 1.2])[:, None, None] * np.ones((2, 2, 6))
    np.testing.assert_allclose(mlp.lyapunov_exponents.isel(exponent=slice(0, 6)), want, atol=1e-12)
    assert mlp.lyapunov_exponents.attrs["units"] == "1/layer"
    assert rnn.lyapunov_exponents.attrs["units"] == "1/step"
    scalar = LYAPUNOV_SPEC % {"family": "rnn", "model": "", "grid": "w = [0.5]", "input": "noise",
                              "k": 4}  # fmt: skip
    out = rnnlab("validate", write_spec(tmp_path, scalar.replace("n = 6", "n = 1")), cwd=tmp_path)
    assert out.returncode == 2 and "for n = 1 the one exponent is growth_rate" in out.stderr


def test_mean_field_variables_are_stored_beside_the_simulation(tmp_path):
    """mlp and rnn sweeps that list q_star, chi_1 and the depth scales store the theory of
    each case's (activation, gain, bias_std, bias) beside its simulation; NaN for an rnn W
    that is not Gaussian (tests/test_theory.py compares the simulations with the theory)."""
    from rnnlab.analysis import meanfield as mf

    names = '["growth_rate", "q_star", "chi_1", "signal_depth_scale", "gradient_depth_scale"]'
    for fam, weights in (
        ("mlp", ""),
        ("rnn", 'weights = "gaussian"'),
        ("rnn", 'weights = "orthogonal"'),
    ):
        text = f"""
[model]
family = "{fam}"
n = 128
{weights}
[grid]
gain = [0.8, 2.5]
bias_std = [0.0, 0.3]
[run]
steps = 200
record = "none"
outputs = {names}
[store]
path = "m.zarr"
"""
        store = tmp_path / f"{fam}{len(weights)}.zarr"
        ds = xr.open_zarr(run_sweep(write_spec(tmp_path, text), store=store, sync=True).path)
        if "orthogonal" in weights:
            assert np.isnan(ds.chi_1).all() and np.isfinite(ds.growth_rate).all()
            continue
        for g in (0.8, 2.5):
            for sb in (0.0, 0.3):
                one = ds.sel(gain=g, bias_std=sb)
                chi = mf.chi1("tanh", g, sb)
                assert float(one.chi_1) == chi and float(one.q_star) == mf.q_star("tanh", g, sb)
                assert float(one.gradient_depth_scale) == pytest.approx(-1 / np.log(chi))
        assert np.isnan(ds.signal_depth_scale.sel(gain=0.8, bias_std=0.0))  # q* = 0
        assert ds.signal_depth_scale.attrs["units"] == ("layers" if fam == "mlp" else "steps")


def test_memory_capacity_is_stored_on_a_delay_dimension(tmp_path):
    """A linear rnn sweep under noise: memory_capacity_by_delay (dims ..., delay) matches
    the closed form of each case's W (the family's own matrix), and the total is their
    sum; a window too short for run.num_delays is refused at validation."""
    from rnnlab.engine.reference import linear_memory_capacity
    from rnnlab.jobs.families import get_family

    text = """
[model]
family = "rnn"
n = 8
activation = "identity"
[grid]
spectral_radius = [0.5, 0.9]
[run]
steps = 100001
record = "none"
input = "noise"
num_delays = 40
outputs = ["memory_capacity", "memory_capacity_by_delay"]
[store]
path = "c.zarr"
"""
    ds = xr.open_zarr(run_sweep(write_spec(tmp_path, text), store=tmp_path / "c.zarr",
                                sync=True).path)  # fmt: skip
    assert ds.memory_capacity_by_delay.dims == ("spectral_radius", "delay")
    fam = get_family("rnn")
    for rho in (0.5, 0.9):
        p = fam.case_params({"n": 8, "activation": "identity"},
                            {"spectral_radius": np.array([rho])}, 1)  # fmt: skip
        W = fam._recurrent(p, 0, 8)
        want = linear_memory_capacity(W, impulse_direction(8, 0), 40)
        got = ds.memory_capacity_by_delay.sel(spectral_radius=rho).values
        assert np.abs(got - want).max() < 0.02
        assert float(ds.memory_capacity.sel(spectral_radius=rho)) == pytest.approx(got.sum())
    out = rnnlab("validate", write_spec(tmp_path, text.replace("100001", "61")), cwd=tmp_path)
    assert out.returncode == 2 and "run.num_delays: 40 delays need a window" in out.stderr
