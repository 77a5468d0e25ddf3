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
