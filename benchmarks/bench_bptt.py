"""Benchmark: the loss and exact gradient of many LSTMs, rnnlab's bptt against PyTorch (CPU).

    python benchmarks/bench_bptt.py                  # 256 LSTMs, H = 32, batch 20, 100 steps
    python benchmarks/bench_bptt.py --models 64      # fewer models, for a smoke run

Every model has its own weights (PyTorch's default initialisation, seeded) and its own batch
of the adding problem (2 channels: a value uniform in [0, 1] and a marker that is 1 at two
random steps, one in each half; the target is the sum of the two marked values), MSE at the
last step through a linear readout (O = 1). Timed, in one process, each in float64 and
float32, compilation and warm-up excluded, best of ``--repeat`` runs:

- rnnlab: one call of :func:`rnnlab.engine.bptt` for every model (cases on all cores);
- PyTorch, a loop over models: ``nn.LSTM`` + ``nn.Linear``, forward, ``mse_loss``,
  ``backward`` (PyTorch's fused CPU LSTM, its intra-op threads on all cores);
- PyTorch, batched: the models stacked into one hand-written batched LSTM (weights
  (models, 4H, H), ``torch.bmm`` per step), one forward and one ``backward`` for all of them;
- PyTorch, ``torch.func.vmap`` of ``functional_call`` over the stacked ``nn.LSTM``
  parameters, if PyTorch can batch its LSTM (reported as unavailable otherwise).

The loss and gradients of every way are compared with rnnlab's (float64).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numba
import numpy as np
import torch

from rnnlab.engine import bptt, state_dict_layers


def adding_problem(models: int, batch: int, steps: int, seed: int = 0):
    """Inputs (models, batch, steps, 2) and targets (models, batch, 1, 1)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((models, batch, steps, 2))
    x[..., 0] = rng.uniform(0.0, 1.0, (models, batch, steps))
    half = steps // 2
    a = rng.integers(0, half, (models, batch))
    b = rng.integers(half, steps, (models, batch))
    m, s = np.meshgrid(np.arange(models), np.arange(batch), indexing="ij")
    x[m, s, a, 1] = 1.0
    x[m, s, b, 1] = 1.0
    y = x[m, s, a, 0] + x[m, s, b, 0]
    return x, y[:, :, None, None]


def torch_models(models: int, H: int, dtype):
    """One (nn.LSTM, nn.Linear) pair per model, seeded."""
    out = []
    for k in range(models):
        torch.manual_seed(k)
        out.append((torch.nn.LSTM(2, H, batch_first=True).to(dtype),
                    torch.nn.Linear(H, 1).to(dtype)))  # fmt: skip
    return out


def engine_weights(pairs):
    """The stacked layers and readout of :func:`bptt` (cases axis first)."""
    per = [state_dict_layers(lstm.state_dict())[1][0] for lstm, _ in pairs]
    layers = [{k: np.stack([p[k] for p in per]) for k in per[0]}]
    readout = {
        "weight": np.stack([lin.weight.detach().double().numpy() for _, lin in pairs]),
        "bias": np.stack([lin.bias.detach().double().numpy() for _, lin in pairs]),
    }
    return layers, readout


def torch_loop(pairs, x, y):
    """Loss and gradients model after model; returns (losses, grads of weight_hh_l0)."""
    losses, ghh = [], []
    for k, (lstm, lin) in enumerate(pairs):
        lstm.zero_grad(set_to_none=True)
        lin.zero_grad(set_to_none=True)
        out, _ = lstm(x[k])
        loss = torch.nn.functional.mse_loss(lin(out[:, -1:]), y[k])
        loss.backward()
        losses.append(loss.detach())
        ghh.append(lstm.weight_hh_l0.grad)
    return torch.stack(losses), torch.stack(ghh)


def stacked_params(pairs):
    """The models' parameters stacked on a leading axis, as leaf tensors."""
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    p = {n: torch.stack([getattr(m, n).detach() for m, _ in pairs]) for n in names}
    p["weight"] = torch.stack([lin.weight.detach() for _, lin in pairs])
    p["bias"] = torch.stack([lin.bias.detach() for _, lin in pairs])
    return {k: v.clone().requires_grad_(True) for k, v in p.items()}


def batched_losses(p, x, y):
    """Every model's loss at once: a hand-written LSTM with batched weights (torch.bmm per
    step); ``p`` holds ``weight_ih_l0`` (models, 4H, I) ... and the readout's ``weight``,
    ``bias``."""
    M, B, _, _ = x.shape
    H = p["weight_hh_l0"].shape[2]
    # the input terms of every step at once, time-major (unbind's backward stacks the
    # per-step gradients once, where indexing would add a full-size zero tensor per step)
    ax = torch.einsum("mbti,mgi->tmbg", x, p["weight_ih_l0"])
    ax = ax + (p["bias_ih_l0"] + p["bias_hh_l0"])[None, :, None, :]
    h = x.new_zeros(M, B, H)
    c = x.new_zeros(M, B, H)
    whh_t = p["weight_hh_l0"].transpose(1, 2)
    for axt in ax.unbind(0):
        z = axt + torch.bmm(h, whh_t)
        i, f, g, o = z.split(H, dim=2)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    out = torch.bmm(h, p["weight"].transpose(1, 2)) + p["bias"][:, None, :]
    return ((out - y[:, :, 0]) ** 2).mean(dim=(1, 2))


def torch_batched(p, x, y):
    """Every model's loss and gradients at once (:func:`batched_losses`, one backward)."""
    losses = batched_losses(p, x, y)
    losses.sum().backward()  # each model's loss depends on its own weights only
    return losses.detach(), p["weight_hh_l0"].grad


def torch_vmap(pairs, p, x, y):
    """torch.func.vmap of the per-model loss's gradient over the stacked parameters."""
    lstm, lin = pairs[0]
    from torch.func import functional_call, grad_and_value, vmap

    def one(params, xb, yb):
        out, _ = functional_call(lstm, {k: params[k] for k in params if k.endswith("l0")}, (xb,))
        yh = functional_call(lin, {"weight": params["weight"], "bias": params["bias"]},
                             (out[:, -1:],))  # fmt: skip
        return torch.nn.functional.mse_loss(yh, yb)

    params = {k: v.detach() for k, v in p.items()}
    with warnings.catch_warnings():  # "not yet implemented the batching rule": it loops
        warnings.simplefilter("ignore", UserWarning)
        g, loss = vmap(grad_and_value(one))(params, x, y)
    return loss, g["weight_hh_l0"]


def best(f, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def _err(ref, loss, ghh) -> str:
    """Largest relative difference of a way's losses and dW_hh from rnnlab's float64."""
    if loss is None:
        return ""
    el = np.max(np.abs(np.asarray(loss, np.float64) - ref[0]) / np.abs(ref[0]))
    g = np.asarray(ghh.detach().double() if hasattr(ghh, "detach") else ghh)
    eg = np.max(np.abs(g - ref[1])) / np.max(np.abs(ref[1]))
    return f"loss {el:.0e}, dW_hh {eg:.0e}"


def run_dtype(dtype, xn, yn, H, repeat, ref):
    """The four ways in one precision: rows (dtype, method, seconds, error), and rnnlab's
    (losses, dW_hh) for the comparisons."""
    name = str(dtype).removeprefix("torch.")
    M, T = xn.shape[0], xn.shape[2]
    pairs = torch_models(M, H, dtype)
    layers, readout = engine_weights(pairs)
    bptt("lstm", [{k: v[:2] for k, v in layers[0].items()}],
         {k: v[:2] for k, v in readout.items()}, xn[:2, :, :5], yn[:2],
         loss_steps=[4], dtype=name)  # compile outside the timing  # fmt: skip
    (loss_e, g_e), t_e = best(
        lambda: bptt("lstm", layers, readout, xn, yn, loss_steps=[T - 1], dtype=name), repeat
    )
    ghh_e = g_e["layers"][0]["weight_hh"]
    ref = ref or (loss_e, ghh_e)
    x, y = torch.tensor(xn, dtype=dtype), torch.tensor(yn, dtype=dtype)
    torch_loop(pairs[:2], x, y)  # warm-up
    (loss_l, g_l), t_l = best(lambda: torch_loop(pairs, x, y), repeat)
    torch_batched(stacked_params(pairs), x, y)
    (loss_b, g_b), t_b = best(lambda: torch_batched(stacked_params(pairs), x, y), repeat)
    try:
        torch_vmap(pairs, stacked_params(pairs[:2]), x[:2], y[:2])
        (loss_v, g_v), t_v = best(lambda: torch_vmap(pairs, stacked_params(pairs), x, y), repeat)
    except Exception as e:  # vmap has no batching rule for some ops
        loss_v, g_v, t_v = None, None, f"unavailable ({type(e).__name__}: {str(e)[:60]})"
    rows = [
        (name, "rnnlab bptt", t_e, _err(ref, loss_e, ghh_e)),
        (name, "torch loop over models", t_l, _err(ref, loss_l, g_l)),
        (name, "torch batched (bmm)", t_b, _err(ref, loss_b, g_b)),
        (name, "torch vmap(nn.LSTM)", t_v, _err(ref, loss_v, g_v)),
    ]
    return rows, ref


def problem_arguments(description: str) -> argparse.ArgumentParser:
    """The command line of the LSTM benchmarks: how many models, their size, the batch and
    the sequence length (256 LSTMs, H = 32, batch 20, 100 steps by default)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--models", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    return ap


def main(argv=None) -> None:
    ap = problem_arguments(__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    M, H, B, T = args.models, args.hidden, args.batch, args.steps
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores, numba {numba.__version__}, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads)")  # fmt: skip
    print(f"{M} LSTMs, H = {H}, batch {B}, {T} steps, adding problem (I = 2), MSE at the "
          "last step: loss + every gradient")  # fmt: skip
    xn, yn = adding_problem(M, B, T)
    rows, ref = [], None
    for dtype in (torch.float64, torch.float32):
        more, ref = run_dtype(dtype, xn, yn, H, args.repeat, ref)
        rows += more
    print(f"{'dtype':8s} {'method':24s} {'seconds':>9s} {'vs rnnlab':>10s}  max rel. diff")
    t_ours = {}
    for name, method, t, e in rows:
        if method == "rnnlab bptt":
            t_ours[name] = t
        if isinstance(t, str):
            print(f"{name:8s} {method:24s} {t}")
            continue
        print(f"{name:8s} {method:24s} {t:9.3f} {t / t_ours[name]:9.1f}x  {e}")


if __name__ == "__main__":
    main()
