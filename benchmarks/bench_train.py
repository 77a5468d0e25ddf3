"""Benchmark: training many LSTMs on the adding problem, rnnlab's train against PyTorch (CPU).

    python benchmarks/bench_train.py                  # 256 LSTMs, H = 32, T = 100, batch 20
    python benchmarks/bench_train.py --models 32 --updates 4   # a smoke run

Every model is its own network (rnnlab's ``init_network`` of its seed, copied into PyTorch)
trained on its own batches of the adding problem (Le et al.'s convention, T steps, batch 20,
MSE at the last step) with Adam (learning rate 0.01) and the gradient norm clipped at 1 over
all of its parameters (Pascanu et al.'s rule). Timed in one process, in float64 (rnnlab's
precision) and, for PyTorch, also float32:

- rnnlab: one :func:`rnnlab.engine.train.train` call for every model (its own data made
  inside the kernel, cases on all cores);
- PyTorch, a loop over models: ``nn.LSTM`` + ``nn.Linear`` + ``torch.optim.Adam`` per model,
  ``clip_grad_norm_``, PyTorch's fused CPU LSTM on all cores;
- PyTorch, batched: the models stacked into one hand-written LSTM (weights (models, 4H, H),
  ``torch.bmm`` per step), one ``backward``, per-model norms for the clipping, one Adam over
  the stacked tensors (Adam is elementwise: the same as one Adam per model);
- PyTorch, ``torch.func.vmap`` of one ``nn.LSTM``'s loss gradient over the stacked
  parameters, the same clipping and Adam.

PyTorch's batches are made before its clock starts (rnnlab's are made inside its timing).
The time per update is the difference of two runs (``--updates`` and twice as many) over
``--updates``, so set-up and rnnlab's final evaluation drop out, measured ``--repeat``
times (the range is printed; the ratios and ``1000 updates`` use the fastest). After the
runs, every way's loss history and trained ``weight_hh`` are compared
with rnnlab's (float64: the same arithmetic up to rounding).
"""

from __future__ import annotations

import os
import platform
import time

import numba
import numpy as np
import torch
from bench_bptt import batched_losses, problem_arguments  # run as a script, or from benchmarks/

from rnnlab.engine.tasks import task_batch
from rnnlab.engine.train import init_network, train

LR, THR = 0.01, 1.0


def rnnlab_run(seeds, H, T, B, updates):
    """(seconds, losses (models, updates), trained weight_hh (models, 4H, H))."""
    t0 = time.perf_counter()
    res = train("lstm", "adding", seeds=seeds, hidden=H, length=T, batch=B, updates=updates,
                optimizer="adam", learning_rate=LR, clip="norm", clip_threshold=THR,
                records=np.arange(updates), eval_batch=1, keep_weights=True)  # fmt: skip
    return time.perf_counter() - t0, res["loss"], res["layers"][0]["weight_hh"]


def start_weights(seeds, H):
    """Every model's starting weights, as rnnlab's train draws them."""
    return [init_network("lstm", H, 1, 2, 1, seed=int(s)) for s in seeds]


def data(seeds, T, B, updates, dtype):
    """Every update's (inputs (models, B, T, 2), targets (models, B, 1, 1)) as tensors."""
    return [tuple(torch.from_numpy(a).to(dtype) for a in task_batch("adding", T, seeds, k, B))
            for k in range(updates)]  # fmt: skip


def torch_loop(nets, batches, H, dtype):
    """One nn.LSTM, nn.Linear and Adam per model, model after model in every update."""
    models = []
    for layers, readout in nets:
        lstm, lin = torch.nn.LSTM(2, H, batch_first=True, dtype=dtype), torch.nn.Linear(H, 1)
        lin = lin.to(dtype)
        with torch.no_grad():
            for k, v in layers[0].items():
                getattr(lstm, f"{k}_l0").copy_(torch.from_numpy(v))
            lin.weight.copy_(torch.from_numpy(readout["weight"]))
            lin.bias.copy_(torch.from_numpy(readout["bias"]))
        params = [*lstm.parameters(), *lin.parameters()]
        models.append((lstm, lin, params, torch.optim.Adam(params, lr=LR)))
    losses = np.zeros((len(nets), len(batches)))
    t0 = time.perf_counter()
    for u, (x, y) in enumerate(batches):
        for k, (lstm, lin, params, opt) in enumerate(models):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(lin(lstm(x[k])[0][:, -1:]), y[k])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, THR)
            opt.step()
            losses[k, u] = loss.item()
    seconds = time.perf_counter() - t0
    return seconds, losses, torch.stack([m[0].weight_hh_l0.detach() for m in models])


def _stacked(nets, dtype):
    """Every model's parameters stacked on a leading axis, as leaf tensors."""
    rows = [{**{f"{k}_l0": v for k, v in layers[0].items()}, **readout} for layers, readout in nets]
    return {k: torch.from_numpy(np.stack([r[k] for r in rows])).to(dtype).requires_grad_(True)
            for k in rows[0]}  # fmt: skip


def _clip_per_model(grads):
    """Pascanu et al.'s rule per model, on gradients with a leading model axis."""
    norm = torch.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in grads))
    scale = torch.clamp(THR / norm, max=1.0)
    for g in grads:
        g *= scale.reshape((-1,) + (1,) * (g.ndim - 1))


def torch_batched(nets, batches, H, dtype):
    """Every model at once: stacked weights, bmm per step, per-model clipping, one Adam."""
    p = _stacked(nets, dtype)
    opt = torch.optim.Adam(list(p.values()), lr=LR)
    losses = np.zeros((len(nets), len(batches)))
    t0 = time.perf_counter()
    for u, (x, y) in enumerate(batches):
        opt.zero_grad(set_to_none=True)
        loss = batched_losses(p, x, y)
        loss.sum().backward()  # each model's loss depends on its own weights only
        with torch.no_grad():
            _clip_per_model([g.grad for g in p.values()])
        opt.step()
        losses[:, u] = loss.detach().numpy()
    return time.perf_counter() - t0, losses, p["weight_hh_l0"].detach()


def torch_vmap(nets, batches, H, dtype):
    """torch.func: vmap of one nn.LSTM's loss gradient over the stacked parameters, then
    per-model clipping and one Adam (PyTorch falls back to a loop for its fused LSTM)."""
    import warnings

    from torch.func import functional_call, grad_and_value, vmap

    lstm = torch.nn.LSTM(2, H, batch_first=True, dtype=dtype)
    lin = torch.nn.Linear(H, 1, dtype=dtype)

    def one(q, x, y):
        out = functional_call(lstm, {k: v for k, v in q.items() if k.endswith("_l0")}, (x,))[0]
        yh = functional_call(lin, {"weight": q["weight"], "bias": q["bias"]}, (out[:, -1:],))
        return torch.nn.functional.mse_loss(yh, y)  # fmt: skip

    p = _stacked(nets, dtype)
    opt = torch.optim.Adam(list(p.values()), lr=LR)
    step = vmap(grad_and_value(one))
    losses = np.zeros((len(nets), len(batches)))
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # "no batching rule": it loops over the models
        warnings.simplefilter("ignore", UserWarning)
        for u, (x, y) in enumerate(batches):
            g, loss = step({k: v.detach() for k, v in p.items()}, x, y)
            _clip_per_model(list(g.values()))
            for k, v in p.items():
                v.grad = g[k]
            opt.step()
            losses[:, u] = loss.numpy()
    return time.perf_counter() - t0, losses, p["weight_hh_l0"].detach()


def per_update(run, updates, repeat):
    """Seconds per update, each the difference of runs of ``updates`` and ``2 updates``
    over ``updates`` (after a warm-up run), ``repeat`` times; and the last longer run's
    (losses, weight_hh)."""
    run(1)
    times = []
    for _ in range(repeat):
        t1 = run(updates)[0]
        t2, losses, whh = run(2 * updates)
        times.append((t2 - t1) / updates)
    return times, losses, whh


def _diff(ref, losses, whh) -> str:
    el = np.nanmax(np.abs(losses - ref[0]) / np.abs(ref[0]))
    w = np.asarray(whh.double() if hasattr(whh, "double") else whh)
    return f"losses {el:.0e}, W_hh {np.max(np.abs(w - ref[1])) / np.max(np.abs(ref[1])):.0e}"


#: The PyTorch ways, in the order printed.
WAYS = (("torch loop over models", torch_loop), ("torch batched (bmm)", torch_batched),
        ("torch vmap(nn.LSTM)", torch_vmap))  # fmt: skip


def torch_ways(seeds, H, T, B, updates, repeat):
    """(dtype, way, seconds per update (``repeat`` of them), losses, trained weight_hh) of
    every PyTorch way, in float64 then float32."""
    nets = start_weights(seeds, H)
    for dtype in (torch.float64, torch.float32):
        batches = data(seeds, T, B, 2 * updates, dtype)
        for name, way in WAYS:

            def run(u, w=way, b=batches, dt=dtype):
                return w(nets, b[:u], H, dt)

            yield (str(dtype).removeprefix("torch."), name, *per_update(run, updates, repeat))


def main(argv=None) -> None:
    ap = problem_arguments(__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=10, help="timed: this many and twice")
    ap.add_argument("--repeat", type=int, default=2, help="timings of each way")
    args = ap.parse_args(argv)
    M, H, B, T, U = args.models, args.hidden, args.batch, args.steps, args.updates
    seeds = np.arange(M)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numba "
        f"{numba.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(f"{M} LSTMs, H = {H}, adding problem T = {T}, batch {B}, Adam {LR}, norm clip {THR}")
    rnnlab_run(seeds[:2], H, 5, 2, 2)  # compile outside the timing
    s, loss, whh = per_update(lambda u: rnnlab_run(seeds, H, T, B, u), U, args.repeat)
    ref = (loss, whh)
    rows = [("float64", "rnnlab train", s, "")]
    for dt, name, s, loss, whh in torch_ways(seeds, H, T, B, U, args.repeat):
        rows.append((dt, name, s, _diff(ref, loss, whh)))
    ours = min(rows[0][2])
    print(
        f"{'dtype':8s} {'method':24s} {'s/update':>15s} {'1000 updates':>13s} "
        f"{'vs rnnlab':>10s}  max rel. diff from rnnlab (losses, W_hh)"
    )
    for dt, name, s, d in rows:
        span = f"{min(s):.3f}-{max(s):.3f}"
        print(
            f"{dt:8s} {name:24s} {span:>15s} {1000 * min(s) / 60:9.1f} min "
            f"{min(s) / ours:9.1f}x  {d}"
        )


if __name__ == "__main__":
    main()
