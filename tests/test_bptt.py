"""Exact gradients by backpropagation through time (:func:`rnnlab.engine.bptt`): the loss and
every gradient against PyTorch's autograd (float64) on ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``
modules and on a forward written by hand in torch (the cec cell, the rnn cell's other
activations, the LSTM's peepholes and variants), central finite differences, many cases at
once against one at a time (bit for bit), a long sequence, float32 against float64 and the
refusals."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.engine import bptt, init_layers, state_dict_layers
from rnnlab.engine.bptt import KERNELS

STEPS, BATCH, I, O = 50, 3, 3, 4
#: Relative agreement with autograd (of each array, relative to its largest entry).
RTOL = 1e-10

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
LOSSES = [("mse", None), ("mse", [STEPS - 1]), ("cross_entropy", None)]


def _close(ours, want, rtol=RTOL, what=""):
    """``ours`` within ``rtol`` of ``want``, relative to the largest entry of ``want``."""
    want = np.asarray(want, dtype=np.float64)
    scale = np.max(np.abs(want))
    assert np.shape(ours) == want.shape, what
    err = np.max(np.abs(ours - want)) / scale
    assert err <= rtol, f"{what}: relative difference {err:.1e} > {rtol:.0e}"
    return err


def _targets(rng, loss, nloss, batch=BATCH, cases=()):
    if loss == "mse":
        return rng.standard_normal((*cases, batch, nloss, O))
    return rng.integers(0, O, (*cases, batch, nloss))


def _torch_loss(out, w, b, targets, loss, steps):
    """PyTorch's default (mean) reduction of the loss of the readout at the loss steps."""
    y = out[:, steps] @ w.T + b
    if loss == "mse":
        return F.mse_loss(y, torch.as_tensor(targets))
    return F.cross_entropy(y.reshape(-1, y.shape[-1]), torch.as_tensor(targets).reshape(-1))


@pytest.mark.parametrize(
    ("kind", "nonlinearity"), [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
)
def test_loss_and_every_gradient_equal_torch_autograd(kind, nonlinearity):
    """nn.RNN / nn.LSTM / nn.GRU with a linear readout, 1 and 2 layers, H = 8 and 32, for MSE
    at every step, MSE at the last step and cross-entropy at every step."""
    rng = np.random.default_rng(7)
    kw = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    worst = 0.0
    for L in (1, 2):
        for H in (8, 32):
            torch.manual_seed(10 * L + H)
            module = MODULES[kind](I, H, num_layers=L, batch_first=True, **kw).double()
            lin = torch.nn.Linear(H, O).double()
            x = rng.standard_normal((BATCH, STEPS, I))
            _, layers = state_dict_layers(module.state_dict())
            readout = {"weight": lin.weight.detach().numpy(), "bias": lin.bias.detach().numpy()}
            for loss, loss_steps in LOSSES:
                steps = list(range(STEPS)) if loss_steps is None else loss_steps
                y = _targets(rng, loss, len(steps))
                module.zero_grad()
                lin.zero_grad()
                out, _ = module(torch.tensor(x))
                want = _torch_loss(out, lin.weight, lin.bias, y, loss, steps)
                want.backward()
                value, grads, pred = bptt(
                    kind, layers, readout, x, y, loss=loss, loss_steps=loss_steps,
                    activation=nonlinearity, return_outputs=True,
                )  # fmt: skip
                what = f"{kind} {nonlinearity} L={L} H={H} {loss} {loss_steps}"
                assert value.shape == (1,)
                worst = max(worst, _close(value, [want.item()], what=what))
                readout_at_steps = (out[:, steps] @ lin.weight.T + lin.bias).detach().numpy()
                worst = max(worst, _close(pred[0], readout_at_steps, what=f"{what} outputs"))
                for l in range(L):
                    for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        g = getattr(module, f"{key}_l{l}").grad.numpy()
                        ours = grads["layers"][l][key][0]
                        worst = max(worst, _close(ours, g, what=f"{what} {key}_l{l}"))
                for key, p in (("weight", lin.weight), ("bias", lin.bias)):
                    ours = grads["readout"][key][0]
                    worst = max(worst, _close(ours, p.grad.numpy(), what=f"{what} {key}"))
    assert worst < RTOL  # measured: about 3e-15 for every cell


# ---- a forward written by hand in torch (torch has no cec, no peepholes, no variants) ----

_ACTS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}


def _torch_forward(cell, layers, x, variant="vanilla", activation="tanh"):
    """The top layer's h of every step (batch, steps, H), from the zero state."""
    f = _ACTS[activation]
    seq = x
    for w in layers:
        H = w["weight_ih"].shape[0] // {"rnn": 1, "cec": 1, "lstm": 4}[cell]
        B = seq.shape[0]
        h, c, gates = seq.new_zeros(B, H), seq.new_zeros(B, H), seq.new_zeros(B, 3 * H)
        peep = "weight_peephole" in w and variant != "NP"
        outs = []
        for t in range(seq.shape[1]):
            ax = seq[:, t] @ w["weight_ih"].T + w["bias_ih"]
            if cell == "cec":
                h = h + f(ax)
            elif cell == "rnn":
                h = f(ax + h @ w["weight_hh"].T + w["bias_hh"])
            else:
                zi, zf, zg, zo = (ax + h @ w["weight_hh"].T + w["bias_hh"]).split(H, dim=1)
                if peep:
                    zi, zf = zi + w["weight_peephole"][0] * c, zf + w["weight_peephole"][1] * c
                if variant == "FGR":
                    q = gates @ w["weight_gate"].T
                    zi, zf, zo = zi + q[:, :H], zf + q[:, H : 2 * H], zo + q[:, 2 * H :]
                i = torch.ones_like(zi) if variant == "NIG" else torch.sigmoid(zi)
                fg = {"NFG": torch.ones_like(zf), "CIFG": 1 - i}.get(variant, torch.sigmoid(zf))
                g = zg if variant == "NIAF" else torch.tanh(zg)
                c = fg * c + i * g
                if peep:
                    zo = zo + w["weight_peephole"][2] * c
                o = torch.ones_like(zo) if variant == "NOG" else torch.sigmoid(zo)
                h = o * (c if variant == "NOAF" else torch.tanh(c))
                gates = torch.cat([i, fg, o], dim=1)
            outs.append(h)
        seq = torch.stack(outs, dim=1)
    return seq


def _against_hand_written(cell, layers, variant="vanilla", activation="tanh", seed=0):
    """bptt against autograd through :func:`_torch_forward`, for MSE and cross-entropy."""
    rng = np.random.default_rng(seed)
    H = layers[0]["weight_ih"].shape[0] // (4 if cell == "lstm" else 1)
    readout = {"weight": rng.standard_normal((O, H)) / np.sqrt(H), "bias": rng.standard_normal(O)}
    x = rng.standard_normal((BATCH, STEPS, I))
    for loss, loss_steps in LOSSES:
        steps = list(range(STEPS)) if loss_steps is None else loss_steps
        y = _targets(rng, loss, len(steps))
        tl = [{k: torch.tensor(v, requires_grad=True) for k, v in w.items()} for w in layers]
        tr = {k: torch.tensor(v, requires_grad=True) for k, v in readout.items()}
        out = _torch_forward(cell, tl, torch.tensor(x), variant, activation)
        want = _torch_loss(out, tr["weight"], tr["bias"], y, loss, steps)
        want.backward()
        value, grads = bptt(
            cell, layers, readout, x, y, loss=loss, loss_steps=loss_steps, variant=variant,
            activation=activation,
        )  # fmt: skip
        what = f"{cell} {variant} {activation} {loss}"
        _close(value, [want.item()], what=what)
        for l, w in enumerate(tl):
            assert set(grads["layers"][l]) == set(w)
            for key, p in w.items():
                g = np.zeros(p.shape) if p.grad is None else p.grad.numpy()
                if not g.any():  # unused by this variant: zero, exactly
                    assert not grads["layers"][l][key].any(), f"{what} {key}"
                    continue
                _close(grads["layers"][l][key][0], g, what=f"{what} {key}_l{l}")
        for key, p in tr.items():
            _close(grads["readout"][key][0], p.grad.numpy(), what=f"{what} readout {key}")


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
def test_cec_and_rnn_activations_equal_autograd(activation):
    scale = 0.3 if activation in ("identity", "relu") else 1.0  # keep the linear runs bounded
    cec = init_layers("cec", 8, 2, input_size=I, init="normal", scale=scale / 4, seed=1)
    for w in cec:
        w["bias_ih"] = np.random.default_rng(2).uniform(-0.1, 0.1, 8)
    _against_hand_written("cec", cec, activation=activation)
    rnn = init_layers("rnn", 8, 2, input_size=I, seed=3)
    _against_hand_written("rnn", rnn, activation=activation)


@pytest.mark.parametrize("variant", ["vanilla", "NIG", "NFG", "NOG", "NIAF", "NOAF", "NP", "CIFG",
                                     "FGR"])  # fmt: skip
def test_lstm_peepholes_and_variants_equal_autograd(variant):
    """Every variant of Greff et al. with peepholes (NP: present but unused, zero gradient),
    2 layers; FGR with its gate recurrence (its weight_gate has a zero gradient otherwise)."""
    layers = init_layers("lstm", 8, 2, input_size=I, peepholes=True, gate_recurrence=True, seed=4)
    for w in layers:
        w["weight_peephole"] = w["weight_peephole"] * 4.0  # large enough to matter
    _against_hand_written("lstm", layers, variant=variant, seed=5)


# ---- finite differences, cases, long runs, precision, refusals ----


def _small_problem(cell, seed, H=4, steps=20, **kw):
    rng = np.random.default_rng(seed)
    layers = init_layers(cell, H, 2, input_size=2, seed=seed, **kw)
    readout = {"weight": rng.standard_normal((3, H)), "bias": rng.standard_normal(3)}
    x = rng.standard_normal((2, steps, 2))
    y = rng.integers(0, 3, (2, steps))
    return layers, readout, x, y


@pytest.mark.parametrize(
    ("cell", "variant", "extra"),
    [("rnn", "vanilla", {}), ("gru", "vanilla", {}), ("cec", "vanilla", {}),
     ("lstm", "FGR", {"peepholes": True, "gate_recurrence": True})],
)  # fmt: skip
def test_central_finite_differences(cell, variant, extra):
    layers, readout, x, y = _small_problem(cell, 11, **extra)
    kw = dict(loss="cross_entropy", variant=variant, parallel=False)
    _, grads = bptt(cell, layers, readout, x, y, **kw)
    rng = np.random.default_rng(12)
    eps = 1e-5  # measured: within 3e-8 of the exact gradient (1e-6: 3e-7, rounding)
    for l, key in [(0, "weight_ih"), (1, "weight_hh"), (0, "bias_hh"), (1, "bias_ih"),
                   (0, "weight_peephole"), (1, "weight_gate")]:  # fmt: skip
        if key not in layers[l] or (cell == "cec" and key in ("weight_hh", "bias_hh")):
            continue
        w = layers[l][key]
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in w.shape)
            w0 = w[idx]
            w[idx] = w0 + eps
            up = bptt(cell, layers, readout, x, y, **kw)[0][0]
            w[idx] = w0 - eps
            down = bptt(cell, layers, readout, x, y, **kw)[0][0]
            w[idx] = w0
            fd = (up - down) / (2 * eps)
            assert grads["layers"][l][key][(0, *idx)] == pytest.approx(fd, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "cec"])
def test_many_cases_at_once_equal_one_at_a_time_bit_for_bit(cell):
    rng = np.random.default_rng(21)
    ncase, H = 5, 6
    per = [init_layers(cell, H, 2, input_size=2, seed=s, peepholes=cell == "lstm")
           for s in range(ncase)]  # fmt: skip
    layers = [{k: np.stack([p[l][k] for p in per]) for k in per[0][l]} for l in range(2)]
    readout = {"weight": rng.standard_normal((ncase, 2, H)), "bias": np.ones(2)}  # shared bias
    x = rng.standard_normal((ncase, 3, 15, 2))
    y = rng.standard_normal((ncase, 3, 2, 2))
    kw = dict(loss_steps=[4, 14], activation="sigmoid")
    loss, grads, pred = bptt(cell, layers, readout, x, y, parallel=2, return_outputs=True, **kw)
    for i in range(ncase):
        ro = {"weight": readout["weight"][i], "bias": readout["bias"]}
        li, gi, pi = bptt(cell, per[i], ro, x[i], y[i], parallel=False, return_outputs=True, **kw)
        assert li[0] == loss[i] and np.array_equal(pi[0], pred[i])
        for l in range(2):
            for key, g in gi["layers"][l].items():
                assert np.array_equal(g[0], grads["layers"][l][key][i]), (i, l, key)
        for key, g in gi["readout"].items():
            assert np.array_equal(g[0], grads["readout"][key][i]), (i, key)


def test_a_long_sequence_stays_exact_or_is_recorded_as_nan():
    """2000 steps of a tanh RNN with spectral radius 1.5: the gradient stays finite and equals
    autograd's; the same weights with the identity activation overflow (1.5^2000 > 1e352), and
    the loss and gradient are recorded as NaN, nothing raises."""
    rng = np.random.default_rng(31)
    H, steps = 32, 2000
    W = rng.standard_normal((H, H))
    W *= 1.5 / np.max(np.abs(np.linalg.eigvals(W)))
    layers = [{"weight_ih": rng.standard_normal((H, 1)), "weight_hh": W}]
    readout = {"weight": rng.standard_normal((1, H)) / np.sqrt(H)}
    x = rng.standard_normal((BATCH, steps, 1))
    y = rng.standard_normal((BATCH, 1, 1))
    module = torch.nn.RNN(1, H, batch_first=True, bias=False).double()
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(layers[0]["weight_ih"]))
        module.weight_hh_l0.copy_(torch.tensor(W))
    out, _ = module(torch.tensor(x))
    w_out = torch.tensor(readout["weight"])
    want = _torch_loss(out, w_out, torch.zeros(1, dtype=torch.float64), y, "mse", [steps - 1])
    want.backward()
    loss, grads = bptt("rnn", layers, readout, x, y, loss_steps=[steps - 1])
    _close(loss, [want.item()])
    for key in ("weight_ih", "weight_hh"):
        _close(grads["layers"][0][key][0], getattr(module, f"{key}_l0").grad.numpy(), what=key)
    loss, grads = bptt("rnn", layers, readout, x, y, loss_steps=[steps - 1], activation="identity")
    assert np.isnan(loss).all()
    assert np.isnan(grads["layers"][0]["weight_hh"]).all()


def test_a_long_lstm_sequence_equals_torch():
    """2000 steps of an nn.LSTM (contracting: the gradient stays finite and exact)."""
    torch.manual_seed(41)
    module = torch.nn.LSTM(I, 8, batch_first=True).double()
    lin = torch.nn.Linear(8, 2).double()
    rng = np.random.default_rng(42)
    x = rng.standard_normal((BATCH, 2000, I))
    y = rng.standard_normal((BATCH, 2, 2))
    out, _ = module(torch.tensor(x))
    want = _torch_loss(out, lin.weight, lin.bias, y, "mse", [0, 1999])
    want.backward()
    _, layers = state_dict_layers(module.state_dict())
    readout = {"weight": lin.weight.detach().numpy(), "bias": lin.bias.detach().numpy()}
    value, grads = bptt("lstm", layers, readout, x, y, loss_steps=[0, 1999])
    _close(value, [want.item()])
    for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        _close(grads["layers"][0][key][0], getattr(module, f"{key}_l0").grad.numpy(), what=key)


def test_float32_is_within_1e_4_of_float64():
    layers = init_layers("lstm", 32, 2, input_size=I, seed=51)
    rng = np.random.default_rng(52)
    readout = {"weight": rng.standard_normal((O, 32)) / 6, "bias": rng.standard_normal(O)}
    x = rng.standard_normal((BATCH, STEPS, I))
    y = rng.standard_normal((BATCH, STEPS, O))
    l64, g64 = bptt("lstm", layers, readout, x, y)
    l32, g32 = bptt("lstm", layers, readout, x, y, dtype="float32")
    assert l32.dtype == np.float64 and l32 == pytest.approx(l64, rel=1e-5)
    for l in range(2):
        for key, g in g64["layers"][l].items():
            _close(g32["layers"][l][key], g, rtol=1e-4, what=key)
    for key, g in g64["readout"].items():
        _close(g32["readout"][key], g, rtol=1e-4, what=key)


def test_nan_weights_give_nan_and_cec_needs_no_recurrent_weight():
    layers, readout, x, y = _small_problem("gru", 61)
    layers[1]["weight_hh"][0, 0] = np.nan
    loss, grads = bptt("gru", layers, readout, x, y, loss="cross_entropy")
    assert np.isnan(loss).all() and np.isnan(grads["readout"]["weight"]).all()
    cec = [{"weight_ih": np.ones((4, 2))}]
    loss, grads = bptt("cec", cec, {"weight": np.ones((1, 4))}, x, np.zeros((2, 20, 1)))
    assert np.isfinite(loss).all() and set(grads["layers"][0]) == {"weight_ih"}
    assert set(grads["readout"]) == {"weight"}


def _refused(match, cell="lstm", **changes):
    layers, readout, x, y = _small_problem("lstm", 71)
    args = dict(layers=layers, readout=readout, inputs=x, targets=y, loss="cross_entropy")
    args.update(changes)
    with pytest.raises(ValueError, match=match) as info:
        bptt(cell, **args)
    assert "\n" not in str(info.value)


def test_refusals_name_the_argument():
    layers, _, x, y = _small_problem("lstm", 71)
    _refused("unknown cell", cell="transformer")
    _refused("loss must be one of", loss="hinge")
    _refused("unknown variant", variant="XYZ")
    _refused("is an LSTM variant", cell="gru", variant="CIFG")
    _refused("dtype must be", dtype="float16")
    _refused("activation", activation="softplus")
    _refused("parallel", parallel=0)
    _refused("layers must be a non-empty list", layers=[])
    _refused("layers must be a non-empty list", layers=layers[0])
    _refused(r"layers\[1\] has no 'weight_hh'", layers=[layers[0], {"weight_ih": np.ones((16, 4))}])
    _refused("unknown key", layers=[{**layers[0], "weight_xx": 1.0}])
    gru = [{**init_layers("gru", 4, 1, input_size=2)[0], "weight_peephole": np.ones((3, 4))}]
    _refused("is an LSTM weight", cell="gru", layers=gru)
    bad = [{**layers[0], "weight_hh": np.ones((16, 5))}, layers[1]]
    _refused(r"layers\[0\]\['weight_hh'\] has shape \(16, 5\)", layers=bad)
    _refused(r"layers\[1\] has no 'weight_gate'", variant="FGR",
             layers=[{**layers[0], "weight_gate": np.zeros((12, 12))}, layers[1]])  # fmt: skip
    stacked = [{k: np.stack([v, v]) for k, v in w.items()} for w in layers]
    _refused("inputs has 3 cases but", layers=stacked, inputs=np.stack([x, x, x]))
    _refused("readout must be a mapping", readout=np.ones((3, 4)))
    _refused(r"readout\['weight'\] has shape \(3, 5\)", readout={"weight": np.ones((3, 5))})
    _refused("inputs has shape", inputs=x[..., :1])
    _refused("inputs has shape", inputs=x[0])
    _refused("targets has shape", targets=y[:, :5])
    _refused("targets must be integer class indices", targets=y.astype(float))
    _refused(r"class indices in .*: they must lie in \[0, O - 1 = 2\]", targets=y + 1)
    _refused("class indices", targets=y - 1)
    _refused("targets has shape", loss="mse", targets=np.zeros((2, 20, 4)))
    _refused(r"loss_steps must lie in \[0, steps - 1 = 19\]", loss_steps=[3, 20])
    _refused("loss_steps must lie", loss_steps=[-1])
    _refused("strictly increasing", loss_steps=[3, 3])
    _refused("non-empty 1-D sequence of integers", loss_steps=[])
    _refused("non-empty 1-D sequence of integers", loss_steps=[1.5])
    _refused("weight_ih.*must be an array of numbers", layers=[{**layers[0], "weight_ih": "a"}])


def test_one_kernel_per_cell():
    assert set(KERNELS) == {"rnn", "lstm", "gru", "cec"}
