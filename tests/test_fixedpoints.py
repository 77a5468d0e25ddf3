"""Fixed points and their linearisation (engine/fixedpoints.py) against closed forms and
PyTorch's own step."""

import numpy as np
import pytest
from scipy.optimize import brentq

from rnnlab.engine.fixedpoints import classify_fixed_point, fixed_points


def test_a_bistable_unit_has_two_stable_points_and_an_unstable_one():
    """h = tanh(w h), w = 2: h* = +-0.9575 (the root of tanh(2h) = h, solved by SciPy) with
    slope w (1 - h*^2) = 0.166 < 1 (stable), and 0 with slope w = 2 (unstable)."""
    layers = [{"weight_ih": np.zeros((1, 1)), "weight_hh": np.array([[2.0]])}]
    fp = fixed_points("rnn", layers, num_starts=20, scale=2.0)
    h = brentq(lambda v: np.tanh(2 * v) - v, 0.1, 2)
    order = np.argsort(fp.points[:, 0])
    np.testing.assert_allclose(fp.points[order, 0], [-h, 0.0, h], atol=1e-10)
    np.testing.assert_allclose(
        np.abs(fp.eigenvalues[order, 0]), [2 * (1 - h * h), 2, 2 * (1 - h * h)]
    )
    assert list(fp.kind[order]) == ["stable", "unstable", "stable"] and fp.starts.sum() == 20
    assert (fp.residual < 1e-10).all()


def test_a_linear_map_has_its_closed_form_fixed_point_and_eigenvalues():
    """h = W h + b with rho(W) = 1.3: the one fixed point (I - W)^-1 b, the eigenvalues of W
    there, a saddle (moduli on both sides of 1); under a constant input x the point moves to
    (I - W)^-1 (b + W_ih x)."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((5, 5))
    W = 1.3 * W / np.abs(np.linalg.eigvals(W)).max()
    b, Wih = rng.standard_normal(5), rng.standard_normal((5, 2))
    layers = [{"weight_ih": Wih, "weight_hh": W, "bias_hh": b}]
    fp = fixed_points("rnn", layers, activation="identity", num_starts=5)
    assert fp.points.shape == (1, 5) and fp.kind[0] == "saddle"
    np.testing.assert_allclose(fp.points[0], np.linalg.solve(np.eye(5) - W, b), atol=1e-12)
    want = np.sort(np.abs(np.linalg.eigvals(W)))
    np.testing.assert_allclose(np.sort(np.abs(fp.eigenvalues[0])), want, rtol=1e-10)
    x = np.array([0.5, -1.0])
    moved = fixed_points("rnn", layers, activation="identity", input=x, num_starts=3)
    np.testing.assert_allclose(moved.points[0], np.linalg.solve(np.eye(5) - W, b + Wih @ x))


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_fixed_points_of_pytorch_modules_are_fixed_under_pytorch(kind):
    """A torch.nn module's state_dict: every fixed point found (from 48 starts) is mapped to
    itself by the module's own step to 1e-9 (PyTorch float64), the LSTM's (h, c) both."""
    torch = pytest.importorskip("torch")
    from rnnlab.engine import state_dict_layers

    torch.manual_seed(1)
    module = getattr(torch.nn, kind)(3, 6).double()
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(2.5)  # a richer landscape than PyTorch's default scale
    cell, layers = state_dict_layers(module.state_dict())
    fp = fixed_points(cell, layers, num_starts=48, scale=1.5)
    assert len(fp.points) >= 1 and (fp.residual < 1e-10).all()
    x = torch.zeros(1, 1, 3, dtype=torch.float64)
    for s in fp.points:
        st = torch.tensor(s, dtype=torch.float64)
        if kind == "LSTM":
            _, (h, c) = module(x, (st[:6].view(1, 1, 6), st[6:].view(1, 1, 6)))
            got = torch.cat([h.ravel(), c.ravel()])
        else:
            _, h = module(x, st.view(1, 1, 6))
            got = h.ravel()
        np.testing.assert_allclose(got.detach().numpy(), s, atol=1e-9)


def test_classes_and_bad_input():
    """The classes by eigenvalue moduli; a wrong input, start width, start value, cell or
    count is one ValueError; nothing found is an empty result."""
    assert classify_fixed_point([0.5, -0.9]) == "stable"
    assert classify_fixed_point([1.5, 0.2j]) == "saddle"
    assert classify_fixed_point([1.2, -3.0]) == "unstable"
    assert classify_fixed_point([0.9999, 0.3]) == "line_attractor"  # one direction at +1
    assert classify_fixed_point([1.0005, -0.3j]) == "line_attractor"
    assert classify_fixed_point([-0.9999, 0.3]) == "marginal"  # a flip, not a line
    assert classify_fixed_point([1.0, 1.0, 0.2]) == "marginal"  # a plane of states
    assert classify_fixed_point([0.9999, 0.9995]) == "marginal"  # a second slow direction
    assert classify_fixed_point([0.6 + 0.8j, 0.6 - 0.8j]) == "marginal"  # a rotation
    assert classify_fixed_point([1.0, 1.5]) == "saddle"
    layers = [{"weight_ih": np.zeros((2, 1)), "weight_hh": np.eye(2) * 0.5}]
    with pytest.raises(ValueError, match="input must be a vector of length I = 1"):
        fixed_points("rnn", layers, input=[1.0, 2.0])
    with pytest.raises(ValueError, match="starts must have 2 columns"):
        fixed_points("rnn", layers, starts=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="starts must be finite"):
        fixed_points("rnn", layers, starts=np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match="the lstm cell needs 4 H = 8"):
        fixed_points("lstm", layers)
    with pytest.raises(ValueError, match="num_starts must be >= 1"):
        fixed_points("rnn", layers, num_starts=0)
    # no start converges within one Newton step: an empty result, not an error
    none = fixed_points("rnn", [{"weight_ih": np.zeros((2, 1)), "weight_hh": np.eye(2) * 3}],
                        max_iter=1, num_starts=2, scale=5.0)  # fmt: skip
    assert none.points.shape[0] == 0 and none.kind.size == 0


def test_visited_starts_follow_the_state_layout_and_refuse_non_finite_runs():
    """A 2-layer LSTM's starts are [h1, 0, h2, 0] (each layer's h, then its c at 0) and the
    points found from them are fixed under PyTorch's 2-layer nn.LSTM; a network whose states
    overflow starts from its finite ones, and one with infinite weights (every state NaN) is
    refused in one line naming them."""
    torch = pytest.importorskip("torch")
    from rnnlab.engine.fixedpoints import _flat_states, visited_fixed_points
    from rnnlab.engine.train import init_network

    layers, _ = init_network("lstm", 3, 2, 2, 1, seed=1, init="pytorch", scale=None,
                             forget_bias=0.0)  # fmt: skip
    net = {"cell": "lstm", "layers": layers, "activation": "tanh", "variant": "vanilla",
           "task": "adding"}  # fmt: skip
    h = np.arange(12.0).reshape(2, 6)  # two states of [h1 (3), h2 (3)]
    np.testing.assert_array_equal(_flat_states(net, h)[1], [6, 7, 8, 0, 0, 0, 9, 10, 11, 0, 0, 0])
    _, fp = visited_fixed_points(net, 5, starts=8)
    mod = torch.nn.LSTM(2, 3, num_layers=2).double()
    mod.load_state_dict({f"{k}_l{i}": torch.from_numpy(np.asarray(v))
                         for i, w in enumerate(layers) for k, v in w.items()})  # fmt: skip
    assert len(fp.points) >= 1
    for s in fp.points:
        st = torch.from_numpy(s).view(2, 2, 3)  # (layer, h or c, unit)
        _, (hn, cn) = mod(torch.zeros(1, 1, 2, dtype=torch.float64),
                          (st[:, 0].reshape(2, 1, 3), st[:, 1].reshape(2, 1, 3)))  # fmt: skip
        got = torch.stack([hn[:, 0], cn[:, 0]], dim=1).ravel().detach().numpy()
        np.testing.assert_allclose(got, s, atol=1e-9)
    wild, _ = init_network("rnn", 3, 1, 2, 1, seed=1, init="pytorch", scale=None,
                           forget_bias=0.0)  # fmt: skip
    relu = {**net, "cell": "rnn", "activation": "relu"}
    big = [{k: v * 1e100 for k, v in w.items()} for w in wild]  # its states overflow later:
    visited_fixed_points({**relu, "layers": big}, 5)  # the finite ones are the starts
    broken = [{k: v * np.inf for k, v in w.items()} for w in wild]  # every state NaN
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match=r"\['weight_.h'\] holds"):
        visited_fixed_points({**relu, "layers": broken}, 5)
