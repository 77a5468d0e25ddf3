"""Memory capacity (Jaeger 2001; engine/_capacity.py): each delay's cross-validated squared
correlation against the closed form of linear networks, the Krylov rank, the small-input
limit of tanh networks, and what every cell and a bad request do."""

import numpy as np
import pytest

from rnnlab.engine import impulse_direction, init_layers, simulate_network, simulate_rnn
from rnnlab.engine.reference import linear_memory_capacity

CAPACITY = ["memory_capacity", "memory_capacity_by_delay"]


def _capacity(W, C, steps, delays, activation="identity", amplitude=1.0):
    res = simulate_rnn(W[None], C, activation=activation, steps=steps, input="noise",
                       amplitude=amplitude, record="none", outputs=CAPACITY,
                       num_delays=delays)  # fmt: skip
    return res["memory_capacity"][0], res["memory_capacity_by_delay"][0]


def _tolerance(want, window):
    """Four standard errors of a squared correlation r^2 from ``window`` samples, 2 r (1 -
    r^2) / sqrt(window), and the n / window of a fitted readout."""
    return 4 * 2 * np.sqrt(want) * (1 - want) / np.sqrt(window) + 10 / window


@pytest.mark.parametrize("rho", [0.5, 0.9, 0.99])
def test_linear_networks_match_the_closed_form_delay_by_delay(rho):
    """n = 10, a random non-normal W of spectral radius rho, uniform i.i.d. input, 2 x 10^5
    steps (the readout fitted and scored on quarters of the second half, 25000 steps each):
    every delay's r^2 within four standard errors of the closed form's leverage, and the
    total within 0.08 of its (the out-of-sample fit shrinks each delay by about n / T), not
    above n but by the noise of the forgotten delays (mean 0, about 1 / T each)."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((10, 10))
    W = rho * A / np.abs(np.linalg.eigvals(A)).max()
    C = impulse_direction(10, 0)
    total, by_delay = _capacity(W, C, 200_001, 80)
    want = linear_memory_capacity(W, C, 80)
    assert (np.abs(by_delay - want) <= _tolerance(want, 25_000)).all()
    assert total == pytest.approx(want.sum(), abs=0.08) and total < 10 + 80 * 4 / 25_000


def test_the_total_is_the_rank_of_the_krylov_matrix():
    """A diagonal W whose input reaches 5 of its 8 units: the Krylov matrix [C, W C, ...] has
    rank 5 and so has the capacity (the 3 unreached units are constant: the readout's
    covariance is singular, and the fit still stands)."""
    W = np.diag(np.linspace(0.3, 0.7, 8))
    C = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]) / np.sqrt(5)
    krylov = np.stack([np.linalg.matrix_power(W, k) @ C for k in range(8)], axis=1)
    assert np.linalg.matrix_rank(krylov) == 5
    total, by_delay = _capacity(W, C, 100_001, 60)
    assert total == pytest.approx(5.0, abs=0.02) and (by_delay <= 1).all()
    assert np.abs(by_delay[30:]).max() < 1e-3  # forgotten: noise about 0, either sign


def test_a_short_run_does_not_exceed_the_bound():
    """n = 40 and only 400 samples per half: an in-sample fit would exceed n (each of the 40
    weights fits noise); the cross-validated capacity stays below it and every r^2 in [0,
    1] up to noise."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((40, 40))
    W = 0.95 * A / np.abs(np.linalg.eigvals(A)).max()
    total, by_delay = _capacity(W, impulse_direction(40, 0), 1601, 200)
    assert 0 < total < 40 and (by_delay >= -0.05).all() and (by_delay <= 1).all()
    assert total < linear_memory_capacity(W, impulse_direction(40, 0), 200).sum()


def test_forgotten_delays_add_no_bias_and_an_offset_changes_nothing():
    """rho = 0.3: delays beyond 100 are forgotten; their capacities are noise of mean 0
    (the two factors come from independent quarters of the window: a squared correlation
    would be biased up by about 1 / T each). A bias that moves the state's mean to 1e3 does
    not change the capacity (the moments are centred), up to noise."""
    rng = np.random.default_rng(5)
    A = rng.standard_normal((6, 6))
    W = 0.3 * A / np.abs(np.linalg.eigvals(A)).max()
    C = impulse_direction(6, 0)
    steps, delays = 40_001, 400
    kw = dict(activation="identity", steps=steps, input="noise", record="none",
              outputs=CAPACITY, num_delays=delays)  # fmt: skip
    res = simulate_rnn(W[None], C, **kw)
    tail = res["memory_capacity_by_delay"][0, 100:]
    assert abs(tail.mean()) < 4 * tail.std() / np.sqrt(tail.size)
    b = (np.eye(6) - W) @ np.full(6, 1e3)  # the stationary mean: 1e3 in every unit
    shifted = simulate_rnn(W[None], C, b, **kw)
    np.testing.assert_allclose(shifted["memory_capacity_by_delay"][0, :20],
                               res["memory_capacity_by_delay"][0, :20], atol=1e-6)  # fmt: skip


def test_small_inputs_make_tanh_networks_linear():
    """tanh with inputs of 1e-3: h stays near 0 where tanh'(0) = 1, so the capacity is the
    linear closed form's (within four standard errors per delay)."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((12, 12))
    W = 0.9 * A / np.abs(np.linalg.eigvals(A)).max()
    C = impulse_direction(12, 0)
    _, by_delay = _capacity(W, C, 100_001, 60, activation="tanh", amplitude=1e-3)
    want = linear_memory_capacity(W, C, 60)
    assert (np.abs(by_delay - want) <= _tolerance(want, 12_500)).all()


def test_every_cell_has_a_bounded_capacity_and_bad_requests_are_refused():
    """LSTM, GRU and a stacked RNN under noise: each delay's r^2 in [0, 1] (up to noise of
    0.05) and the total at
    most the number of hidden units read (L H); a blow-up is NaN; vector inputs and more
    delays than half the run are refused in one line."""
    for cell, L in (("lstm", 1), ("gru", 1), ("rnn", 2)):
        layers = init_layers(cell, 8, L, init="normal", scale=0.5, seed=1)
        res = simulate_network(cell, layers, steps=4001, input="noise", outputs=CAPACITY,
                               num_delays=40)  # fmt: skip
        mc = res["memory_capacity_by_delay"][0]
        assert (mc >= -0.05).all() and (mc <= 1).all() and 0 < res["memory_capacity"][0] <= 8 * L
    W = np.eye(6)[None] * 1.5
    big = simulate_rnn(W, activation="identity", steps=4001, input="noise", outputs=CAPACITY)
    assert np.isnan(big["memory_capacity"]).all()
    with pytest.raises(ValueError, match=r"num_delays must be >= 1 and <= .* = 49, got 60: give"):
        simulate_rnn(W, steps=100, input="noise", outputs=CAPACITY, num_delays=60)
    x = np.zeros((1, 100, 2))
    layers = init_layers("rnn", 4, 1, input_size=2, seed=0)
    for bad in (dict(input=x), dict(input="impulse"), dict(input="step")):
        with pytest.raises(ValueError, match="memory_capacity reads out a random scalar input"):
            simulate_network("rnn", layers, steps=100, outputs=CAPACITY, **bad)
    with pytest.raises(ValueError, match="memory_capacity needs at least 8 steps"):
        simulate_rnn(W, steps=15, input="noise", outputs=CAPACITY, num_delays=2)
    every = simulate_network("rnn", layers, steps=100, input=x, outputs="all")
    assert "memory_capacity" not in every
    zero = simulate_rnn(W * 0.5, steps=401, input="noise", amplitude=0.0, outputs=CAPACITY)
    assert np.isnan(zero["memory_capacity"]).all()  # a constant input: nothing to read
