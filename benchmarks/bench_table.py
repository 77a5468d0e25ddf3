"""One side-by-side table per workload: rnnlab, NumPy, PyTorch and JAX in one run.

    python benchmarks/bench_table.py              # this CPU's own instruction set
    python benchmarks/bench_table.py --isa avx2   # the same machine held to AVX2
    python benchmarks/bench_table.py --quick      # smaller problems, for a smoke run
    python benchmarks/bench_table.py --only lstm  # one table: scalar, vector, lstm, train, sweep

The run prints the CPU's model, the instruction set and every side's version first. Under
``--isa avx2`` only the kernels' tables (scalar, vector, LSTM) run.

The scalar rows: h(t) = tanh(w h(t-1) + c x(t) + b), 2^20 cases x 1000 steps, an
impulse input, w uniform in [-2, 2] (one case per w); Gsteps/s = cases x steps / seconds, the
best of three runs after a warm-up (compilation not timed), all cores. Rows:

- state only: the recursion alone (rnnlab ``outputs=["state"]``, JAX ``lax.fori_loop``,
  NumPy a loop over steps of vectorised ``np.tanh``), float64 and float32;
- every tracker: the run without the input, the gradient product w f'(z) and the memory,
  saturation and blow-up trackers (rnnlab's default summaries;
  ``rnnlab.engine.reference.rnn_numpy_vectorised``, float64 only; the same loop in JAX),
  float64 and float32.

``--isa avx2`` runs the script again with every side held to AVX2 (Numba: ``NUMBA_CPU_NAME``
haswell and its features; XLA: ``--xla_cpu_max_isa=AVX2``; NumPy:
``NPY_DISABLE_CPU_FEATURES`` of its AVX-512 kernels; BLAS: ``OPENBLAS_CORETYPE`` Haswell, MKL
and oneDNN to AVX2), so that one AVX-512 machine measures both. JAX is timed if installed
(``pip install -e .[bench]``), PyTorch if installed (the test extra).

The vector rows: h(t) = tanh(W h(t-1) + C x(t) + b) with n = 16, 64, 256, each case its own
Gaussian W (spectral radius about 0.9), forward only (rnnlab ``outputs=["state_norm"]``) and
with the exact Jacobian product M <- diag(f'(z)) W M (rnnlab ``gradient="exact"``; the peers
rescale M every step); GFLOP/s counts 2 n^2 flops per case-step forward and 2 n^3 more with
the gradient, against NumPy's float64 DGEMM on all cores (the practical peak).

The LSTM rows: single-layer LSTMs (PyTorch's initialisation, each case its own weights), one
impulse x(0) = 1, H = 32 and 128, forward only and with the exact Jacobian product of
s = (h, c) (2H x 2H); the peers run :func:`lstm_step`, the closed-form Jacobian blocks with
one batched product W_hh M per step (checked against rnnlab's to rounding). GFLOP/s counts
8 H^2 per case-step forward and 16 H^3 more with the gradient.

The training rows: benchmarks/bench_train.py's problem (many LSTMs on the adding problem,
Adam, norm clipping), seconds per update of rnnlab's ``train`` and of three PyTorch ways in
float64 and float32. The sweep rows: benchmarks/bench_sweep.py's grid through the embedded
Dask cluster into Zarr against the engine called directly.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling bench_rnn

AVX2_NUMBA = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fsgsbase,+fxsr,+lzcnt,+mmx,"
    "+movbe,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt,"
    "-avx512f,-avx512dq,-avx512vl,-avx512bw,-avx512cd"
)
AVX2_ENV = {
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": AVX2_NUMBA,
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL "
    "AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's BLAS
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # PyTorch's
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "RNNLAB_BENCH_ISA": "avx2",
}


#: The tables, in the order printed.
SECTIONS = ("scalar", "vector", "lstm", "train", "sweep")


def _best(f, repeats: int = 3) -> float:
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def _cpu() -> str:
    """The CPU's model and the vector extensions it has (from /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model in ("", platform.machine()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512dq", "avx512vl") if f in flags]
    return f"{model} ({os.cpu_count()} CPUs; {', '.join(isa) or 'ISA unknown'})"


def rnnlab_rows(w, steps):
    from rnnlab.engine import simulate_rnn

    kw = dict(activation="tanh", steps=steps, record=[steps - 1])
    rows = {}
    for dtype in ("float64", "float32"):
        rows[("state", dtype)] = _best(
            lambda d=dtype: simulate_rnn(w, **kw, outputs=["state"], dtype=d)
        )
    for dtype in ("float64", "float32"):
        rows[("trackers", dtype)] = _best(
            lambda d=dtype: simulate_rnn(w, **kw, weight_norms=False, dtype=d)
        )
    return rows


def numpy_rows(w, steps):
    import numpy as np

    from rnnlab.engine.reference import rnn_numpy_vectorised

    def state(dtype):
        ww = w.astype(dtype)
        h = np.zeros_like(ww)
        for t in range(steps):
            h = np.tanh(ww * h + (1.0 if t == 0 else 0.0))
        return h

    rows = {("state", d): _best(lambda d=d: state(d), repeats=1) for d in ("float64", "float32")}
    ones, zeros = np.ones_like(w), np.zeros_like(w)
    rows[("trackers", "float64")] = _best(
        lambda: rnn_numpy_vectorised(w, ones, zeros, "tanh", steps, record=np.array([steps - 1])),
        repeats=1,
    )
    return rows


def jax_rows(w, steps):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    jax.config.update("jax_enable_x64", True)
    from bench_rnn import _bench_jax_scalar

    def state(dtype):
        ww = jnp.asarray(w, dtype=dtype)

        @jax.jit
        def run(ww):
            def body(t, h):
                return jnp.tanh(ww * h + jnp.where(t == 0, 1.0, 0.0).astype(dtype))

            return jax.lax.fori_loop(0, steps, body, jnp.zeros_like(ww))

        return _best(lambda: jax.block_until_ready(run(ww)))

    import numpy as np

    rows = {("state", d): state(d) for d in ("float64", "float32")}
    ones, zeros = np.ones_like(w), np.zeros_like(w)
    for d in ("float64", "float32"):
        wd, od, zd = (a.astype(d) for a in (w, ones, zeros))
        rows[("trackers", d)] = min(_bench_jax_scalar(wd, od, zd, steps) for _ in range(2))
    return rows


def table(ncase: int, steps: int) -> str:
    import numpy as np

    w = np.random.default_rng(0).uniform(-2.0, 2.0, ncase)
    sides = {"rnnlab": rnnlab_rows(w, steps), "NumPy": numpy_rows(w, steps),
             "JAX": jax_rows(w, steps)}  # fmt: skip
    out = [f"scalar tanh, {ncase} cases x {steps} steps, Gsteps/s (best of 3)", "",
           "| work | dtype | rnnlab | NumPy | JAX | rnnlab / best peer |",
           "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for key in sides["rnnlab"]:
        rate = {s: ncase * steps / rows[key] / 1e9 for s, rows in sides.items() if key in rows}
        peer = max(v for s, v in rate.items() if s != "rnnlab")
        cells = [f"{rate[s]:.3f}" if s in rate else "-" for s in ("rnnlab", "NumPy", "JAX")]
        out.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells)
                   + f" | **{rate['rnnlab'] / peer:.2f}x** |")  # fmt: skip
    return "\n".join(out)


#: The vector rows: (n, cases, steps), about the same work per gradient row.
VECTOR_SIZES = ((16, 8192, 1000), (64, 512, 500), (256, 32, 200))


def vector_inputs(n: int, ncase: int):
    """W (cases, n, n) Gaussian with spectral radius about 0.9, C and b (cases, n)."""
    import numpy as np

    rng = np.random.default_rng(n)
    W = rng.normal(0.0, 0.9 / np.sqrt(n), (ncase, n, n))
    return W, np.full((ncase, n), 1.0 / np.sqrt(n)), np.zeros((ncase, n))


def vector_rows(n: int, ncase: int, steps: int) -> dict:
    """Seconds of each side for (n, "state") and (n, "gradient"): the recursion forward, and
    with the exact Jacobian product M <- diag(f'(z)) W M, rescaled each step."""
    import numpy as np

    from rnnlab.engine import simulate_rnn

    W, C, b = vector_inputs(n, ncase)
    kw = dict(activation="tanh", steps=steps, record=[steps - 1], weight_norms=False)
    out = {"rnnlab": {
        "state": _best(lambda: simulate_rnn(W, C, b, **kw, outputs=["state_norm"]), 2),
        "gradient": _best(lambda: simulate_rnn(W, C, b, **kw, gradient="exact",
                                               outputs=["log10_gradient_norm"]), 2)}}  # fmt: skip

    def numpy_run(grad):
        h = np.zeros((ncase, n))
        M = np.broadcast_to(np.eye(n), (ncase, n, n)).copy()
        for t in range(steps):
            z = np.matmul(W, h[:, :, None])[:, :, 0] + (C if t == 0 else 0.0) + b
            h = np.tanh(z)
            if grad and t > 0:
                M = (1.0 - h * h)[:, :, None] * np.matmul(W, M)
                M /= np.abs(M).max(axis=(1, 2), keepdims=True)
        return h, M

    out["NumPy"] = {"state": _best(lambda: numpy_run(False), 1),
                    "gradient": _best(lambda: numpy_run(True), 1)}  # fmt: skip
    out["PyTorch"] = _torch_vector(W, C, b, steps)
    out["JAX"] = _jax_vector(W, C, b, steps)
    return {side: {(n, k): v for k, v in rows.items()} for side, rows in out.items() if rows}


def _torch_vector(W, C, b, steps) -> dict:
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(os.cpu_count() or 1)
    Wt, Ct, bt = (torch.from_numpy(a) for a in (W, C, b))
    n = W.shape[1]

    def run(grad):
        with torch.no_grad():
            h = torch.zeros_like(Ct)
            M = torch.eye(n, dtype=Wt.dtype).expand(W.shape[0], n, n).clone()
            for t in range(steps):
                h = torch.tanh(
                    torch.bmm(Wt, h.unsqueeze(2)).squeeze(2) + (Ct if t == 0 else 0) + bt
                )
                if grad and t > 0:
                    M = (1 - h * h).unsqueeze(2) * torch.bmm(Wt, M)
                    M = M / M.abs().amax(dim=(1, 2), keepdim=True)
        return h, M

    return {"state": _best(lambda: run(False), 2), "gradient": _best(lambda: run(True), 2)}


def _jax_vector(W, C, b, steps) -> dict:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    jax.config.update("jax_enable_x64", True)
    n = W.shape[1]
    Wj, Cj, bj = (jnp.asarray(a) for a in (W, C, b))

    def make(grad):
        @jax.jit
        def run(Wj, Cj, bj):
            def body(t, carry):
                h, M = carry
                z = jnp.einsum("cij,cj->ci", Wj, h) + jnp.where(t == 0, 1.0, 0.0) * Cj + bj
                h = jnp.tanh(z)
                if grad:
                    M2 = (1.0 - h * h)[:, :, None] * jnp.einsum("cij,cjk->cik", Wj, M)
                    M2 = M2 / jnp.abs(M2).max(axis=(1, 2), keepdims=True)
                    M = jnp.where(t > 0, M2, M)
                return h, M

            M0 = jnp.broadcast_to(jnp.eye(n), Wj.shape)
            return jax.lax.fori_loop(0, steps, body, (jnp.zeros_like(Cj), M0))

        return lambda: jax.block_until_ready(run(Wj, Cj, bj))

    return {"state": _best(make(False), 2), "gradient": _best(make(True), 2)}


def vector_table(peak: float) -> str:
    """The vector rows: GFLOP/s of each side (2 n^2 per case-step forward, 2 n^3 more with
    the gradient), the ratio to the best peer and rnnlab's share of the DGEMM peak."""
    sides: dict[str, dict] = {}
    work = {}
    for n, ncase, steps in VECTOR_SIZES:
        for side, rows in vector_rows(n, ncase, steps).items():
            sides.setdefault(side, {}).update(rows)
        work[(n, "state")] = 2 * n * n * ncase * steps
        work[(n, "gradient")] = (2 * n**3 + 2 * n * n) * ncase * steps
    return _flops_table("vector tanh, float64", "n", work, sides, peak)


#: The LSTM rows: (H, cases, steps); about the same work per gradient row.
LSTM_SIZES = ((32, 1024, 200), (128, 32, 100))


def lstm_inputs(H: int, ncase: int) -> dict:
    """Every case its own single-layer LSTM (PyTorch's initialisation, seeded), input size 1."""
    import numpy as np

    from rnnlab.engine import init_layers

    per_case = [init_layers("lstm", H, 1, seed=s)[0] for s in range(ncase)]
    return {k: np.stack([w[k] for w in per_case]) for k in per_case[0]}


def lstm_step(xp, sig, Wt, wx, b, xon, h, c, M, grad):
    """One LSTM step of every case (``xp``: NumPy's, PyTorch's or JAX's matmul, tanh,
    concatenate and largest |entry| per case):
    z = W_hh h + w_ih x + b, gates (i, f, g, o), and with ``grad`` the exact Jacobian
    product M <- J M of s = (h, c) (M (cases, 2H, 2H), top rows h, bottom c) from the
    closed-form blocks: dc'/dc = f, dc'/dh = the gate rows of W_hh scaled by c f', g i',
    i g', dh' = o tanh'(c') dc' + tanh(c') o' (W_o rows); then renormalised by its largest
    entry. ``Wt`` is W_hh (cases, 4H, H)."""
    H = h.shape[1]
    z = xp.matmul(Wt, h[:, :, None])[:, :, 0] + xon * wx + b
    i, f, o = sig(z[:, :H]), sig(z[:, H : 2 * H]), sig(z[:, 3 * H :])
    g = xp.tanh(z[:, 2 * H : 3 * H])
    c2 = f * c + i * g
    tc = xp.tanh(c2)
    h2 = o * tc
    if grad:
        G = xp.matmul(Wt, M[:, :H, :])  # (cases, 4H, 2H): W_hh times the h rows of M
        dc = (f[:, :, None] * M[:, H:, :] + (c * f * (1 - f))[:, :, None] * G[:, H : 2 * H]
              + (g * i * (1 - i))[:, :, None] * G[:, :H]
              + (i * (1 - g * g))[:, :, None] * G[:, 2 * H : 3 * H])  # fmt: skip
        dh = (o * (1 - tc * tc))[:, :, None] * dc + (tc * o * (1 - o))[:, :, None] * G[:, 3 * H :]
        M = xp.concatenate([dh, dc], 1)
        M = M / xp.largest(M)[:, None, None]
    return h2, c2, M


class _NumPy:
    """The array functions :func:`lstm_step` calls, for NumPy."""

    import numpy as np

    matmul, tanh, concatenate = np.matmul, np.tanh, np.concatenate

    @staticmethod
    def largest(M):
        return _NumPy.np.abs(M).max(axis=(1, 2))


def lstm_rows(H: int, ncase: int, steps: int) -> dict:
    """Seconds of each side for (H, "state") and (H, "gradient"): the LSTM forward, and with
    the exact Jacobian product of (h, c), one impulse x(0) = 1."""
    import numpy as np

    from rnnlab.engine import simulate_network

    w = lstm_inputs(H, ncase)
    Wt, wx, b = w["weight_hh"], w["weight_ih"][:, :, 0], w["bias_ih"] + w["bias_hh"]

    def ours(**kw):
        last = [steps - 1]
        return _best(lambda: simulate_network("lstm", [w], steps=steps, record=last, **kw), 2)

    out = {"rnnlab": {
        "state": ours(outputs=["state_norm"]),
        "gradient": ours(gradient="exact", outputs=["log10_gradient_norm"]),
    }}  # fmt: skip

    def numpy_run(grad):
        def sig(x):
            return 1.0 / (1.0 + np.exp(-x))

        h, c = np.zeros((ncase, H)), np.zeros((ncase, H))
        M = np.broadcast_to(np.eye(2 * H), (ncase, 2 * H, 2 * H)).copy()
        for t in range(steps):
            h, c, M = lstm_step(_NumPy, sig, Wt, wx, b, float(t == 0), h, c, M, grad and t > 0)
        return h, M

    out["NumPy"] = {"state": _best(lambda: numpy_run(False), 1),
                    "gradient": _best(lambda: numpy_run(True), 1)}  # fmt: skip
    out["PyTorch"] = _torch_lstm(Wt, wx, b, steps)
    out["JAX"] = _jax_lstm(Wt, wx, b, steps)
    return {side: {(H, k): v for k, v in rows.items()} for side, rows in out.items() if rows}


def _torch_lstm(Wt, wx, b, steps) -> dict:
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(os.cpu_count() or 1)
    Wt, wx, b = (torch.from_numpy(a) for a in (Wt, wx, b))
    ncase, H = wx.shape[0], Wt.shape[2]

    class _Torch:  # the array-API names lstm_step uses
        matmul, tanh, concatenate = torch.matmul, torch.tanh, torch.cat

        @staticmethod
        def largest(M):
            return M.abs().amax(dim=(1, 2))

    def run(grad):
        with torch.no_grad():
            h = torch.zeros(ncase, H, dtype=Wt.dtype)
            c = torch.zeros_like(h)
            M = torch.eye(2 * H, dtype=Wt.dtype).expand(ncase, 2 * H, 2 * H).clone()
            for t in range(steps):
                h, c, M = lstm_step(_Torch, torch.sigmoid, Wt, wx, b, float(t == 0), h, c, M,
                                    grad and t > 0)  # fmt: skip
        return h, M

    return {"state": _best(lambda: run(False), 2), "gradient": _best(lambda: run(True), 2)}


def _jax_lstm(Wt, wx, b, steps) -> dict:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}
    jax.config.update("jax_enable_x64", True)
    Wj, xj, bj = (jnp.asarray(a) for a in (Wt, wx, b))
    ncase, H = wx.shape[0], Wt.shape[2]

    class _Jax:
        matmul, tanh, concatenate = jnp.matmul, jnp.tanh, jnp.concatenate

        @staticmethod
        def largest(M):
            return jnp.abs(M).max(axis=(1, 2))

    def make(grad):
        @jax.jit
        def run(Wj, xj, bj):
            def body(t, carry):
                h, c, M = carry
                xon = jnp.where(t == 0, 1.0, 0.0)
                h2, c2, M2 = lstm_step(_Jax, jax.nn.sigmoid, Wj, xj, bj, xon, h, c, M, grad)
                return h2, c2, (jnp.where(t > 0, M2, M) if grad else M)

            h0 = jnp.zeros((ncase, H))
            M0 = jnp.broadcast_to(jnp.eye(2 * H), (ncase, 2 * H, 2 * H))
            return jax.lax.fori_loop(0, steps, body, (h0, h0, M0))

        return lambda: jax.block_until_ready(run(Wj, xj, bj))

    return {"state": _best(make(False), 2), "gradient": _best(make(True), 2)}


def lstm_table(peak: float) -> str:
    """The LSTM rows: GFLOP/s of each side (8 H^2 per case-step forward, W_hh times h; 16 H^3
    more with the gradient, W_hh times the h rows of M), the ratio to the best peer and
    rnnlab's share of the DGEMM peak."""
    sides: dict[str, dict] = {}
    work = {}
    for H, ncase, steps in LSTM_SIZES:
        for side, rows in lstm_rows(H, ncase, steps).items():
            sides.setdefault(side, {}).update(rows)
        work[(H, "state")] = 8 * H * H * ncase * steps
        work[(H, "gradient")] = (16 * H**3 + 8 * H * H) * ncase * steps
    return _flops_table("LSTM, float64", "H", work, sides, peak)


def _flops_table(title: str, size: str, work: dict, sides: dict, peak: float) -> str:
    """Rows (work, size) of GFLOP/s per side, the ratio to the best peer, the share of peak."""
    names = [s for s in ("rnnlab", "NumPy", "PyTorch", "JAX") if s in sides]
    out = [f"{title}, GFLOP/s (DGEMM peak {peak:.1f})", "",
           f"| work | {size} | " + " | ".join(names) + " | rnnlab / best peer | rnnlab / peak |",
           "|---|---:|" + "---:|" * (len(names) + 2)]  # fmt: skip
    for key, flops in work.items():
        rate = {s: flops / sides[s][key] / 1e9 for s in names if key in sides.get(s, {})}
        peer = max(v for s, v in rate.items() if s != "rnnlab")
        cells = [f"{rate[s]:.1f}" if s in rate else "-" for s in names]
        ratios = f" | **{rate['rnnlab'] / peer:.2f}x** | {rate['rnnlab'] / peak:.0%} |"
        out.append(f"| {key[1]} | {key[0]} | " + " | ".join(cells) + ratios)
    return "\n".join(out)


def train_table(quick: bool) -> str:
    """Training many LSTMs on the adding problem (benchmarks/bench_train.py's problem):
    seconds per update of rnnlab's train and of the PyTorch ways, float64 and float32."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "training: PyTorch is not installed (pip install -e .[test])"
    import numpy as np
    from bench_train import per_update, rnnlab_run, torch_ways

    M, H, B, T, U = (32, 32, 20, 50, 2) if quick else (256, 32, 20, 100, 4)
    seeds = np.arange(M)
    rnnlab_run(seeds[:2], H, 5, 2, 2)  # compile outside the timing
    ours = min(per_update(lambda u: rnnlab_run(seeds, H, T, B, u), U, 2)[0])
    rows = [("float64", "rnnlab train", ours)]
    rows += [(dt, name, min(s)) for dt, name, s, *_ in torch_ways(seeds, H, T, B, U, 2)]
    best = min(r[2] for r in rows[1:])
    out = [f"training: {M} LSTMs (H = {H}) on the adding problem, T = {T}, batch {B}, Adam, "
           "norm clipping; seconds per update of all models", "",
           "| way | dtype | s / update | rnnlab / this |", "|---|---|---:|---:|"]  # fmt: skip
    out += [f"| {name} | {dt} | {s:.3f} | {s / ours:.2f}x |" for dt, name, s in rows]
    out.append(f"\nrnnlab / best peer: **{best / ours:.2f}x**")
    return "\n".join(out)


def sweep_table(quick: bool) -> str:
    """The sweep through the embedded Dask cluster into Zarr against the engine called
    directly on the same grid (benchmarks/bench_sweep.py's problem)."""
    import shutil
    import tempfile
    from pathlib import Path

    from bench_sweep import direct, make_spec

    from rnnlab.jobs.runner import run_sweep
    from rnnlab.jobs.spec import parse_spec

    steps, nw = (20_000, 256) if quick else (300_000, 1024)
    tmp = Path(tempfile.mkdtemp(prefix="rnnlab-bench-"))
    try:
        spec = make_spec(steps, nw, str(tmp / "sweep.zarr"))
        small = make_spec(10, 16, str(tmp / "warm.zarr"))
        direct(small)
        run_sweep(small, sync=True)
        t_direct = direct(spec)
        t0 = time.perf_counter()
        res = run_sweep(spec)
        t_sweep = time.perf_counter() - t0
        t0 = time.perf_counter()  # the fixed cost: the same sweep with next to no work
        fixed = run_sweep(small, store=tmp / "fixed.zarr")
        t_fixed = time.perf_counter() - t0
        few = parse_spec(small)[1].size
        size = parse_spec(spec)[1].size
    finally:
        shutil.rmtree(tmp)
    rate = size * steps / 1e9
    steady = t_direct / (t_sweep - t_fixed)
    return "\n".join([
        f"sweep: {size:,} scalar cases x {steps:,} steps, {res.nblocks} blocks", "",
        "| way | seconds | Gsteps/s | share of direct |", "|---|---:|---:|---:|",
        f"| engine called directly | {t_direct:.1f} | {rate / t_direct:.3f} | 100% |",
        f"| run_sweep: embedded Dask cluster, Zarr store | {t_sweep:.1f} | {rate / t_sweep:.3f} "
        f"| **{t_direct / t_sweep:.1%}** |", "",
        f"fixed cost: {t_fixed:.1f} s (the same grid with {few:,} cases x 10 steps, "
        f"{fixed.nblocks} block{'s' * (fixed.nblocks > 1)}: the cluster's start and close, "
        f"the store, the workers' imports); without it the sweep keeps {steady:.1%}"])  # fmt: skip


def header() -> str:
    """The CPU, the instruction set the run is held to, and every side's version."""
    import numba
    import numpy as np

    isa = os.environ.get("RNNLAB_BENCH_ISA", "native")
    versions = [f"numba {numba.__version__}", f"NumPy {np.__version__}"]
    for name in ("torch", "jax"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"no {name}")
    return f"CPU: {_cpu()}; instruction set: {isa}; " + ", ".join(versions) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/16 of the cases")
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--only", choices=SECTIONS, help="one of the tables")
    args = parser.parse_args(argv)
    if args.isa == "avx2" and os.environ.get("RNNLAB_BENCH_ISA") != "avx2":
        import tempfile

        with tempfile.TemporaryDirectory() as cache:  # AVX2 machine code, not the user's cache
            env = {**os.environ, **AVX2_ENV, "NUMBA_CACHE_DIR": cache}
            cmd = [sys.executable, __file__, *(["--quick"] if args.quick else []),
                   *(["--only", args.only] if args.only else [])]  # fmt: skip
            sys.exit(subprocess.run(cmd, env=env).returncode)
    from bench_rnn import measured_peak_gflops

    print(header())
    run = SECTIONS if args.only is None else (args.only,)
    if args.isa == "avx2" or os.environ.get("RNNLAB_BENCH_ISA") == "avx2":
        run = [r for r in run if r in ("scalar", "vector", "lstm")]  # the kernels' own ISA
    peak = measured_peak_gflops() if {"vector", "lstm"} & set(run) else 0.0
    for section in run:
        if section == "scalar":
            print(table((1 << 20) // (16 if args.quick else 1), 1000), "\n")
        elif section == "vector":
            print(vector_table(peak), "\n")
        elif section == "lstm":
            print(lstm_table(peak), "\n")
        elif section == "train":
            print(train_table(args.quick), "\n")
        else:
            print(sweep_table(args.quick), "\n")


if __name__ == "__main__":
    main()
