"""The exhaustive tier (``make test-all``): the kernels against the independent references at
the scale users run them (10^4 and 10^5 steps, every activation and cell), where a slow drift
would show. Marked ``slow``: ``make test`` leaves them out."""

import numpy as np
import pytest

from rnnlab.engine import (
    ACTIVATIONS,
    LSTM_VARIANTS,
    init_layers,
    noise_keys,
    simulate_network,
    simulate_rnn,
)
from rnnlab.engine.reference import input_sequence, rnn_numpy_vectorised, rnn_reference
from rnnlab.engine.reference_network import network_reference

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_scalar_runs_of_1e5_steps_match_vectorised_numpy(activation):
    """512 scalar recursions, w in [-1.5, 1.5], b in [-0.5, 0.5], 10^5 steps: the summaries
    against NumPy's own tanh/expit in a loop vectorised over cases."""
    rng = np.random.default_rng(1)
    w = rng.uniform(-1.5, 1.5, 512)
    c = rng.uniform(-1, 1, 512)
    b = rng.uniform(-0.5, 0.5, 512)
    steps = 100_000
    res = simulate_rnn(w, c, b, activation=activation, steps=steps, record=[steps - 1])
    with np.errstate(all="ignore"):  # NumPy's loop goes on through blow-ups (inf - inf)
        ref = rnn_numpy_vectorised(w, c, b, activation, steps)
    ok = res["blowup_step"] < 0
    np.testing.assert_array_equal(res["blowup_step"], ref["blowup_step"])
    # the state after 10^5 steps: each side rounds differently once per step, and the
    # recursion contracts (or saturates) those differences away
    np.testing.assert_allclose(
        np.abs(res["state"][ok, -1]), ref["final_norm"][ok], rtol=1e-9, atol=1e-12
    )
    # a case that blew up has no horizon (-1, documented); the NumPy loop keeps counting
    np.testing.assert_array_equal(res["memory_horizon"][ok], ref["memory_horizon"][ok])
    # the step at which a slowly converging orbit (w near -1) moves less than 1e-12 can
    # differ by one step between two codes that round differently (seen: 1 case of 512)
    sat, sat_ref = res["saturation_step"][ok], ref["saturation_step"][ok]
    assert np.abs(sat - sat_ref).max() <= 1 and np.mean(sat != sat_ref) < 0.01
    g, gr = res["growth_rate"][ok], ref["growth_rate"][ok]
    fin = np.isfinite(gr)
    np.testing.assert_array_equal(np.isfinite(g), fin)
    np.testing.assert_allclose(g[fin], gr[fin], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_vector_runs_of_1e4_steps_match_the_reference(activation):
    from rnnlab.engine import recurrent_matrix

    n, steps = 6, 10_000
    # bounded activations on the edge of chaos; the unbounded ones fading slowly (at 1.05
    # the state would reach 1e212, beyond the reference's plain np.linalg.norm)
    rho = 1.05 if ACTIVATIONS[activation].bounded else 0.99
    W = recurrent_matrix(n, "gaussian", 3, spectral_radius=rho)
    C = np.random.default_rng(2).standard_normal(n)
    res = simulate_rnn(
        W, C, 0.1, activation=activation, steps=steps, input="noise", amplitude=0.3,
        noise_seed=4, record="log", outputs="all",
    )  # fmt: skip
    x = input_sequence("noise", steps, 0.3, int(noise_keys([4], n)[0]))
    ref = rnn_reference(W, C, np.full(n, 0.1), x, activation)
    t = res.time
    # the reference's product is not renormalised: compare where it has not underflowed
    fin = ref["log10_gradient_norm"][t] > -290
    np.testing.assert_allclose(
        res["log10_gradient_norm"][0, fin], ref["log10_gradient_norm"][t][fin], atol=1e-9
    )
    np.testing.assert_allclose(res["state_norm"][0], ref["state_norm"][t], rtol=1e-9, atol=1e-12)


CELLS = [("lstm", v) for v in ("vanilla", "NFG", "CIFG", "FGR")] + [("gru", "vanilla")]
CELLS += [("rnn", "vanilla"), ("cec", "vanilla")]


@pytest.mark.parametrize(("cell", "variant"), CELLS)
def test_layered_runs_of_1e4_steps_match_the_reference(cell, variant):
    """Two layers, noise input, 10^4 steps: norms and gradient norms against the complex-step
    reference at log-spaced steps."""
    steps = 10_000
    layers = init_layers(
        cell, 4, 2, init="normal", scale=0.6, seed=9, peepholes=True, gate_recurrence=True
    )
    res = simulate_network(
        cell, layers, variant=variant, steps=steps, input="noise", amplitude=0.8, noise_seed=5,
        record="log", outputs=["state_norm", "response", "log10_gradient_norm"],
    )  # fmt: skip
    x = input_sequence("noise", steps, 0.8, int(noise_keys([5], 4)[0]))
    with np.errstate(divide="ignore"):  # log10 of a product that underflowed to 0
        ref = network_reference(cell, layers, x, variant=variant)
    t = res.time
    for name in ("state_norm", "response"):
        scale = np.nanmax(ref["state_norm"])
        np.testing.assert_allclose(
            res[name][0], ref[name][t], rtol=1e-9, atol=1e-9 * scale, err_msg=name
        )
    lg = ref["log10_gradient_norm"][t]
    fin = lg > -290  # the reference's product is not renormalised: before it underflows
    assert fin.sum() >= 20
    np.testing.assert_allclose(res["log10_gradient_norm"][0, fin], lg[fin], atol=1e-8)


def test_every_lstm_variant_is_in_the_long_tests():
    assert {v for c, v in CELLS if c == "lstm"} <= set(LSTM_VARIANTS)
