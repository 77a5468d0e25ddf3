"""The vectorisable exp/expm1 and the activation table against NumPy and closed forms."""

import numpy as np
import pytest
from numba import njit

from rnnlab.engine import ACTIVATIONS, get_activation
from rnnlab.engine.fastexp import exp, expm1


@njit
def _apply(f, x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = f(x[i])
    return out


@njit
def _apply2(f, x):
    v = np.empty_like(x)
    d = np.empty_like(x)
    for i in range(x.size):
        v[i], d[i] = f(x[i])
    return v, d


def _grid():
    rng = np.random.default_rng(0)
    tiny = np.geomspace(1e-300, 700, 20_000)
    return np.concatenate([rng.uniform(-708, 709, 50_000), tiny, -tiny, [0.0]])


def test_expm1_relative_error():
    x = _grid()
    got = _apply(expm1, x)
    ref = np.expm1(x)
    nz = ref != 0
    assert np.max(np.abs(got[nz] - ref[nz]) / np.abs(ref[nz])) < 2e-15
    assert got[x == 0.0][0] == 0.0


def test_exp_relative_error():
    x = _grid()
    assert np.max(np.abs(_apply(exp, x) / np.exp(x) - 1.0)) < 2e-15


def test_exp_clamps_instead_of_overflowing():
    got = _apply(exp, np.array([800.0, -800.0]))
    assert np.isfinite(got).all() and got[0] > 1e307 and 0 < got[1] < 1e-307


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values_and_derivatives(name):
    act = get_activation(name)
    z = np.concatenate([np.linspace(-30, 30, 6001), np.geomspace(1e-12, 300, 500)])
    v, d = _apply2(act.func, z)
    np.testing.assert_allclose(v, act.numpy(z), rtol=2e-15, atol=1e-300)
    # derivative against central finite differences of NumPy's own function
    hstep = 1e-6
    fd = (act.numpy(z + hstep) - act.numpy(z - hstep)) / (2 * hstep)
    smooth = np.abs(z) > 1e-3 if name == "relu" else np.abs(z) < 15
    np.testing.assert_allclose(d[smooth], fd[smooth], rtol=1e-7, atol=1e-9)
    assert np.all(np.abs(d) <= act.gamma * (1 + 1e-15))


def test_saturated_derivatives_keep_relative_accuracy():
    # 1 - tanh(z)**2 rounds to 0 for |z| > 19; the engine's derivative must not
    z = np.array([20.0, 40.0, 100.0, -100.0, 300.0])
    _, d = _apply2(get_activation("tanh").func, z)
    exact = 4.0 * np.exp(-2 * np.abs(z)) / (1 + np.exp(-2 * np.abs(z))) ** 2
    np.testing.assert_allclose(d, exact, rtol=1e-12)
    _, ds = _apply2(get_activation("sigmoid").func, z)
    exact_s = np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))) ** 2
    np.testing.assert_allclose(ds, exact_s, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_propagate_nan(name):
    v, _ = _apply2(get_activation(name).func, np.array([np.nan]))
    assert np.isnan(v[0])


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="identity, relu, sigmoid, tanh"):
        get_activation("softsign")
    assert get_activation("linear").name == "identity"
