"""Benchmark: the LSTM engine against a vectorised NumPy implementation, side by side.

    python benchmarks/bench_lstm.py            # issue #4's size: H = 64, 4096 cases x 1000 steps
    python benchmarks/bench_lstm.py --quick    # 256 cases x 200 steps, for a smoke run

Both sides compute the same thing for single-layer PyTorch-style LSTMs (no peepholes), impulse
input: the run, the run without the input at t = 0, and the exact Jacobian product
ds(t)/ds(0) (s = (h, c), 2H x 2H per case: the h-columns and the c-columns renormalised every
step) with the spectral norms of its hh and cc blocks at 100 log-spaced steps. NumPy is
``rnnlab.engine.reference_network.lstm_numpy_vectorised``: every array op across a chunk of
cases (batched BLAS for the products), chunks sized for the cache (the fastest we found:
whole-batch arrays of 1 GB are slower). The engine's compilation is not timed. Each case has
its own weights (PyTorch's default initialisation, seeded).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from rnnlab.engine import init_layers, record_steps, simulate_network
from rnnlab.engine.reference_network import lstm_numpy_vectorised


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def weights(ncase: int, H: int):
    per_case = [init_layers("lstm", H, 1, seed=s)[0] for s in range(ncase)]
    return {k: np.stack([w[k] for w in per_case]) for k in per_case[0]}


def numpy_chunked(w, steps, rec, chunk):
    parts = []
    for s in range(0, w["weight_hh"].shape[0], chunk):
        sl = slice(s, s + chunk)
        parts.append(
            lstm_numpy_vectorised(
                w["weight_ih"][sl, :, 0],
                w["weight_hh"][sl],
                w["bias_ih"][sl] + w["bias_hh"][sl],
                steps,
                rec,
            )
        )
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 cases x 200 steps")
    ap.add_argument("--cases", type=int, help="number of cases (default 4096)")
    ap.add_argument("--chunk", type=int, default=64, help="NumPy cases per chunk")
    args = ap.parse_args(argv)
    H = 64
    ncase, steps = (256, 200) if args.quick else (4096, 1000)
    ncase = args.cases or ncase
    rec = record_steps(steps, "log", 100)
    w = weights(ncase, H)
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}")  # fmt: skip
    print(f"LSTM H = {H}, {ncase} cases x {steps} steps, exact gradient norms (2H x 2H product)")
    small = {k: v[:2] for k, v in w.items()}
    simulate_network("lstm", [small], steps=5)  # compile outside the timing
    eng, t_eng = _timed(lambda: simulate_network("lstm", [w], steps=steps, record=rec))
    ref, t_np = _timed(lambda: numpy_chunked(w, steps, rec, args.chunk))
    flops = ncase * steps * 2 * (4 * H) * H * (2 * H)
    print(f"engine : {t_eng:8.1f} s   ({flops / t_eng / 1e9:5.1f} GFLOP/s in the Jacobian product)")
    print(f"NumPy  : {t_np:8.1f} s   (chunks of {args.chunk} cases)")
    print(f"ratio  : engine {t_np / t_eng:.1f}x faster")
    for name in ("state_norm", "response", "log10_gradient_norm", "log10_cell_gradient_norm"):
        a, b = eng[name], ref[name]
        ok = np.isfinite(a) & np.isfinite(b)
        if name.startswith("log10"):
            err = np.abs(a[ok] - b[ok])
            what = "abs. diff of log10"
        else:  # relative to the state norm (the response is a difference of two states)
            scale = np.broadcast_to(np.nanmax(ref["state_norm"], axis=1, keepdims=True), a.shape)
            err = np.abs(a[ok] - b[ok]) / scale[ok]
            what = "diff / max state norm"
        print(f"  {name:26s} max {what} {err.max():.1e}, median {np.median(err):.1e}")


if __name__ == "__main__":
    main()
