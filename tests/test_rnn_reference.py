"""The rnn kernels against the slow, independent NumPy reference, on random cases: the
scalar kernel (n = 1) and both vector kernels (the lanes of engine/_lanes.py, which run
n <= 64, and the layered kernel, made to run them here)."""

import numpy as np
import pytest

from rnnlab.engine import _lanes, noise_keys
from rnnlab.engine._numerics import noise_uniform as kernel_noise
from rnnlab.engine.reference import noise_uniform as reference_noise

from .conftest import random_cases, run_both

ACTS = ["identity", "sigmoid", "tanh", "relu"]
INPUTS = ["impulse", "step", "noise"]


def _compare(res, refs, rtol, grad_atol):
    """Compare every recorded quantity and every summary, case by case."""
    for i, ref in enumerate(refs):
        scale = max(1.0, float(np.nanmax(ref["state_norm"][np.isfinite(ref["state_norm"])])))
        for name in ("state_norm", "response"):
            got, want = res[name][i], ref[name]
            fin = np.isfinite(want)
            # the response is a difference of two runs: below rtol * scale it is rounding noise
            np.testing.assert_allclose(
                got[fin], want[fin], rtol=rtol, atol=rtol * scale, err_msg=f"{name}, case {i}"
            )
        if res.attrs["n"] == 1:
            np.testing.assert_allclose(res["state"][i], ref["h"][:, 0], rtol=rtol, atol=rtol)
        g, gw = res["log10_gradient_norm"][i], ref["log10_gradient_norm"]
        fin = np.isfinite(gw)
        np.testing.assert_allclose(g[fin], gw[fin], atol=grad_atol, err_msg=f"gradient, case {i}")
        assert res["blowup_step"][i] == ref["blowup_step"]
        if ref["blowup_step"] < 0 and res.attrs["dtype"] == "float64":
            assert res["memory_horizon"][i] == ref["memory_horizon"], f"case {i}"
            assert res["saturation_step"][i] == ref["saturation_step"], f"case {i}"
            assert res["bounded"][i] == ref["bounded"]
            if np.isfinite(ref["growth_rate"]):
                assert res["growth_rate"][i] == pytest.approx(ref["growth_rate"], abs=1e-12)


#: (n, kernel): the scalar kernel, and each vector kernel at two sizes.
SIZES = [(1, "scalar"), (2, "lanes"), (7, "lanes"), (2, "layered"), (7, "layered")]


def _use(kernel, monkeypatch):
    """Make the layered kernel run the vector recursions the lanes would run."""
    if kernel == "layered":
        monkeypatch.setattr(_lanes, "MAX_N", 0)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("inp", INPUTS)
@pytest.mark.parametrize(("n", "kernel"), SIZES)
def test_float64_matches_reference(rng, activation, inp, n, kernel, monkeypatch):
    _use(kernel, monkeypatch)
    W, C, b, amp = random_cases(rng, n, ncase=21 if n == 1 else 6)
    res, refs = run_both(W, C, b, amp, activation, inp, steps=60)
    _compare(res, refs, rtol=1e-12, grad_atol=1e-12)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize(("n", "kernel"), [(1, "scalar"), (5, "lanes"), (5, "layered")])
def test_float32_matches_reference(rng, activation, n, kernel, monkeypatch):
    _use(kernel, monkeypatch)
    W, C, b, amp = random_cases(rng, n, ncase=19 if n == 1 else 4, radius=(0.3, 0.95))
    res, refs = run_both(W, C, b, amp, activation, "noise", steps=40, dtype="float32")
    assert res["state_norm"].dtype == np.float32
    _compare(res, refs, rtol=2e-5, grad_atol=1e-4)


def test_user_input_array(rng):
    W, C, b, _ = random_cases(rng, 3, ncase=3)
    x = rng.uniform(-1, 1, (3, 25))
    from rnnlab.engine import simulate_rnn
    from rnnlab.engine.reference import rnn_reference

    res = simulate_rnn(W, C, b, activation="tanh", steps=25, input=x, record="all")
    for i in range(3):
        ref = rnn_reference(W[i], C[i], b[i], x[i], "tanh")
        np.testing.assert_allclose(res["state_norm"][i], ref["state_norm"], rtol=1e-13)
        np.testing.assert_allclose(
            res["log10_gradient_norm"][i], ref["log10_gradient_norm"], atol=1e-12
        )


def test_kernel_noise_equals_reference_noise():
    from numba import njit

    @njit
    def draws(key, t):
        out = np.empty(t.size)
        for i in range(t.size):
            out[i] = kernel_noise(key, t[i])
        return out

    t = np.arange(5000)
    for key in noise_keys([0, 1, 12345], n=4):
        got = draws(key, t)
        np.testing.assert_array_equal(got, reference_noise(int(key), t))
        assert 0.0 <= got.min() and got.max() < 1.0
        assert abs(got.mean() - 0.5) < 0.02  # 5000 uniforms: sd of the mean is 0.004


def test_serial_and_parallel_agree(rng):
    from rnnlab.engine import simulate_rnn

    W, C, b, amp = random_cases(rng, 1, ncase=1000)
    kw = dict(activation="tanh", steps=200, input="noise", amplitude=amp, noise_seed=7)
    a = simulate_rnn(W, C, b, parallel=True, **kw)
    s = simulate_rnn(W, C, b, parallel=False, **kw)
    for name in a.keys():
        np.testing.assert_array_equal(a[name], s[name], err_msg=name)
    Wv, Cv, bv, ampv = random_cases(rng, 6, ncase=9)
    a = simulate_rnn(Wv, Cv, bv, activation="relu", steps=50, amplitude=ampv, parallel=True)
    s = simulate_rnn(Wv, Cv, bv, activation="relu", steps=50, amplitude=ampv, parallel=False)
    for name in a.keys():
        np.testing.assert_array_equal(a[name], s[name], err_msg=name)
