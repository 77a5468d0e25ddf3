"""The engine against closed forms of the linear recursions and against finite differences."""

import numpy as np
import pytest

from rnnlab.engine import (
    get_activation,
    impulse_direction,
    recurrent_matrix,
    remove_dominant_component,
    simulate_rnn,
)


def _symmetric_with_spectrum(n, eigenvalues, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return (q * eigenvalues) @ q.T


def test_scalar_linear_is_w_to_the_t():
    w = np.array([0.5, 0.9, 1.0, 1.1, -0.9, -1.2, 2.0])
    c, a, steps = 0.7, 1.3, 60
    res = simulate_rnn(w, c, activation="identity", steps=steps, amplitude=a, record="all")
    t = np.arange(steps)
    expected = w[:, None] ** t * c * a
    np.testing.assert_allclose(res["state"], expected, rtol=1e-13)
    np.testing.assert_allclose(res["response"], np.abs(expected), rtol=1e-13)
    np.testing.assert_allclose(
        res["log10_gradient_norm"], t * np.log10(np.abs(w))[:, None], atol=1e-12
    )
    np.testing.assert_allclose(res["growth_rate"], np.log(np.abs(w)), rtol=1e-12)
    np.testing.assert_allclose(res["response_growth_rate"], np.log(np.abs(w)), rtol=1e-12)


def test_memory_class_of_linear_recursions_over_long_runs():
    """h(t) = w h(t-1) over 10^4 steps: |w| < 1 forgets (at ceil(ln 1e-3 / ln|w|)), |w| = 1
    keeps, |w| > 1 grows while finite (1.0005^10^4 = 148) and blows up once w^t overflows
    (1.1^7448 > 1.8e308); vector W alike, with its largest |lambda| deciding."""
    w = np.array([0.5, -0.999, 1.0, -1.0, 1.0005, 1.05, 1.1, 3.0])
    res = simulate_rnn(w, activation="identity", steps=10_000, record="none")
    np.testing.assert_array_equal(res["memory_class"], [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(
        res["memory_horizon"][:2], np.ceil(np.log(1e-3) / np.log(np.abs(w[:2])))
    )
    W = np.stack(
        [_symmetric_with_spectrum(8, np.linspace(-lam, lam, 8)) for lam in (0.9, 1.0, 1.02)]
    )
    vec = simulate_rnn(W, activation="identity", steps=10_000, record="none")
    np.testing.assert_array_equal(vec["memory_class"], [0, 1, 2])


def test_vector_linear_response_is_norm_of_W_to_the_t_v():
    rng = np.random.default_rng(1)
    n, steps = 6, 80
    # a diagonalisable, non-normal W with a known spectrum
    V = rng.standard_normal((n, n))
    lam = np.array([1.05, -0.97, 0.8, 0.5, -0.3, 0.1])
    W = V @ np.diag(lam) @ np.linalg.inv(V)
    u = impulse_direction(n, seed=3)
    res = simulate_rnn(W, u, activation="identity", steps=steps, amplitude=2.0, record="all")
    coeffs = np.linalg.solve(V, 2.0 * u)
    t = np.arange(steps)
    expected = np.linalg.norm((V[None] * lam[None] ** t[:, None, None]) @ coeffs, axis=1)
    np.testing.assert_allclose(res["response"][0], expected, rtol=1e-11)
    np.testing.assert_allclose(res["state_norm"][0], expected, rtol=1e-11)


@pytest.mark.parametrize("lam_max", [0.9, 1.0, 1.1])
def test_growth_rate_is_log_of_largest_eigenvalue_for_normal_W(lam_max):
    # for a normal matrix ||W^t||_2 = |lambda_max|^t exactly
    n = 8
    lam = np.array([lam_max, -0.85 * lam_max, 0.5, 0.4, -0.3, 0.2, 0.1, 0.05])
    W = _symmetric_with_spectrum(n, lam)
    res = simulate_rnn(W, activation="identity", steps=400, record="all")
    t = np.arange(400)
    np.testing.assert_allclose(res["log10_gradient_norm"][0], t * np.log10(lam_max), atol=1e-10)
    assert res["growth_rate"][0] == pytest.approx(np.log(lam_max), abs=1e-12)


def test_growth_rate_converges_to_log_spectral_radius_for_nonnormal_W():
    W = recurrent_matrix(32, "gaussian", seed=5, spectral_radius=1.2)
    # amplitude 0: the state stays 0 (no blow-up) while the Jacobian product grows
    res = simulate_rnn(W, activation="identity", steps=4000, amplitude=0.0, record="none")
    # ||W^t||^(1/t) -> rho; the late-time slope has error O(log(cond(V)) / t)
    assert res["growth_rate"][0] == pytest.approx(np.log(1.2), abs=5e-3)


def _spectrum(n, lam1, lam2, seed):
    """lam1, then -lam2 and lam2 (so |lambda_2| = lam2 is a pair of signs), then smaller."""
    rest = np.random.default_rng(seed).uniform(-0.9 * lam2, 0.9 * lam2, n - 3)
    return np.concatenate([[lam1, -lam2, lam2], rest])


def _log_closed_form(W, c, t):
    """ln ||W^t c|| from W's eigen-decomposition, factored by |lambda_2|^t so that nothing
    over- or underflows at 10^4 steps (c has no dominant component)."""
    lam, V = np.linalg.eig(W)
    a = np.linalg.solve(V, c)
    keep = np.abs(a) > 1e-12 * np.abs(a).max()
    top = np.abs(lam[keep]).max()
    terms = (lam[keep][:, None] / top) ** t[None, :] * a[keep][:, None]
    return t * np.log(top) + np.log(np.linalg.norm(np.real(V[:, keep] @ terms), axis=0))


@pytest.mark.parametrize(
    ("lam1", "lam2", "normal"),
    [(1.0, 0.8, True), (1.0, 0.999, True), (1.0, 0.8, False), (0.95, 0.5, True)],
    ids=["lambda2=0.8", "lambda2=0.999", "non-normal", "decaying"],
)
def test_the_second_eigenvalue_growth_holds_over_10_4_steps(lam1, lam2, normal):
    """remove_dominant: the response is ||W^t C x(0)|| with no dominant component for 10^4
    steps (rounding used to bring lambda_1 back within a few hundred, and the response
    underflowed): its growth rate is ln|lambda_2| to 1e-9, and the response and the memory
    horizon match the closed form from W's eigen-decomposition."""
    n, steps = 32, 10_000
    eigs = _spectrum(n, lam1, lam2, seed=3)
    if normal:
        W = _symmetric_with_spectrum(n, eigs, seed=2)
    else:  # eigenvectors far from orthogonal: sigma_max(W) > 1 = rho(W)
        X = np.random.default_rng(5).standard_normal((n, n))
        W = X @ np.diag(eigs) @ np.linalg.inv(X)
        assert np.linalg.norm(W, 2) > 2
    res = simulate_rnn(
        W, activation="identity", steps=steps, remove_dominant=True, record="log",
        num_records=300,
    )  # fmt: skip
    assert res["blowup_step"][0] == -1
    assert res["response_growth_rate"][0] == pytest.approx(np.log(lam2), abs=1e-9)
    c = remove_dominant_component(W, impulse_direction(n, seed=0))
    want = _log_closed_form(W, c, np.asarray(res.time))
    got = res["response"][0]
    ok = got > 1e-300  # stored values below the float range round to 0
    np.testing.assert_allclose(np.log(got[ok]), want[ok], atol=1e-7)
    every = _log_closed_form(W, c, np.arange(steps))
    above = np.flatnonzero(every > np.log(1e-3) + every[0])
    horizon = above[-1] + 1 if above[-1] < steps - 1 else -1
    assert res["memory_horizon"][0] == horizon


def test_the_response_of_a_linear_recursion_is_exact_with_noise_and_bias():
    """Whatever else comes in (noise, a bias), the memory of x(0) in a linear recursion is
    ||W^t C x(0)||: the response equals the closed form for 2000 steps."""
    n = 16
    W = _symmetric_with_spectrum(n, _spectrum(n, 0.99, 0.9, seed=1), seed=4)
    res = simulate_rnn(W, b=0.3, activation="identity", steps=2000, input="noise",
                       noise_seed=7, record="all")  # fmt: skip
    from rnnlab.engine._numerics import input_at
    from rnnlab.engine._validate import input_arrays

    kind, xs, keys, _ = input_arrays("noise", 1, 2000, 7, n)
    x0 = input_at(0, 0, kind, np.ones(1), keys, xs)
    c = impulse_direction(n, seed=0) * x0
    t = np.arange(2000)
    np.testing.assert_allclose(np.log(res["response"][0]), _log_closed_form(W, c, t), atol=1e-9)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_gradient_norm_matches_finite_differences(activation):
    """dh(t)/dh(0) by central differences of an independent forward loop from h(0)."""
    rng = np.random.default_rng(3)
    n, steps = 5, 12
    W = recurrent_matrix(n, "gaussian", seed=9, spectral_radius=1.1)
    C = rng.standard_normal(n)
    b = 0.2 * rng.standard_normal(n)
    res = simulate_rnn(W, C, b, activation=activation, steps=steps, record="all")
    f = get_activation(activation).numpy
    h0 = f(C * 1.0 + b)

    def forward(h, t):
        for _ in range(t):
            h = f(W @ h + b)
        return h

    eps = 1e-6
    for t in (1, 5, steps - 1):
        J = np.empty((n, n))
        for j in range(n):
            e = np.zeros(n)
            e[j] = eps
            J[:, j] = (forward(h0 + e, t) - forward(h0 - e, t)) / (2 * eps)
        fd = np.linalg.norm(J, 2)
        # central differences: truncation O(eps^2), rounding O(1e-16 / eps) = 1e-10 per entry
        got = 10.0 ** res["log10_gradient_norm"][0, t]
        assert got == pytest.approx(fd, rel=1e-6, abs=1e-9), t


def test_scalar_gradient_matches_finite_differences():
    w, c, b, steps = 1.3, 0.8, 0.1, 15
    res = simulate_rnn([w], [c], [b], activation="tanh", steps=steps, record="all")
    h0 = np.tanh(c + b)

    def forward(h, t):
        for _ in range(t):
            h = np.tanh(w * h + b)
        return h

    for t in range(1, steps):
        fd = (forward(h0 + 1e-6, t) - forward(h0 - 1e-6, t)) / 2e-6
        got = 10.0 ** res["log10_gradient_norm"][0, t]
        assert got == pytest.approx(abs(fd), rel=1e-7, abs=1e-10)


def test_exploding_gradient_of_1e5_steps_does_not_overflow():
    # chaotic tanh network (gain 3): the Jacobian product grows like e^(lambda t) for ever
    W = recurrent_matrix(32, "gaussian", seed=0, gain=3.0)
    res = simulate_rnn(
        W, activation="tanh", steps=100_000, record="log", input="noise", amplitude=0.1
    )
    lg = res["log10_gradient_norm"][0]
    assert np.isfinite(lg).all()
    assert lg[-1] > 1000  # far beyond float64's 1e308
    assert res["growth_rate"][0] > 0.05
    # and a scalar linear product: 2^(1e5) with no state blow-up (no input)
    s = simulate_rnn([2.0], activation="identity", steps=100_000, amplitude=0.0, record="log")
    assert s["log10_gradient_norm"][0, -1] == pytest.approx(99_999 * np.log10(2.0), rel=1e-12)
    assert s["blowup_step"][0] == -1


def test_vector_norms_neither_overflow_nor_underflow():
    # ||h|| ~ 1e173 and 1e-300: the squares are outside float64, the norms are not
    n, steps = 4, 1000
    lam = np.array([1.5, 0.5, 0.2, 0.1])
    W = _symmetric_with_spectrum(n, lam, seed=1)
    u = np.linalg.eigh(W)[1][:, -1]  # the dominant eigenvector: h(t) = 1.5^t a u
    res = simulate_rnn(
        np.stack([W, W * (0.5 / 1.5)]),
        np.stack([u, u]),
        activation="identity",
        steps=steps,
        amplitude=1e-3,
        record=[steps - 1],
    )
    assert res["blowup_step"][0] == -1
    assert res["state_norm"][0, 0] == pytest.approx(1e-3 * 1.5 ** (steps - 1), rel=1e-10)
    assert res["state_norm"][1, 0] == pytest.approx(1e-3 * 0.5 ** (steps - 1), rel=1e-10)
    assert res["growth_rate"][0] == pytest.approx(np.log(1.5), abs=1e-12)
    assert res["response_growth_rate"][1] == pytest.approx(np.log(0.5), abs=1e-10)


def test_decay_into_subnormal_numbers_is_not_a_blowup():
    # ||h|| falls through 1e-308 into subnormals and to 0: never NaN, never a "blow-up"
    n = 4
    W = _symmetric_with_spectrum(n, np.array([0.5, 0.4, 0.3, 0.2]), seed=3)
    res = simulate_rnn(W, activation="identity", steps=1200, record="all")
    assert res["blowup_step"][0] == -1
    norm = res["state_norm"][0]
    assert not np.isnan(norm).any() and norm[-1] == 0.0
    assert np.any((norm > 0) & (norm < 2.2e-308))  # subnormal norms were measured


def test_scalar_tanh_decays_through_the_subnormals_to_zero_as_numpy_does():
    """h <- tanh(w h) with w = 0.5 from h(0) = tanh(1): NumPy's tanh iterated (IEEE
    subnormals) and the engine agree to rounding while h is normal, both pass through the
    subnormals (tanh(z) = z there, no flush to zero) and reach exactly 0 within a step of
    each other."""
    steps = 1200
    res = simulate_rnn([0.5], activation="tanh", steps=steps, record="all")
    h = res["state"][0]
    ref = np.empty(steps)
    ref[0] = np.tanh(1.0)
    for t in range(1, steps):
        ref[t] = np.tanh(0.5 * ref[t - 1])
    normal = np.abs(ref) > 2.2250738585072014e-308
    np.testing.assert_allclose(h[normal], ref[normal], rtol=1e-13)
    assert np.any((h > 0) & (h < 2.2e-308)) and h[-1] == 0.0 and res["blowup_step"][0] == -1
    assert abs(int(np.argmax(h == 0)) - int(np.argmax(ref == 0))) <= 1


# Saturated fixed point h* = f(w h*) = 1 (w > 0, impulse, no bias): z = w every step, and the
# growth rate of dh(t)/dh(0) is ln(w f'(w)), in closed form:
#   tanh:    ln w + ln 4 - 2w - 2 ln(1 + e^-2w)
#   sigmoid: ln w - w - 2 ln(1 + e^-w)
def _saturated_rate(activation, w):
    if activation == "tanh":
        return np.log(w) + np.log(4.0) - 2 * w - 2 * np.log1p(np.exp(-2 * w))
    return np.log(w) - w - 2 * np.log1p(np.exp(-w))


@pytest.mark.parametrize(("activation", "w"), [("tanh", 30.0), ("tanh", 300.0), ("sigmoid", 600.0)])
def test_growth_rate_in_deep_saturation_is_the_closed_form(activation, w):
    """Derivatives far in the tails (down to 1e-259) keep their relative accuracy."""
    res = simulate_rnn([w], activation=activation, steps=10_000, record="none")
    np.testing.assert_allclose(res["growth_rate"][0], _saturated_rate(activation, w), rtol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
@pytest.mark.parametrize("w", [1000.0, 1e100, 1e308, -1e308])
def test_growth_rate_is_never_raised_by_a_derivative_below_the_float_range(activation, w):
    """A derivative that underflows float64 (tanh beyond |z| = 354, sigmoid beyond 709) is
    0, so the product is 0 and the rate -inf; held at the edge of the range instead, a huge
    weight times it gave +2.58 for w = 1e308. The true rate is far below -600 here."""
    res = simulate_rnn([w], activation=activation, steps=1000, record="none")
    assert res["growth_rate"][0] == -np.inf, res["growth_rate"]
    assert res["blowup_step"][0] == -1 and res["bounded"][0]


@pytest.mark.parametrize(
    ("activation", "w"), [("tanh", 10.0), ("tanh", 30.0), ("tanh", 43.5), ("sigmoid", 60.0)]
)
def test_float32_growth_rate_in_saturation_is_the_closed_form(activation, w):
    """The float32 kernel (activations, derivatives and the Jacobian product in float32,
    its exponent carried in an int32) over 10^4 steps: derivatives down to 6.6e-38 (tanh at
    43.5, near float32's smallest normal number) keep their float32 relative accuracy, and
    10^4 products of them (10^-350000) neither underflow nor drift."""
    res = simulate_rnn([w], activation=activation, steps=10_000, record="none", dtype="float32")
    np.testing.assert_allclose(res["growth_rate"][0], _saturated_rate(activation, w), atol=2e-6)


def test_float32_exponent_of_2e7_steps_of_the_largest_factor_does_not_wrap():
    """3.4e38 per step for 2 10^7 steps: 10^(6.8 10^8), past what an int32 exponent holds
    (2^31 = 2.1e9 powers of 2, reached at 1.7 10^7 steps: it wrapped, found by review);
    folded into a float64 every 2^22 steps."""
    w = float(np.float32(3.4e38))
    steps = 20_000_000
    s = simulate_rnn([w], activation="identity", steps=steps, amplitude=0.0, record=[steps - 1],
                     dtype="float32", outputs=["log10_gradient_norm", "growth_rate"])  # fmt: skip
    assert s["log10_gradient_norm"][0, -1] == pytest.approx((steps - 1) * np.log10(w), rel=1e-9)
    assert s["growth_rate"][0] == pytest.approx(np.log(w), rel=1e-9)


def test_float32_products_of_1e5_steps_neither_overflow_nor_underflow():
    """2^(10^5) and 0.5^(10^5) in float32 (whose range ends at 2^128): exact, the exponent
    carried in an int32."""
    for w, sign in ((2.0, 1), (0.5, -1)):
        s = simulate_rnn([w], activation="identity", steps=100_000, amplitude=0.0,
                         record=[99_999], dtype="float32")  # fmt: skip
        want = sign * 99_999 * np.log10(2.0)
        assert s["log10_gradient_norm"][0, -1] == pytest.approx(want, rel=1e-12)
        assert s["blowup_step"][0] == -1


@pytest.mark.parametrize(("activation", "w"), [("tanh", 50.0), ("tanh", 1e38), ("sigmoid", 100.0)])
def test_float32_derivative_below_the_float32_range_is_zero(activation, w):
    """tanh' beyond |z| = 43.6 and sigmoid' beyond 87 are at or below float32's smallest
    normal number: 0, and the rate -inf (the true rates are below -80)."""
    res = simulate_rnn([w], activation=activation, steps=1000, record="none", dtype="float32")
    assert res["growth_rate"][0] == -np.inf
    assert res["blowup_step"][0] == -1 and res["bounded"][0]


def test_float32_decay_into_subnormal_numbers_is_not_a_blowup():
    """A float32 state falls through 1e-38 into subnormals and to 0 (never NaN, never a
    blow-up), with the response exactly 0.5^t c a while it is a normal float32."""
    res = simulate_rnn([0.5], [0.75], activation="identity", steps=200, record="all",
                       dtype="float32")  # fmt: skip
    h = res["state"][0].astype(np.float64)
    assert res["blowup_step"][0] == -1 and not np.isnan(h).any() and h[-1] == 0.0
    assert np.any((h > 0) & (h < 1.2e-38))
    t = np.arange(120)
    np.testing.assert_array_equal(h[:120], 0.75 * 0.5**t)
    np.testing.assert_allclose(res["growth_rate"][0], np.log(0.5), rtol=1e-12)
