"""Interoperability: a PyTorch module's state_dict runs in the engine, and the engine agrees
with PyTorch's own forward pass and autograd Jacobians (float64)."""

import numpy as np
import pytest
import torch

from rnnlab.engine import simulate_state_dict, state_dict_layers

STEPS = 15


def _torch_states(module, x, kind):
    """All layers' h (and c) after each step, stepping the module one input at a time."""
    hs, cs = [], []
    state = None
    for t in range(x.shape[0]):
        _, state = module(x[t : t + 1], state)
        h, c = state if kind == "lstm" else (state, None)
        hs.append(h.reshape(-1))
        cs.append(None if c is None else c.reshape(-1))
    return hs, cs


def _jacobian_norm(module, x, kind, t, wrt):
    """||d h(t) / d h(0)|| (wrt="h") or ||d c(t) / d c(0)|| (wrt="c") by autograd."""
    L, H = module.num_layers, module.hidden_size
    _, state = module(x[0:1])

    def run(v):
        if kind == "lstm":
            h0, c0 = state
            st = (v.reshape(L, 1, H), c0) if wrt == "h" else (h0, v.reshape(L, 1, H))
        else:
            st = v.reshape(L, 1, H)
        for k in range(1, t + 1):
            _, st = module(x[k : k + 1], st)
        if kind == "lstm":
            return (st[0] if wrt == "h" else st[1]).reshape(-1)
        return st.reshape(-1)

    if kind == "lstm":
        v0 = state[0] if wrt == "h" else state[1]
    else:
        v0 = state
    J = torch.autograd.functional.jacobian(run, v0.reshape(-1).detach())
    return np.log10(np.linalg.norm(J.numpy(), 2))


@pytest.mark.parametrize(
    ("kind", "nonlinearity"), [("lstm", "tanh"), ("gru", "tanh"), ("rnn", "tanh"), ("rnn", "relu")]
)
def test_state_dict_runs_like_pytorch(kind, nonlinearity):
    torch.manual_seed(0)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    kw = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    module = cls(input_size=3, hidden_size=5, num_layers=2, **kw).double()
    u = np.array([0.6, -0.8, 0.0])
    signal = np.random.default_rng(1).uniform(-1, 1, STEPS)
    x = torch.tensor(signal[:, None, None] * u[None, None, :])  # (steps, batch 1, 3)
    res = simulate_state_dict(
        module.state_dict(), nonlinearity=nonlinearity, steps=STEPS, input=signal,
        input_direction=u, record="all", parallel=False, outputs="all",
    )  # fmt: skip
    with torch.no_grad():
        hs, cs = _torch_states(module, x, kind)
    # the state vectors themselves: every layer's h (and c), layer after layer
    np.testing.assert_allclose(
        res["hidden_state"][0], np.stack([h.numpy() for h in hs]), rtol=1e-12, atol=1e-15
    )
    if kind == "lstm":
        np.testing.assert_allclose(
            res["cell_state"][0], np.stack([c.numpy() for c in cs]), rtol=1e-12, atol=1e-15
        )
    np.testing.assert_allclose(
        res["state_norm"][0], [float(h.norm()) for h in hs], rtol=1e-12, atol=1e-15
    )
    if kind == "lstm":
        np.testing.assert_allclose(
            res["cell_norm"][0], [float(c.norm()) for c in cs], rtol=1e-12, atol=1e-15
        )
    for t in (1, 6, STEPS - 1):
        want = _jacobian_norm(module, x, kind, t, "h")
        assert res["log10_gradient_norm"][0, t] == pytest.approx(want, abs=1e-10)
        if kind == "lstm":
            want = _jacobian_norm(module, x, kind, t, "c")
            assert res["log10_cell_gradient_norm"][0, t] == pytest.approx(want, abs=1e-10)


def test_state_dict_with_a_prefix_and_refusals():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.GRU(2, 4))
    cell, layers = state_dict_layers(model.state_dict())
    assert cell == "gru" and len(layers) == 1
    assert layers[0]["weight_hh"].shape == (12, 4)
    with pytest.raises(ValueError, match="bidirectional"):
        state_dict_layers(torch.nn.LSTM(2, 4, bidirectional=True).state_dict())
    with pytest.raises(ValueError, match="projections"):
        state_dict_layers(torch.nn.LSTM(2, 4, proj_size=2).state_dict())
    with pytest.raises(ValueError, match="weight_hh_l0"):
        state_dict_layers({"weight": torch.zeros(3)})


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_vector_inputs_run_like_pytorch(kind):
    """Input vectors (cases, steps, I) of your own data: every layer's h (and c) after every
    step equal PyTorch's forward pass on the same data, for each case (float64)."""
    torch.manual_seed(2)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    module = cls(input_size=3, hidden_size=5, num_layers=2).double()
    x = np.random.default_rng(3).standard_normal((2, STEPS, 3))
    res = simulate_state_dict(module.state_dict(), steps=STEPS, input=x, record="all",
                              outputs=["hidden_state", "state_norm"])  # fmt: skip
    assert res.attrs["input"] == "vectors"
    for case in range(2):
        hs, _ = _torch_states(module, torch.tensor(x[case][:, None, :]), kind)
        want = np.stack([h.detach().numpy() for h in hs])  # (steps, L H)
        got = res["hidden_state"][case][:, : want.shape[1]]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_vector_inputs_of_the_wrong_shape_are_refused():
    module = torch.nn.GRU(input_size=3, hidden_size=4).double()
    with pytest.raises(
        ValueError, match=r"input: vector inputs must have shape \(cases, steps, I\)"
    ):
        simulate_state_dict(module.state_dict(), steps=STEPS, input=np.zeros((1, STEPS, 2)))
