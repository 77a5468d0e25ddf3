"""One side-by-side table of the scalar recursion: rnnlab, NumPy and JAX in one run.

    python benchmarks/bench_table.py              # this CPU's own instruction set
    python benchmarks/bench_table.py --isa avx2   # the same machine held to AVX2
    python benchmarks/bench_table.py --quick      # 1/16 of the cases

The work of every row: h(t) = tanh(w h(t-1) + c x(t) + b), 2^20 cases x 1000 steps, an
impulse input, w uniform in [-2, 2] (one case per w); Gsteps/s = cases x steps / seconds, the
best of three runs after a warm-up (compilation not timed), all cores. Rows:

- state only: the recursion alone (rnnlab ``outputs=["state"]``, JAX ``lax.fori_loop``,
  NumPy a loop over steps of vectorised ``np.tanh``), float64 and float32;
- every tracker: the run without the input, the gradient product w f'(z) and the memory,
  saturation and blow-up trackers (rnnlab's default summaries;
  ``rnnlab.engine.reference.rnn_numpy_vectorised``; the same loop in JAX, float64).

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
    rows[("trackers", "float64")] = _best(lambda: simulate_rnn(w, **kw, weight_norms=False))
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
    rows[("trackers", "float64")] = min(_bench_jax_scalar(w, ones, zeros, steps) for _ in range(2))
    return rows


def table(ncase: int, steps: int) -> str:
    import numba
    import numpy as np

    w = np.random.default_rng(0).uniform(-2.0, 2.0, ncase)
    sides = {"rnnlab": rnnlab_rows(w, steps), "NumPy": numpy_rows(w, steps),
             "JAX": jax_rows(w, steps)}  # fmt: skip
    isa = os.environ.get("RNNLAB_BENCH_ISA", "native")
    out = [f"CPU: {_cpu()}; instruction set: {isa}; numba {numba.__version__}, NumPy "
           f"{np.__version__}" + (f", JAX {_jax_version()}" if sides["JAX"] else ", no JAX"),
           f"scalar tanh, {ncase} cases x {steps} steps, Gsteps/s (best of 3)", "",
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
    names = ("rnnlab", "NumPy", "PyTorch", "JAX")
    out = [f"vector tanh, float64, GFLOP/s (DGEMM peak {peak:.1f})", "",
           "| work | n | " + " | ".join(names) + " | rnnlab / best peer | rnnlab / peak |",
           "|---|---:|" + "---:|" * (len(names) + 2)]  # fmt: skip
    for key, flops in work.items():
        rate = {s: flops / sides[s][key] / 1e9 for s in names if key in sides.get(s, {})}
        peer = max(v for s, v in rate.items() if s != "rnnlab")
        cells = [f"{rate[s]:.1f}" if s in rate else "-" for s in names]
        ratios = f" | **{rate['rnnlab'] / peer:.2f}x** | {rate['rnnlab'] / peak:.0%} |"
        out.append(f"| {key[1]} | {key[0]} | " + " | ".join(cells) + ratios)
    return "\n".join(out)


def _jax_version() -> str:
    import jax

    return jax.__version__


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/16 of the cases")
    parser.add_argument("--isa", choices=["native", "avx2"], default="native")
    parser.add_argument("--only", choices=["scalar", "vector"], help="one of the two tables")
    args = parser.parse_args(argv)
    if args.isa == "avx2" and os.environ.get("RNNLAB_BENCH_ISA") != "avx2":
        import tempfile

        with tempfile.TemporaryDirectory() as cache:  # AVX2 machine code, not the user's cache
            env = {**os.environ, **AVX2_ENV, "NUMBA_CACHE_DIR": cache}
            cmd = [sys.executable, __file__, *(["--quick"] if args.quick else []),
                   *(["--only", args.only] if args.only else [])]  # fmt: skip
            sys.exit(subprocess.run(cmd, env=env).returncode)
    if args.only != "vector":
        print(table((1 << 20) // (16 if args.quick else 1), 1000), "\n")
    if args.only != "scalar":
        from bench_rnn import measured_peak_gflops

        print(vector_table(measured_peak_gflops()))


if __name__ == "__main__":
    main()
