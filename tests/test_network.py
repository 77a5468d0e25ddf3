"""Layered networks (rnn, lstm and its variants, gru, cec) against the NumPy reference
(complex-step Jacobians, SVD norms), finite differences, and the invariants of the lecture."""

import numpy as np
import pytest

from rnnlab.engine import (
    LSTM_VARIANTS,
    init_layers,
    noise_keys,
    simulate_network,
    simulate_rnn,
)
from rnnlab.engine.reference import input_sequence
from rnnlab.engine.reference_network import _step, network_reference

STEPS = 25
LOSS = 18

CASES = [("lstm", v) for v in LSTM_VARIANTS] + [("gru", "vanilla"), ("rnn", "vanilla")]
CASES += [("cec", "vanilla")]


def _layers(cell, L, seed, scale=0.6, H=4, ncase=None):
    """Weights of ``ncase`` cases (a leading case axis) or of one case."""
    kw = dict(init="normal", scale=scale, peepholes=True, gate_recurrence=True)
    if ncase is None:
        return init_layers(cell, H, L, seed=seed, **kw)
    per_case = [init_layers(cell, H, L, seed=seed + i, **kw) for i in range(ncase)]
    return [
        {k: np.stack([w[layer][k] for w in per_case]) for k in per_case[0][layer]}
        for layer in range(L)
    ]


def _assert_matches(res, i, ref, rtol, atol_log):
    for name, want in ref.items():
        got = res[name][i]
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        ok = ~np.isnan(want)
        if name.startswith("log10"):
            np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=atol_log, err_msg=name)
        else:
            # the response is a difference of two states: its error is relative to the state
            atol = rtol * np.nanmax(ref["state_norm"]) if name == "response" else 1e-300
            np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("cell", "variant"), CASES)
def test_network_matches_the_reference(cell, variant, dtype):
    """Every recorded quantity of 3 cases x (1 and 2 layers), noise input, a loss at step 18."""
    tol = dict(rtol=1e-11, atol_log=1e-11) if dtype == "float64" else dict(rtol=2e-4, atol_log=2e-4)
    for L in (1, 2):
        layers = _layers(cell, L, seed=10 * L, ncase=3)
        seeds = np.array([3, 4, 5])
        res = simulate_network(
            cell, layers, variant=variant, steps=STEPS, input="noise", amplitude=0.8,
            noise_seed=seeds, loss_step=LOSS, record="all", dtype=dtype, parallel=L == 2,
        )  # fmt: skip
        keys = noise_keys(seeds, 4)
        for i in range(3):
            x = input_sequence("noise", STEPS, 0.8, int(keys[i]))
            one = [{k: v[i] for k, v in w.items()} for w in layers]
            ref = network_reference(cell, one, x, variant=variant, loss_step=LOSS)
            assert set(ref) <= set(res.keys())
            _assert_matches(res, i, ref, **tol)


def _fd_jacobian(cell, layers, variant, x, rows, cols, t, eps=1e-6):
    """d s(t)[rows] / d s(0)[cols] by central differences of the reference's forward."""
    H = layers[0]["weight_hh"].shape[1]
    R = {"lstm": 5 * H if variant == "FGR" else 2 * H}.get(cell, H)
    S = len(layers) * R
    peep = cell == "lstm" and variant != "NP"
    e = np.zeros(layers[0]["weight_hh"].shape[0])

    def run_from(s0):
        s = s0
        for k in range(1, t + 1):
            s, _ = _step(cell, layers, "tanh", variant, peep, s, x[k] * np.ones(1), e)
        return s[rows]

    s0 = np.zeros(S)
    s0, _ = _step(cell, layers, "tanh", variant, peep, s0, x[0] * np.ones(1), e)
    J = np.empty((len(rows), len(cols)))
    for j, c in enumerate(cols):
        d = np.zeros(S)
        d[c] = eps
        J[:, j] = (run_from(s0 + d) - run_from(s0 - d)) / (2 * eps)
    return J


@pytest.mark.parametrize(
    ("cell", "variant"), [("lstm", "vanilla"), ("lstm", "FGR"), ("gru", "vanilla")]
)
def test_gradient_norms_match_finite_differences(cell, variant):
    layers = _layers(cell, 2, seed=7)
    x = np.random.default_rng(1).uniform(-1, 1, 12)
    res = simulate_network(cell, layers, variant=variant, steps=12, input=x, record="all")
    H = 4
    R = {"lstm": 5 * H if variant == "FGR" else 2 * H}.get(cell, H)
    hrows = np.r_[0:H, R : R + H]
    for t in (3, 11):
        J = _fd_jacobian(cell, layers, variant, x, hrows, hrows, t)
        want = np.log10(np.linalg.norm(J, 2))
        assert res["log10_gradient_norm"][0, t] == pytest.approx(want, abs=1e-7)
        if cell == "lstm":
            Jc = _fd_jacobian(cell, layers, variant, x, hrows + H, hrows + H, t)
            want = np.log10(np.linalg.norm(Jc, 2))
            assert res["log10_cell_gradient_norm"][0, t] == pytest.approx(want, abs=1e-7)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_input_weight_gradient_matches_finite_differences(cell):
    """Step k's contribution to dL/dW_ih: perturb the weight used at step k only."""
    layers = _layers(cell, 1, seed=2)
    steps, T = 10, 8
    x = np.random.default_rng(2).uniform(-1, 1, steps)
    res = simulate_network(cell, layers, steps=steps, input=x, loss_step=T, record="all")
    W0 = layers[0]["weight_ih"]
    H = 4
    peep = cell == "lstm"

    def loss(k, dW):
        s = np.zeros(H * (2 if cell == "lstm" else 1))
        for t in range(T + 1):
            e = (dW @ np.ones(1)) * x[t] if t == k else np.zeros(W0.shape[0])
            s, _ = _step(cell, layers, "tanh", "vanilla", peep, s, x[t] * np.ones(1), e)
        return s[:H].sum() / np.sqrt(H)

    for k in (0, 4, T):
        g = np.empty(W0.shape)
        for j in range(W0.shape[0]):
            d = np.zeros(W0.shape)
            d[j, 0] = 1e-6
            g[j, 0] = (loss(k, d) - loss(k, -d)) / 2e-6
        want = np.log10(np.linalg.norm(g))
        assert res["log10_input_weight_grad"][0, k] == pytest.approx(want, abs=1e-6)
    assert np.isnan(res["log10_input_weight_grad"][0, T + 1 :]).all()


def test_single_layer_rnn_cell_equals_simulate_rnn():
    rng = np.random.default_rng(0)
    n, ncase = 6, 5
    W = rng.standard_normal((ncase, n, n)) / np.sqrt(n) * 1.2
    C = rng.standard_normal((ncase, n))
    b = 0.2 * rng.standard_normal((ncase, n))
    for act in ("tanh", "relu", "identity"):
        direct = simulate_rnn(W, C, b, activation=act, steps=200, input="noise", noise_seed=3)
        layers = [{"weight_ih": C[:, :, None], "weight_hh": W, "bias_hh": b}]
        res = simulate_network(
            "rnn", layers, activation=act, steps=200, input="noise", noise_seed=3
        )
        for name in res.keys():
            a, d = res[name], direct[name]
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, d, rtol=1e-10, atol=1e-12, err_msg=name)
            else:
                np.testing.assert_array_equal(a, d, err_msg=name)


def test_cec_gradient_is_exactly_one():
    layers = _layers("cec", 1, seed=1, scale=2.0, H=8)
    for act in ("tanh", "relu", "sigmoid"):
        res = simulate_network("cec", layers, activation=act, steps=5000, input="noise")
        assert np.abs(res["log10_gradient_norm"]).max() < 1e-12
        assert res["growth_rate"][0] == pytest.approx(0.0, abs=1e-15)


def _lstm_with_gates(H=6, f_bias=0.0, i_bias=0.0, seed=0, scale=0.5):
    layers = init_layers("lstm", H, 1, init="normal", scale=scale, seed=seed)
    layers[0]["bias_ih"][H : 2 * H] += f_bias
    layers[0]["bias_ih"][:H] += i_bias
    return layers


def test_saturated_forget_gate_and_closed_input_gate_keep_the_cell_gradient_at_one():
    """f = 1 and i = 0 after an input that opened the input gate at t = 0 only: the cell keeps
    its value and dc(t)/dc(0) = I through all paths, for any horizon."""
    H = 6
    layers = _lstm_with_gates(H=H, f_bias=800.0, i_bias=-800.0)
    layers[0]["weight_ih"][:H] = 1000.0  # i(0) = 1 for the impulse x(0) = 1, closed after
    for variant, steps in (("vanilla", 20_000), ("NFG", 2000)):
        res = simulate_network("lstm", layers, variant=variant, steps=steps, record="log")
        assert np.abs(res["log10_cell_gradient_norm"]).max() < 1e-10
        np.testing.assert_allclose(res["forget_gate_mean"], 1.0, rtol=1e-15)
        c = res["cell_norm"][0]
        assert c[0] > 0.1
        np.testing.assert_array_equal(c, c[0])


def test_forget_bias_lengthens_the_cell_memory():
    """With weak recurrent weights the carousel sets the decay of dc(t)/dc(0): about ln f per
    step, so a larger forget-gate bias keeps the cell gradient longer."""
    rates = []
    for fb in (0.0, 1.0, 2.0):
        layers = _lstm_with_gates(f_bias=fb, scale=0.1)
        res = simulate_network("lstm", layers, steps=400, input="noise")
        rates.append(res["cell_growth_rate"][0])
        fmean = np.nanmean(res["forget_gate_mean"][0, -20:])
        assert rates[-1] == pytest.approx(np.log(fmean), abs=0.15)
    assert rates[0] < rates[1] < rates[2] < 0


def test_the_carousel_over_1000_steps_against_the_forget_gates_by_hand():
    """log10_carousel_gain = log10 max_u prod_{s=1..t} f_u(s): rebuilt by hand from the
    recorded hidden states (impulse input, so f(s) = sigmoid(W_hf h(s-1) + b_f) for s >= 1)
    over 1000 steps of an H = 32 LSTM; exactly 0 without a forget gate, where the all-path
    cell gradient grows instead (the h -> gates -> c paths)."""
    H, steps = 32, 1000
    layers = init_layers("lstm", H, 1, init="normal", scale=0.1, forget_bias=3.0, seed=1)
    res = simulate_network("lstm", layers, steps=steps, record="all",
                           outputs=["hidden_state", "log10_carousel_gain"])  # fmt: skip
    h = res["hidden_state"][0]
    w = layers[0]
    zf = h[:-1] @ w["weight_hh"][H : 2 * H].T + w["bias_ih"][H : 2 * H] + w["bias_hh"][H : 2 * H]
    ln_f = np.cumsum(-np.logaddexp(0.0, -zf), axis=0)  # ln sigmoid, summed over s = 1..t
    want = np.concatenate([[0.0], ln_f.max(axis=1) / np.log(10)])
    np.testing.assert_allclose(res["log10_carousel_gain"][0], want, rtol=1e-11, atol=1e-12)
    # f near sigmoid(3) = 0.95: the best unit's carousel between those of f = sigmoid(3 -+ 0.5)
    assert 999 * -np.logaddexp(0, -2.5) < want[-1] * np.log(10) < 999 * -np.logaddexp(0, -3.5)
    nfg = simulate_network("lstm", layers, variant="NFG", steps=steps, record="log",
                           input="noise")  # fmt: skip
    np.testing.assert_array_equal(nfg["log10_carousel_gain"], 0.0)
    assert nfg["log10_cell_gradient_norm"][0, -1] > 1.0


def test_cifg_couples_the_gates_and_gates_stay_in_the_unit_interval():
    layers = _lstm_with_gates(scale=1.5, seed=4)
    res = simulate_network("lstm", layers, variant="CIFG", steps=300, input="noise")
    np.testing.assert_allclose(res["forget_gate_mean"] + res["input_gate_mean"], 1.0, rtol=1e-14)
    for variant in ("vanilla", "FGR", "CIFG"):
        res = simulate_network(
            "lstm", _layers("lstm", 2, seed=5, scale=1.0), variant=variant, steps=300
        )
        for g in ("input", "forget", "output"):
            v = res[f"{g}_gate_mean"]
            assert ((v > 0) & (v < 1)).all(), (variant, g)
    res = simulate_network("gru", _layers("gru", 1, seed=5), steps=300)
    assert ((res["update_gate_mean"] > 0) & (res["update_gate_mean"] < 1)).all()


def test_blowup_is_recorded_not_raised():
    layers = _layers("rnn", 2, seed=1, scale=3.0)
    res = simulate_network("rnn", layers, activation="relu", steps=5000, amplitude=1e10)
    assert res["blowup_step"][0] > 0
    assert not res["bounded"][0]


def test_bad_arguments_name_the_argument():
    layers = _layers("lstm", 1, seed=0)
    with pytest.raises(ValueError, match="unknown cell"):
        simulate_network("lstmm", layers)
    with pytest.raises(ValueError, match="unknown variant"):
        simulate_network("lstm", layers, variant="XYZ")
    with pytest.raises(ValueError, match="LSTM variant"):
        simulate_network("gru", _layers("gru", 1, 0), variant="NFG")
    with pytest.raises(ValueError, match="loss_step"):
        simulate_network("lstm", layers, steps=10, loss_step=10)
    bad = [dict(layers[0], weight_hh=np.zeros((16, 3)))]
    with pytest.raises(ValueError, match="weight_hh"):
        simulate_network("lstm", bad)
    no_gate = _layers("lstm", 1, seed=0)
    del no_gate[0]["weight_gate"]
    with pytest.raises(ValueError, match="FGR"):
        simulate_network("lstm", no_gate, variant="FGR")


def _broadcast(layers, ncase):
    return [{k: np.repeat(np.asarray(v)[None], ncase, 0) for k, v in w.items()} for w in layers]


def test_cec_keeps_the_first_input_and_accumulates_the_rest_over_10000_steps():
    """h(t) = h(t-1) + f(c x(t)) with x(t) ~ U(-1, 1): the response to x(0) stays exactly
    ||f(c x(0)) - f(0)|| (computed by hand from x(0)); sigmoid drifts with E f = 1/2, so
    ||h(T)|| / T -> sqrt(H) / 2 (law of large numbers); tanh is a random walk with zero mean,
    so E ||h(T)||^2 = T sum_u E[tanh(c_u x)^2] (Gauss-Legendre quadrature over x), checked
    on the mean over 1500 noise seeds to four standard errors."""
    H, T = 8, 10_000
    layers = _layers("cec", 1, seed=3, scale=1.5, H=H)
    c = layers[0]["weight_ih"][:, 0]
    for act in ("identity", "sigmoid", "tanh", "relu"):
        res = simulate_network("cec", layers, activation=act, steps=T, input="noise",
                               record=np.array([0, 1, 100, T - 1]), noise_seed=5,
                               outputs=["hidden_state", "response", "state_norm"])  # fmt: skip
        x0 = res["hidden_state"][0, 0] / c if act == "identity" else None
        f = {"identity": lambda z: z, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
             "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}[act]  # fmt: skip
        h0 = res["hidden_state"][0, 0]
        want = np.linalg.norm(h0 - f(np.zeros(H)))
        np.testing.assert_allclose(res["response"][0], want, rtol=1e-11)
        if x0 is not None:  # the input at t = 0 is the same draw for every activation
            assert np.ptp(x0) < 1e-15 and abs(x0[0]) <= 1
        if act == "sigmoid":
            assert res["state_norm"][0, -1] / T == pytest.approx(np.sqrt(H) / 2, rel=0.02)
    # the random walk, over many noise seeds
    N, T = 1500, 400
    res = simulate_network("cec", _broadcast(layers, N), activation="tanh", steps=T,
                           input="noise", noise_seed=np.arange(N), record=np.array([T - 1]),
                           outputs=["state_norm"])  # fmt: skip
    x, wq = np.polynomial.legendre.leggauss(64)
    per_unit = (np.tanh(np.outer(c, x)) ** 2 @ wq) / 2  # E over U(-1, 1): weight 1/2
    sq = res["state_norm"][:, 0] ** 2 / (T * per_unit.sum())
    assert abs(sq.mean() - 1) < 4 * sq.std() / np.sqrt(N)


def _stack_jacobian(layers):
    """The step Jacobian of a linear stack, layer l's input the new h of layer l - 1:
    J[l, k] = V_l J[l-1, k] for k < l, J[l, l] = W_l (block lower triangular)."""
    L, H = len(layers), layers[0]["weight_hh"].shape[0]
    J = np.zeros((L * H, L * H))
    for l, w in enumerate(layers):
        rows = slice(l * H, (l + 1) * H)
        if l > 0:
            J[rows, : l * H] = w["weight_ih"] @ J[(l - 1) * H : l * H, : l * H]
        J[rows, rows] = w["weight_hh"]
    return J


def test_stacked_linear_gradient_over_10000_steps_equals_numpy_matrix_powers():
    """log10 ||J^t|| of 1, 2 and 3 stacked linear layers (W_hh at spectral radius 0.98, 1 and
    1.02) against NumPy's products of the block Jacobian (renormalised), for 10^4 steps: the
    late growth rate is ln rho for every depth, up to the polynomial factor t^(L-1)."""
    H, T = 6, 10_000
    rng = np.random.default_rng(7)
    for L in (1, 2, 3):
        for rho in (0.98, 1.0, 1.02):
            layers = []
            for _ in range(L):
                A = rng.standard_normal((H, H))
                S = (A + A.T) / 2
                S *= rho / np.abs(np.linalg.eigvalsh(S)).max()
                layers.append({"weight_ih": rng.standard_normal((H, H if layers else 1)),
                               "weight_hh": S})  # fmt: skip
            rec = np.array([1, 100, 1000, T - 1])
            res = simulate_network("rnn", layers, activation="identity", steps=T, record=rec)
            J = _stack_jacobian(layers)
            P, logs, want = np.eye(L * H), 0.0, []
            for t in range(1, T):
                P = J @ P
                s = np.linalg.norm(P, 2)
                P /= s
                logs += np.log10(s)
                if t in rec:
                    want.append(logs)
            np.testing.assert_allclose(res["log10_gradient_norm"][0], want, rtol=0, atol=1e-8)
            slack = 1.01 * (L - 1) * np.log(2) / (T / 2)  # t^(L-1)'s slope, second half
            assert res["growth_rate"][0] == pytest.approx(np.log(rho), abs=slack + 1e-9)
