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


def _ulps32(got, ref):
    """|got - ref| in units of the float32 spacing at ref (ref in float64)."""
    spacing = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


def _grid32():
    rng = np.random.default_rng(1)
    tiny = np.geomspace(1e-44, 87, 20_000)
    x = np.concatenate([rng.uniform(-87, 88, 100_000), tiny, -tiny, [0.0]])
    return x.astype(np.float32)


def test_float32_exp_and_expm1_within_two_ulps_of_float64():
    """The float32 exp and expm1 (every operation float32) against float64 NumPy on the
    float32 arguments, over their whole range (measured here 1.41 and 1.01 ulps; 1.69 and
    1.04 on every 53rd float32 in [-87, 88])."""
    from rnnlab.engine.fastexp import exp32, expm1_32

    x = _grid32()
    for f, ref in ((expm1_32, np.expm1), (exp32, np.exp)):
        got = _apply(f, x)
        assert got.dtype == np.float32
        want = ref(x.astype(np.float64))
        nz = want != 0
        assert np.max(_ulps32(got[nz], want[nz])) < 2.0, f
    assert _apply(expm1_32, np.zeros(1, np.float32))[0] == 0.0


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_float32_activations_within_three_ulps_of_float64(name):
    """Each activation's float32 function against NumPy's float64 one on float32 arguments
    (values: 2.1 ulps for tanh, 2.0 for sigmoid here, 2.74 and 2.39 on every 53rd float32;
    derivatives against the float64 function's to 4e-7 relative, measured 2.0e-7, down to
    float32's smallest normal derivative: |z| = 43.6 for tanh, 87 for sigmoid, 0 beyond)."""
    act = get_activation(name)
    z = _grid32()
    z = z[np.abs(z) <= 87]
    v, d = _apply2(act.func32, z)
    assert v.dtype == d.dtype == np.float32
    z64 = z.astype(np.float64)
    want = act.numpy(z64)
    assert np.max(_ulps32(v, want)) < 3.0
    _, d64 = _apply2(act.func, z64)
    last = {"tanh": 43.6, "sigmoid": 87.0}.get(name, np.inf)
    inside = (np.abs(z) <= last) & (d64 != 0)
    np.testing.assert_allclose(d[inside], d64[inside], rtol=4e-7)
    assert np.all(d[np.abs(z) > last] == 0)
    assert np.isnan(_apply2(act.func32, np.array([np.nan], np.float32))[0][0])


@pytest.mark.parametrize(
    "dtype, small, tiny",
    [(np.float32, 2.0**-13, [1e-20, 1e-39, 1e-45, -3e-42]),
     (np.float64, 2.0**-27, [1e-20, 1e-300, 1e-310, 5e-324, -3e-320])],
)  # fmt: skip
def test_tanh_is_the_identity_near_zero(dtype, small, tiny):
    """Below 2^-13 (float32) and 2^-27 (float64) tanh returns z and 1 (their rounded values),
    subnormal z included, without evaluating the polynomial (whose products would be
    subnormal); just above, the polynomial agrees with NumPy's tanh."""
    z = np.array([small * 0.999, *tiny, 0.0], dtype)
    act = get_activation("tanh")
    v, d = _apply2(act.func32 if dtype == np.float32 else act.func, z)
    assert np.array_equal(v, z) and np.all(d == 1)
    assert np.array_equal(v, np.tanh(z.astype(np.float64)).astype(dtype))
    above = np.array([small, small * 1.5, small * 4], dtype)
    v, d = _apply2(act.func32 if dtype == np.float32 else act.func, above)
    ref = np.tanh(above.astype(np.float64))
    np.testing.assert_allclose(v, ref, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(d, 1 - ref**2, rtol=4 * np.finfo(dtype).eps)
