"""Invariants of the rnn family, checked on cases drawn by hypothesis."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.engine import get_activation, recurrent_matrix, simulate_rnn

finite = dict(allow_nan=False, allow_infinity=False)
weights = st.floats(-10, 10, **finite)
SETTINGS = settings(deadline=None)  # examples: the profile of the tier (tests/conftest.py)


@SETTINGS
@given(
    w=weights,
    b=weights,
    a=st.floats(-5, 5, **finite),
    inp=st.sampled_from(["impulse", "step", "noise"]),
)
def test_sigmoid_states_stay_in_the_open_unit_interval(w, b, a, inp):
    # |z| <= 10 + 10 + 5 = 25 < 36.7, where sigmoid would round to 1 in float64
    res = simulate_rnn(
        [w], [1.0], [b], activation="sigmoid", steps=200, input=inp, amplitude=a, record="all"
    )
    h = res["state"][0]
    assert np.all(h > 0.0) and np.all(h < 1.0)


@SETTINGS
@given(
    w=st.floats(-1e6, 1e6, **finite),
    b=weights,
    a=st.floats(-1e3, 1e3, **finite),
    seed=st.integers(0, 2**31),
)
def test_tanh_states_are_bounded_by_one_and_bibo_holds(w, b, a, seed):
    res = simulate_rnn(
        [w],
        [1.0],
        [b],
        activation="tanh",
        steps=300,
        input="noise",
        amplitude=a,
        noise_seed=seed,
        record="all",
    )
    assert np.all(np.abs(res["state"]) <= 1.0)
    assert res["bounded"][0] and res["blowup_step"][0] == -1


@SETTINGS
@given(
    act=st.sampled_from(["tanh", "sigmoid"]),
    n=st.integers(2, 12),
    g=st.floats(0.1, 20.0),
    seed=st.integers(0, 1000),
    a=st.floats(-100, 100, **finite),
)
def test_bibo_bounded_for_bounded_activations_in_vector_nets(act, n, g, seed, a):
    W = recurrent_matrix(n, "gaussian", seed, gain=g)
    res = simulate_rnn(
        W, activation=act, steps=200, input="noise", amplitude=a, noise_seed=seed, record="all"
    )
    assert res["bounded"][0]
    assert np.all(res["state_norm"] <= np.sqrt(n))


@SETTINGS
@given(
    act=st.sampled_from(["tanh", "sigmoid", "relu", "identity"]),
    n=st.integers(1, 10),
    radius=st.floats(0.2, 2.0),
    seed=st.integers(0, 1000),
    kind=st.sampled_from(["gaussian", "orthogonal", "symmetric", "diagonal"]),
)
def test_gradient_norm_obeys_the_gamma_sigma_bound(act, n, radius, seed, kind):
    """||dh(t)/dh(0)|| <= (gamma * sigma_max(W))^t, the lecture's vanishing-gradient bound."""
    W = recurrent_matrix(n, kind, seed, spectral_radius=radius) if n > 1 else np.array([radius])
    res = simulate_rnn(
        W, activation=act, steps=120, input="noise", amplitude=0.5, noise_seed=seed, record="all"
    )
    gamma = get_activation(act).gamma
    sigma = res["max_singular_value"][0]
    lg = res["log10_gradient_norm"][0]
    t = np.arange(120)
    ok = np.isfinite(lg)
    bound = t * np.log10(gamma * sigma)
    assert np.all(lg[ok] <= bound[ok] + 1e-9 * (1 + np.abs(bound[ok])))
