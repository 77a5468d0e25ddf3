"""Deep feed-forward nets (layer index as time) against the NumPy reference and the bound."""

import numpy as np
import pytest

from rnnlab.engine import get_activation, impulse_direction, mlp_weights, simulate_mlp
from rnnlab.engine.reference_network import mlp_reference


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu"])
def test_mlp_matches_the_reference(activation, dtype):
    n, depth = 12, 30
    W = mlp_weights(n, depth, "normal", seed=3)
    scales = np.array([0.5, 1.0, 2.0]) / np.sqrt(n)
    res = simulate_mlp(W, scales, 0.1, activation=activation, amplitude=2.0, dtype=dtype)
    tol = 1e-11 if dtype == "float64" else 3e-4
    for i, s in enumerate(scales):
        ref = mlp_reference(W, s, 0.1, 2.0 * impulse_direction(n, 0), activation)
        for name, want in ref.items():
            got = res[name][i]
            if name.startswith("log10"):
                np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=name)
            else:
                atol = tol * ref["state_norm"].max() if name == "response" else 0
                np.testing.assert_allclose(got, want, rtol=tol, atol=atol, err_msg=name)


def test_gradient_obeys_the_bound_through_depth():
    """||dh(t)/dh(0)|| <= prod_s gamma s sigma_max(W_s): the deep-net version of the lecture's
    vanishing-gradient bound."""
    n, depth = 16, 60
    W = mlp_weights(n, depth, "normal", seed=0)
    sig = np.linalg.norm(W, ord=2, axis=(1, 2))
    for act in ("sigmoid", "tanh", "relu", "identity"):
        gamma = get_activation(act).gamma
        for gain in (0.5, 1.0, 3.0):
            s = gain / np.sqrt(n)
            res = simulate_mlp(W, s, activation=act)
            bound = np.concatenate([[0.0], np.cumsum(np.log10(gamma * s * sig[1:]))])
            assert (res["log10_gradient_norm"][0] <= bound + 1e-9).all(), (act, gain)


def test_orthogonal_linear_net_preserves_norms():
    n, depth = 10, 200
    W = mlp_weights(n, depth, "orthogonal", seed=1)
    res = simulate_mlp(W, 1.0, activation="identity", amplitude=3.0)
    np.testing.assert_allclose(res["state_norm"], 3.0, rtol=1e-12)
    np.testing.assert_allclose(res["log10_gradient_norm"], 0.0, atol=1e-12)


def test_mlp_bad_arguments():
    with pytest.raises(ValueError, match="depth, n, n"):
        simulate_mlp(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match="unknown init"):
        mlp_weights(4, 3, "xavier")


# --- the gradient of the last layer's loss with respect to each layer's weight matrix -------

WG = ("log10_layer_weight_grad", "layer_weight_grad_participation")


def _torch_weight_grads(torch, W, s, b, x, activation):
    """log10 ||dL/dA_t||_F and the participation ratio of its entries, by torch autograd:
    A_t = s W_t as leaf tensors, z_t = A_t h + b, h = f(z_t), L = sum(h_last) / sqrt(n)."""
    f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}.get(activation)
    A = [torch.tensor(s * Wt, dtype=torch.float64, requires_grad=True) for Wt in W]
    h = torch.tensor(x, dtype=torch.float64)
    for At in A:
        z = At @ h + b
        h = z if f is None else f(z)
    (h.sum() / np.sqrt(W.shape[1])).backward()
    g = np.stack([a.grad.numpy() for a in A])
    sq = (g**2).sum(axis=(1, 2))
    return 0.5 * np.log10(sq), sq**2 / (g[0].size * (g**4).sum(axis=(1, 2)))


@pytest.mark.parametrize("n", [16, 64])
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
def test_layer_weight_gradients_match_torch_autograd(activation, n):
    torch = pytest.importorskip("torch")
    depth, gains = 30, np.array([0.5, 3.0])
    W = mlp_weights(n, depth, "normal", seed=2)
    x = 2.0 * impulse_direction(n, 0)
    res = simulate_mlp(
        W, gains / np.sqrt(n), 0.1, activation=activation, amplitude=2.0, outputs=list(WG),
        parallel=False,
    )  # fmt: skip
    for i, gain in enumerate(gains):
        norm, spread = _torch_weight_grads(torch, W, gain / np.sqrt(n), 0.1, x, activation)
        # relative 1e-10 on the norm itself (torch's tanh' = 1 - tanh^2 loses digits in
        # saturation: 5e-12 at gain 3; 1e-14 elsewhere)
        np.testing.assert_allclose(10 ** (res[WG[0]][i] - norm), 1.0, rtol=0, atol=1e-10)
        np.testing.assert_allclose(res[WG[1]][i], spread, rtol=1e-10, atol=0)
        assert ((spread > 0) & (spread <= 1)).all()


def _log10_norm_neff(v):
    """log10 ||v|| and N_eff(v), from v over its largest entry (np.linalg.norm squares
    entries of 1e-200 to 0)."""
    m = np.abs(v).max()
    r = v / m
    return np.log10(m) + 0.5 * np.log10(np.sum(r**2)), np.sum(r**2) ** 2 / np.sum(r**4)


def _renormalised_weight_grads(W, s, b, x, activation):
    """The same gradients in NumPy, backwards with the adjoint kept at unit norm (the log of
    its scale apart), for nets whose gradients leave the float64 range."""
    f = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}[activation]
    df = {"tanh": lambda z: 1.0 - np.tanh(z) ** 2, "relu": lambda z: (z > 0) * 1.0}[activation]
    hs, zs = [np.asarray(x, dtype=np.float64)], []
    for Wt in W:
        zs.append(s * Wt @ hs[-1] + b)
        hs.append(f(zs[-1]))
    lam, llam = np.full(W.shape[1], 1 / np.sqrt(W.shape[1])), 0.0
    norm, spread = np.empty(len(W)), np.empty(len(W))
    for t in range(len(W) - 1, -1, -1):
        (ld, pd), (lh, ph) = _log10_norm_neff(df(zs[t]) * lam), _log10_norm_neff(hs[t])
        norm[t] = ld + lh + llam / np.log(10)
        spread[t] = pd * ph / W.shape[1] ** 2
        delta = df(zs[t]) * lam
        lam = s * W[t].T @ delta
        llam += np.log(np.linalg.norm(lam))
        lam /= np.linalg.norm(lam)
    return norm, spread


def test_weight_gradients_of_very_deep_nets_stay_finite_and_follow_the_growth_rate():
    """3000 layers: a vanishing tanh net (gain 0.5, with a bias so that the forward state
    settles on a fixed point instead of underflowing with the gradient) reaches
    ||dL/dA_0|| = 1e-1000, an exploding relu net (gain 2, from a tiny input so that its
    forward state stays finite) has adjoints ||delta_t|| = 1e+300 and more, and a chaotic
    tanh net (gain 4) gradients that grow towards the first layers."""
    n, depth = 16, 3000
    W = mlp_weights(n, depth, "normal", seed=0)
    t = np.arange(depth)
    inner = (t >= 100) & (t < depth - 100)  # away from the ends' transients
    for activation, gain, bias, amp in (
        ("tanh", 0.5, 0.3, 1.0),
        ("relu", 2.0, 0.0, 1e-200),
        ("tanh", 4.0, 0.0, 1.0),
    ):
        res = simulate_mlp(
            W, gain / np.sqrt(n), bias, activation=activation, amplitude=amp,
            outputs=[*WG, "state_norm", "growth_rate"], parallel=False,
        )  # fmt: skip
        lg, spread = res[WG[0]][0], res[WG[1]][0]
        assert np.isfinite(lg).all() and ((spread > 0) & (spread <= 1)).all(), activation
        # log10 ||delta_t|| = log10 ||dL/dA_t|| - log10 ||h(t-1)||, backwards through the layers,
        # shrinks per layer at the forward Lyapunov exponent (growth_rate, the forward
        # Jacobian's ln-growth per layer over the second half; mean-field 0.5 ln chi_1 is off
        # by up to 0.2 at n = 16). Tolerance: 4 standard errors of that estimate, sigma /
        # sqrt(depth / 2) with sigma the spread of the per-layer increments.
        ld = lg - np.log10(np.concatenate([[amp], res["state_norm"][0, :-1]]))
        slope = np.polyfit(t[inner], ld[inner] * np.log(10), 1)[0]
        sigma = np.std(np.diff(ld[inner] * np.log(10)))
        rate = res["growth_rate"][0]
        assert abs(slope + rate) < 4 * sigma / np.sqrt(depth / 2), (activation, slope, rate)
        if activation == "relu":
            # relu is homogeneous: ||h(t-1)|| grows as fast as ||delta_t|| shrinks, and the
            # gradient is the same at every depth; the adjoint itself leaves float64's range
            assert ld.max() > 320 and np.ptp(lg) < 10, (ld.max(), np.ptp(lg))
        if gain == 0.5:
            assert lg[0] < -1000 and lg[-1] > -1, lg[[0, -1]]  # vanishes at the first layers
        if gain == 4.0:
            assert lg[0] > 200 and lg[-1] < 2, lg[[0, -1]]  # concentrated in the first layers
        if activation == "tanh" and gain == 4.0:
            continue  # chaotic: a NumPy rerun parts from the kernel's states after ~100 layers
        x = amp * impulse_direction(n, 0)
        want, want_spread = _renormalised_weight_grads(W, gain / np.sqrt(n), bias, x, activation)
        np.testing.assert_allclose(lg, want, rtol=0, atol=1e-10)
        np.testing.assert_allclose(spread, want_spread, rtol=1e-10)


def test_weight_gradients_in_float32_agree_with_float64():
    """Non-chaotic nets of 100 layers (chaotic tanh, gain >= 2, parts at rounding level by
    design); a float32 run that overflows reads NaN, not garbage."""
    n, depth = 32, 100
    W = mlp_weights(n, depth, "normal", seed=4)
    gains = np.array([0.5, 1.0, 1.5, 4.0])
    out = [*WG, "blowup_step"]
    for activation in ("identity", "sigmoid", "tanh", "relu"):
        r64, r32 = (
            simulate_mlp(W, gains / np.sqrt(n), 0.1, activation=activation, dtype=d, outputs=out)
            for d in ("float64", "float32")
        )
        for name in WG:
            assert r32[name].dtype == np.float64
        ok = slice(0, 3)  # gains 0.5 ... 1.5
        np.testing.assert_allclose(r32[WG[0]][ok], r64[WG[0]][ok], rtol=0, atol=1e-5)
        np.testing.assert_allclose(r32[WG[1]][ok], r64[WG[1]][ok], rtol=1e-4)
        blew = r32["blowup_step"] >= 0  # identity and relu at gain 4 overflow float32
        assert blew.any() == (activation in ("identity", "relu")), activation
        assert np.isnan(r32[WG[0]][blew]).all() and np.isnan(r32[WG[1]][blew]).all()
        assert np.isfinite(r64[WG[0]]).all()


def test_a_zero_gradient_is_minus_infinity_and_nan():
    """A relu net whose first layer is dead (bias -10): h(0) = 0, so every layer's gradient
    is exactly 0 (delta_0 = 0 at layer 0, h(t-1) = 0 above): log10 -inf, and the
    participation 0/0 is NaN. A live case beside it is unaffected."""
    W = mlp_weights(8, 20, "normal", seed=1)
    bias = np.array([[-10.0], [0.1]])
    for dtype in ("float64", "float32"):
        res = simulate_mlp(W, [0.35, 0.35], bias, activation="relu", outputs=list(WG),
                           dtype=dtype)  # fmt: skip
        assert np.isneginf(res[WG[0]][0]).all() and np.isnan(res[WG[1]][0]).all()
        assert np.isfinite(res[WG[0]][1]).all() and np.isfinite(res[WG[1]][1]).all()


MLP_SPEC = """
[model]
family = "mlp"
n = 8
[grid]
activation = ["tanh", "relu"]
gain = [0.5, 4.0]
seed = [0, 1]
[run]
steps = 50
record = "all"
[store]
path = "wg.zarr"
block_seconds = 0.0001
"""


def test_a_sweep_stores_the_weight_gradients_like_the_engine(tmp_path):
    import xarray as xr

    from rnnlab.jobs.runner import run_sweep

    from .sweeps import write_spec

    res = run_sweep(write_spec(tmp_path, MLP_SPEC), store=tmp_path / "wg.zarr", sync=True)
    assert res.nblocks > 1
    ds = xr.open_zarr(res.path)
    for name in WG:  # in the family's default
        assert ds[name].dims == ("activation", "gain", "seed", "time")
        assert ds[name].dtype == np.float64
        assert ds[name].attrs["units"] == "1"
        assert {"long_name", "description"} <= set(ds[name].attrs)
    assert "dL/dA_t" in ds.log10_layer_weight_grad.attrs["description"]
    assert "participation" in ds.layer_weight_grad_participation.attrs["long_name"]
    assert ds.time.attrs["long_name"] == "layer index"
    for seed in (0, 1):
        direct = simulate_mlp(
            mlp_weights(8, 50, "normal", seed), np.array([0.5, 4.0]) / np.sqrt(8),
            activation="relu", input_direction=impulse_direction(8, seed), outputs=list(WG),
        )  # fmt: skip
        for name in WG:
            got = ds[name].sel(activation="relu", seed=seed).values
            np.testing.assert_array_equal(got, direct[name], err_msg=name, strict=True)


def test_weight_gradients_are_refused_outside_deep_nets(tmp_path):
    from rnnlab.engine import init_layers, simulate_network, simulate_rnn
    from rnnlab.jobs.runner import run_sweep
    from rnnlab.jobs.spec import SpecError

    from .sweeps import write_spec

    for call in (
        lambda name: simulate_rnn(np.eye(3)[None] * 0.5, outputs=[name]),
        lambda name: simulate_network("lstm", init_layers("lstm", 3), outputs=name),
    ):
        for name in WG:
            with pytest.raises(ValueError, match=f"'{name}' is not an output") as err:
                call(name)
            assert "\n" not in str(err.value) and "simulate_mlp" in str(err.value)
    spec = write_spec(
        tmp_path,
        '[model]\nfamily = "rnn"\nn = 4\n[run]\nsteps = 20\n'
        'outputs = ["state_norm", "log10_layer_weight_grad"]\n[store]\npath = "r.zarr"\n',
    )
    with pytest.raises(SpecError) as err:
        run_sweep(spec, sync=True)
    [line] = [p for p in err.value.problems if "log10_layer_weight_grad" in p]
    assert line.startswith("run.outputs[1]: 'log10_layer_weight_grad' is not an output of this")
    assert "(family mlp only)" in line and "\n" not in line
    assert not (tmp_path / "r.zarr").exists()


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_homogeneous_nets_have_the_same_layer_shares_at_every_gain(activation):
    """Without bias, identity and relu nets are homogeneous: with A_t = s W_t, h(t) scales as
    s^(t+1) and the loss as s^T, so every layer's ||dL/dA_t|| scales as s^(T-1) exactly:
    log10 differences of (T - 1) log10 s at every layer (figure 17's flat lines)."""
    T, n = 200, 32
    W = mlp_weights(n, T, seed=4)
    gains = np.array([0.5, 1.0, 3.0])
    res = simulate_mlp(W, gains / np.sqrt(n), activation=activation,
                       outputs=["log10_layer_weight_grad"], record="all")  # fmt: skip
    g = res["log10_layer_weight_grad"]
    for k in (0, 2):
        np.testing.assert_allclose(g[k] - g[1], (T - 1) * np.log10(gains[k]), rtol=0, atol=1e-9)


def test_layer_biases_of_the_wrong_shape_are_refused():
    from rnnlab.engine import mlp_weights, simulate_mlp

    with pytest.raises(ValueError, match=r"layer_biases must have shape \(depth, n\) = \(5, 4\)"):
        simulate_mlp(mlp_weights(4, 5, "normal", 0), 0.5, layer_biases=np.zeros((4, 4)))
