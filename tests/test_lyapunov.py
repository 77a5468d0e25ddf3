"""Lyapunov spectra (engine/lyapunov.py and the layered kernel's QR tracker) against closed
forms (linear maps, orthogonal deep nets), the NumPy reference (complex-step Jacobians,
Householder QR), mean-field theory and published simulations of random tanh networks."""

import numpy as np
import pytest

from rnnlab.analysis.meanfield import depth_growth_rate
from rnnlab.analysis.published import TANH_SPECTRA
from rnnlab.engine import noise_keys, simulate_mlp, simulate_network, simulate_rnn
from rnnlab.engine.lyapunov import entropy_rate, kaplan_yorke_dimension
from rnnlab.engine.reference import input_sequence
from rnnlab.engine.reference_network import network_reference

from .test_network import CASES, _layers

SPECTRUM = ["lyapunov_exponents", "kaplan_yorke_dimension", "entropy_rate"]
#: ln(eps) of float64 is -36: below about -30 per step an exponent is not resolved.
UNRESOLVED = -30.0

PUBLISHED = TANH_SPECTRA  # Clark's N = 4096 spectra (rnnlab.analysis.published)


def _random_tanh_spectra(g, seeds, N, steps, k):
    W = np.stack([np.random.default_rng(s).standard_normal((N, N)) * g / np.sqrt(N) for s in seeds])
    res = simulate_rnn(W, steps=steps, outputs=SPECTRUM, num_exponents=k)
    return res["lyapunov_exponents"], res["kaplan_yorke_dimension"] / N, res["entropy_rate"] / N


def test_summaries_by_hand():
    lam = np.array([[0.5, -0.2, -1.0], [-0.1, -0.3, np.nan], [0.0, 0.0, 0.0], [0.3, 0.2, 0.1]])
    np.testing.assert_allclose(kaplan_yorke_dimension(lam[0]), 2 + 0.3 / 1.0)
    assert kaplan_yorke_dimension(lam[1]) == 0.0
    assert kaplan_yorke_dimension(lam[2], dimension=3) == 3.0  # volume kept: every direction
    assert np.isnan(kaplan_yorke_dimension(lam[2], dimension=5))  # more exponents may follow
    assert np.isnan(kaplan_yorke_dimension(lam[3], dimension=10))
    np.testing.assert_allclose(entropy_rate(lam), [0.5, 0.0, 0.0, np.nan])
    np.testing.assert_allclose(entropy_rate(lam[3], dimension=3), 0.6)
    # order does not matter; a blow-up (NaN before finite exponents) is NaN
    assert kaplan_yorke_dimension([-1.0, 0.5, -0.2]) == pytest.approx(2.3)
    assert np.isnan(kaplan_yorke_dimension([np.nan, np.nan])) and np.isnan(entropy_rate([np.nan]))
    assert kaplan_yorke_dimension([0.1, -np.inf]) == 1.0  # an exactly collapsed direction


@pytest.mark.parametrize("n", [6, 40])
def test_linear_maps_have_the_logs_of_the_eigenvalue_moduli(n):
    """h = W h with symmetric W (real eigenvalues, moduli 0.2 ... 1.05): exact over 10^4
    steps, every exponent and the k < n largest; a diagonal W too (its invariant directions
    are the axes: the random starting vectors still find every exponent)."""
    rng = np.random.default_rng(n)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    mods = np.linspace(0.2, 1.05, n) * rng.choice([-1, 1], n)
    Ws = np.stack([Q @ np.diag(mods) @ Q.T, np.diag(mods)])
    want = np.sort(np.log(np.abs(mods)))[::-1]
    for k in (n, n // 2):
        res = simulate_rnn(Ws, activation="identity", steps=10_000, outputs=SPECTRUM,
                           num_exponents=k)  # fmt: skip
        np.testing.assert_allclose(res["lyapunov_exponents"], np.tile(want[:k], (2, 1)), atol=1e-9)
    full = simulate_rnn(Ws, activation="identity", steps=10_000, outputs=SPECTRUM,
                        num_exponents=n + 3)  # fmt: skip
    assert np.isnan(full["lyapunov_exponents"][:, n:]).all()
    csum = np.cumsum(want)
    j = int(np.sum(csum >= 0))
    np.testing.assert_allclose(full["kaplan_yorke_dimension"], j + csum[j - 1] / abs(want[j]))
    np.testing.assert_allclose(full["entropy_rate"], want[want > 0].sum(), atol=1e-9)


def test_non_normal_linear_map_and_complex_pairs():
    """A general W (complex pairs, non-normal): each exponent within 1e-4 of ln|lambda_i|
    over 2 x 10^4 steps (a rotating pair's two exponents converge as 1/t), their sum
    ln|det W| / n per step exactly (the volume)."""
    rng = np.random.default_rng(7)
    A = rng.standard_normal((12, 12))
    W = 0.95 * A / np.abs(np.linalg.eigvals(A)).max()
    res = simulate_rnn(W[None], activation="identity", steps=20_000, outputs=SPECTRUM,
                       num_exponents=12)  # fmt: skip
    want = np.sort(np.log(np.abs(np.linalg.eigvals(W))))[::-1]
    got = res["lyapunov_exponents"][0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(got.sum(), np.log(abs(np.linalg.det(W))), rtol=1e-10)


@pytest.mark.parametrize(("cell", "variant"), CASES)
def test_every_cell_matches_the_reference(cell, variant):
    """The whole spectrum of 1- and 2-layer nets of every cell and LSTM variant, noise input,
    600 steps, with the gradient tracker on as well: equal to Householder QR of the
    reference's complex-step Jacobians: their sum (the volume) to 1e-10, most exponents to
    1e-12 and every one to 1e-3 (the two of a rotating pair split slowly; plus the rounding
    of strongly contracted directions, eps e^-lambda), except exponents below
    ``UNRESOLVED`` (a direction contracted below float64's rounding in one step: both
    methods only see rounding there, and both must say so by an exponent that low). The
    weights are small enough that no step's Jacobian is singular: after an exactly singular
    step the frame of the later columns is set by rounding, and only the long-run limits
    agree (a 2-layer NFG net, whose cell states neither forget nor contract, still differs by
    5e-3 at 200 steps, not at 600). The rounding allowance, 1e-13 e^-lambda, is measured: the
    reference alone, summing its products in another order (batched complex steps instead of
    one column at a time), moves that net's exponent at -28.7 by 0.027 and the one at -34 by
    0.054."""
    steps = 600
    for L in (1, 2):
        layers = _layers(cell, L, seed=3 * L, scale=0.4, ncase=2)
        res = simulate_network(
            cell, layers, variant=variant, steps=steps, input="noise", amplitude=0.5,
            noise_seed=[1, 2], outputs=["growth_rate", *SPECTRUM], num_exponents=64,
        )  # fmt: skip
        keys = noise_keys([1, 2], 4)
        for i in range(2):
            one = [{k: v[i] for k, v in w.items()} for w in layers]
            x = input_sequence("noise", steps, 0.5, int(keys[i]))
            S = _state_size(cell, variant, one)
            want = network_reference(cell, one, x, variant=variant, exponents=S)
            got, want = res["lyapunov_exponents"][i], want["lyapunov_exponents"]
            resolved = want > UNRESOLVED
            # r_qq of a direction contracted by e^lambda per step has a relative error of
            # about eps e^-lambda
            err = np.abs(got[:S][resolved] - want[resolved])
            assert (err <= 1e-3 + 1e-13 * np.exp(-want[resolved])).all(), (got, want)
            assert np.median(err) < 1e-12  # all but the pairs below
            if resolved.all():  # the volume: a rotating pair's two exponents split late
                np.testing.assert_allclose(got[:S].sum(), want.sum(), rtol=1e-10, atol=1e-12)
            assert (got[:S][~resolved] < UNRESOLVED).all()
            assert np.isnan(got[S:]).all()


def _state_size(cell, variant, layers):
    H = layers[0]["weight_hh"].shape[1]
    R = {"lstm": 5 * H if variant == "FGR" else 2 * H}.get(cell, H)
    return len(layers) * R


@pytest.mark.parametrize("g", [2.0, 4.0])
def test_random_tanh_networks_match_published_spectra(g):
    """h(t+1) = tanh(W h(t)), W ~ N(0, g^2 / N), N = 500, two networks: lambda_max, the
    Kaplan-Yorke dimension per unit and the entropy rate per unit within 5% of Clark's
    N = 4096 spectra (measured: 1-2.5% below them, as finite size predicts)."""
    lam, dim, ent = _random_tanh_spectra(g, [0, 1], N=500, steps=2000, k=160)
    assert (lam[:, -1] < 0).all()  # the 160 exponents reach past the dimension
    for got, want in zip((lam[:, 0], dim, ent), PUBLISHED[g], strict=True):
        assert got.mean() == pytest.approx(want, rel=0.05)


def test_near_the_onset_of_chaos_the_largest_exponent_is_within_25_percent():
    """g = 1.5, N = 500, 8 networks over 6000 steps: lambda_max within 25% of the published
    N = 4096 value (measured: 12% below; the transient is long and the exponent small)."""
    lam, _, _ = _random_tanh_spectra(1.5, range(8), N=500, steps=6000, k=1)
    assert lam[:, 0].mean() == pytest.approx(PUBLISHED[1.5][0], rel=0.25)


@pytest.mark.slow
@pytest.mark.parametrize("g", sorted(PUBLISHED))
def test_every_published_spectrum_at_n_500(g):
    """The exhaustive tier: every published g, 8 networks over 6000 steps, all three
    numbers (within 25% at g = 1.5, 5% above)."""
    lam, dim, ent = _random_tanh_spectra(g, range(8), N=500, steps=6000, k=170)
    rel = 0.25 if g < 2 else 0.05
    for got, want in zip((lam[:, 0], dim, ent), PUBLISHED[g], strict=True):
        assert got.mean() == pytest.approx(want, rel=rel)


def test_the_largest_exponent_is_the_growth_rate_and_mean_field_theory():
    """Chaotic tanh nets (N = 300, g = 3): lambda_1 equals growth_rate (both the second
    half's growth, one of one vector, one of the whole Jacobian product) to 1e-3, and
    mean-field theory's 0.5 ln chi_1 (Molgedey et al. 1992) within 5%."""
    W = np.random.default_rng(5).standard_normal((2, 300, 300)) * 3 / np.sqrt(300)
    res = simulate_rnn(W, steps=3000, outputs=["growth_rate", "lyapunov_exponents"],
                       num_exponents=4)  # fmt: skip
    lam1 = res["lyapunov_exponents"][:, 0]
    np.testing.assert_allclose(lam1, res["growth_rate"], atol=1e-3)
    assert lam1.mean() == pytest.approx(depth_growth_rate("tanh", 3.0), rel=0.05)


@pytest.mark.parametrize("sigma", [0.0, 0.5, 1.0, 1.5, 2.5])
def test_noise_drives_random_networks_from_chaos_to_order(sigma):
    """h(t+1) = tanh(W h(t) + xi(t)), xi i.i.d. N(0, sigma^2) per unit (vector inputs),
    g = 2, N = 500: lambda_max follows mean-field theory's 0.5 ln chi_1(g, sigma) (the
    noise is a fresh bias every step) within 0.01 and changes sign near sigma = 1.3
    (Molgedey, Schuchhardt & Schuster 1992)."""
    N, steps, g = 500, 3000, 2.0
    W = np.stack([np.random.default_rng(s).standard_normal((N, N)) for s in (0, 1)]) * g / N**0.5
    x = np.random.default_rng(9).standard_normal((2, steps, N)) * sigma
    x[:, 0] += 1.0  # a kick away from h = 0 (sigma = 0)
    layers = [{"weight_ih": np.eye(N), "weight_hh": W}]
    res = simulate_network("rnn", layers, steps=steps, input=x, outputs=SPECTRUM[:1],
                           num_exponents=1)  # fmt: skip
    want = depth_growth_rate("tanh", g, sigma)
    lam = res["lyapunov_exponents"][:, 0]
    np.testing.assert_allclose(lam, want, atol=0.01)
    assert np.all(np.sign(lam) == np.sign(want))


def test_orthogonal_deep_nets_have_every_exponent_at_ln_s():
    """A linear deep net of scaled random orthogonal layers s Q_t: every singular value of
    every layer is s, so every exponent is ln s exactly (400 layers, width 32)."""
    from rnnlab.engine import mlp_weights

    W = mlp_weights(32, 400, init="orthogonal", seed=1)
    res = simulate_mlp(W, scale=[0.7, 1.3], activation="identity", outputs=SPECTRUM,
                       num_exponents=32)  # fmt: skip
    want = np.log([[0.7] * 32, [1.3] * 32])
    np.testing.assert_allclose(res["lyapunov_exponents"], want, atol=1e-12)
    assert res["kaplan_yorke_dimension"][1] == 32.0 and res["kaplan_yorke_dimension"][0] == 0
    np.testing.assert_allclose(res["entropy_rate"], [0.0, 32 * np.log(1.3)], atol=1e-10)


def test_float32_blowups_and_bad_requests():
    """float32 spectra of a stable noise-driven net (whose float32 and float64 runs stay
    together: a chaotic one's would part) agree with float64 to 1e-4; a relu net that blows
    up reads NaN (no error); n = 1 and a bad count are refused in one line."""
    W = np.random.default_rng(2).standard_normal((1, 50, 50)) * 0.9 / np.sqrt(50)
    kw = dict(steps=1000, input="noise", amplitude=3.0, outputs=SPECTRUM, num_exponents=10)
    r64, r32 = (simulate_rnn(W, dtype=d, **kw) for d in ("float64", "float32"))
    np.testing.assert_allclose(r32["lyapunov_exponents"], r64["lyapunov_exponents"], atol=1e-4)
    big = simulate_rnn(W * 30, activation="relu", steps=5000, outputs=[*SPECTRUM, "blowup_step"])
    assert big["blowup_step"][0] >= 0 and np.isnan(big["lyapunov_exponents"]).all()
    assert np.isnan(big["kaplan_yorke_dimension"]).all() and np.isnan(big["entropy_rate"]).all()
    with pytest.raises(ValueError, match="n > 1: for n = 1 the one exponent is growth_rate"):
        simulate_rnn(np.ones((1, 1, 1)), outputs=["lyapunov_exponents"])
    with pytest.raises(ValueError, match="num_exponents must be >= 1"):
        simulate_rnn(W, outputs=["lyapunov_exponents"], num_exponents=0)
