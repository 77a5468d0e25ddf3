"""Benchmark: the rnn engine against a vectorised NumPy implementation, side by side.

    python benchmarks/bench_rnn.py            # the sizes of issue #2 (~3 minutes on 2 cores)
    python benchmarks/bench_rnn.py --quick    # 1/16 of the cases, for a smoke run

1. Scalar tanh recursions, 2^20 cases x 1000 steps, float64, summaries only.
2. Vector tanh recursions, n = 64, 4096 cases x 1000 steps, with the exact gradient norm
   (the full 64 x 64 Jacobian product every step), reported in GFLOP/s against a measured peak.

Both sides compute the same thing: the run, the run without the input at t = 0, the Jacobian
product, and the memory / saturation / blow-up trackers; NumPy is
``rnnlab.engine.reference.rnn_numpy_vectorised``. Each side runs once after a warm-up (the
engine's compilation is not timed). If JAX is installed (``pip install -e .[bench]``), the
scalar loop is also timed with ``jax.jit`` for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from rnnlab.engine import recurrent_matrix, simulate_rnn
from rnnlab.engine.reference import rnn_numpy_vectorised


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def _max_rel(a, b, floor):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b) & (np.abs(b) > floor)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok]))), int(ok.sum())


def measured_peak_gflops(size: int = 2048) -> float:
    """Float64 DGEMM throughput of NumPy's BLAS on all cores: the practical peak (GFLOP/s)."""
    a = np.random.default_rng(0).standard_normal((size, size))
    a @ a
    _, dt = _timed(lambda: a @ a)
    return 2 * size**3 / dt / 1e9


def bench_scalar(ncase: int, steps: int) -> dict:
    rng = np.random.default_rng(0)
    w = rng.uniform(-2.0, 2.0, ncase)
    b = rng.uniform(-0.5, 0.5, ncase)
    c = np.ones(ncase)
    last = np.array([steps - 1])
    kw = dict(activation="tanh", steps=steps, record=last, weight_norms=False)
    simulate_rnn(w[:64], c[:64], b[:64], **{**kw, "steps": 10, "record": [9]})
    eng, t_eng = _timed(lambda: simulate_rnn(w, c, b, **kw))
    simulate_rnn(w[:64], c[:64], b[:64], **{**kw, "steps": 10, "record": [9]}, outputs=["state"])
    _, t_state = _timed(lambda: simulate_rnn(w, c, b, **kw, outputs=["state"]))
    ref, t_np = _timed(lambda: rnn_numpy_vectorised(w, c, b, "tanh", steps, record=last))
    errs = {}
    for name in ("state_norm", "response", "log10_gradient_norm"):
        a, r = eng[name][:, 0], ref[name][:, 0]
        if name == "log10_gradient_norm":  # relative difference of the norms themselves
            rel = np.abs(a - r) * np.log(10.0)
            ok = np.isfinite(rel)
        else:
            # the response is h - hbar of two O(1) states: its relative error is
            # ~1e-16 / response, so it is compared where it is above 1e-3
            ok = np.isfinite(a) & np.isfinite(r) & (r > (1e-3 if name == "response" else 1e-280))
            rel = np.abs(a - r) / np.where(ok, r, 1.0)
        rel = rel[ok]
        worst = np.flatnonzero(ok)[np.argsort(-rel)[:3]]
        errs[name] = dict(
            median=float(np.median(rel)),
            p9999=float(np.percentile(rel, 99.99)),
            max=float(rel.max()),
            within=float(np.mean(rel <= 1e-12)),
            count=int(ok.sum()),
            truth=_longdouble_errors(
                name, w[worst], c[worst], b[worst], steps, eng[name][worst, 0], ref[name][worst, 0]
            ),
        )
    same_mem = float(np.mean(eng["memory_horizon"] == ref["memory_horizon"]))
    same_sat = float(np.mean(eng["saturation_step"] == ref["saturation_step"]))
    out = dict(
        t_engine=t_eng, t_numpy=t_np, errors=errs, same_memory=same_mem, same_saturation=same_sat
    )
    out["t_state"] = t_state
    out["t_jax"] = _bench_jax_scalar(w, c, b, steps)
    return out


def _longdouble_errors(name, w, c, b, steps, eng, ref):
    """Errors of both sides against an 80-bit (np.longdouble) run of the worst cases."""
    w, c, b = (np.asarray(x, np.longdouble) for x in (w, c, b))
    h = np.zeros_like(w)
    hb = np.zeros_like(w)
    lg = np.zeros_like(w)
    for t in range(steps):
        z = w * h + (c if t == 0 else 0) + b
        h = np.tanh(z)
        hb = np.tanh(w * hb + b)
        if t > 0:
            lg += np.log10(np.abs(w) / np.cosh(z) ** 2)
    truth = {"state_norm": np.abs(h), "response": np.abs(h - hb), "log10_gradient_norm": lg}
    tr = truth[name]
    if name == "log10_gradient_norm":
        return [
            (float(abs(e - t) * np.log(10)), float(abs(r - t) * np.log(10)))
            for e, r, t in zip(eng, ref, tr, strict=True)
        ]
    return [
        (float(abs(e / t - 1)), float(abs(r / t - 1))) for e, r, t in zip(eng, ref, tr, strict=True)
    ]


def _bench_jax_scalar(w, c, b, steps):
    """Seconds of JAX's jitted loop doing the scalar kernel's work (in w's precision)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    single = np.asarray(w).dtype == np.float32
    sat_tol = 1e-5 if single else 1e-12  # rnnlab's default saturation_tol

    @jax.jit
    def run(w, c, b):
        # the same per-step work as the engine: both runs, the gradient, the trackers
        def body(t, carry):
            h, hb, lg, r0, last_mem, last_change, maxn, blow = carry
            z = w * h + jnp.where(t == 0, c, 0.0) + b
            hn = jnp.tanh(z)
            hb = jnp.tanh(w * hb + b)
            lg = lg + jnp.where(t > 0, jnp.log10(jnp.abs(w) / jnp.cosh(z) ** 2), 0.0)
            resp = jnp.abs(hn - hb)
            r0 = jnp.where(t == 0, resp, r0)
            last_mem = jnp.where(resp > 1e-3 * r0, t, last_mem)
            moved = jnp.abs(hn - h) > sat_tol * jnp.maximum(1.0, jnp.abs(hn))
            last_change = jnp.where(moved, t, last_change)
            maxn = jnp.maximum(maxn, jnp.abs(hn))
            blow = jnp.where((blow < 0) & ~jnp.isfinite(hn), t, blow)
            return hn, hb, lg, r0, last_mem, last_change, maxn, blow

        zero = jnp.zeros_like(w)
        minus = jnp.full(w.shape, -1, dtype=jnp.int32 if single else jnp.int64)
        init = (zero, zero, zero, zero, minus, minus, zero, minus)
        return jax.lax.fori_loop(0, steps, body, init)

    args = [jnp.asarray(a) for a in (w, c, b)]
    jax.block_until_ready(run(*args))
    _, dt = _timed(lambda: jax.block_until_ready(run(*args)))
    return dt


def bench_vector(ncase: int, n: int, steps: int) -> dict:
    rng = np.random.default_rng(1)
    radii = rng.uniform(0.5, 1.5, ncase)
    W = np.stack(
        [
            recurrent_matrix(n, "gaussian", seed=i % 64, spectral_radius=r)
            for i, r in enumerate(radii)
        ]
    )
    C = np.broadcast_to(rng.standard_normal(n) / np.sqrt(n), (ncase, n)).copy()
    b = np.zeros((ncase, n))
    last = np.array([steps - 1])
    kw = dict(activation="tanh", steps=steps, record=last, weight_norms=False, gradient="exact")
    simulate_rnn(W[:4], C[:4], b[:4], **{**kw, "steps": 5, "record": [4]})
    eng, t_eng = _timed(lambda: simulate_rnn(W, C, b, **kw))
    ref, t_np = _timed(lambda: rnn_numpy_vectorised(W, C, b, "tanh", steps, record=last))
    # chaotic cases (positive growth rate) amplify rounding differences like e^(growth t):
    # only the contracting ones can agree to rounding at the last step
    calm = eng["growth_rate"] < 0
    errs = {
        name: _max_rel(eng[name][calm, 0], ref[name][calm, 0], floor)
        # NumPy's norm squares the entries: below 1e-150 they underflow into subnormals
        for name, floor in (("state_norm", 1e-150), ("log10_gradient_norm", 1e-3))
    }
    errs["growth_rate (all cases, absolute)"] = (
        float(np.nanmax(np.abs(eng["growth_rate"] - ref["growth_rate"]))),
        ncase,
    )
    flops = ncase * steps * (2 * n**3 + 8 * n**2)  # W @ M dominates; W @ h twice, scaling
    return dict(t_engine=t_eng, t_numpy=t_np, errors=errs, flops=flops)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/16 of the cases")
    parser.add_argument("--only", choices=["scalar", "vector"], help="run one benchmark")
    args = parser.parse_args(argv)
    div = 16 if args.quick else 1
    print(
        f"rnnlab engine vs NumPy {np.__version__}, numba {numba.__version__}, "
        f"{numba.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    peak = measured_peak_gflops()
    print(f"peak: float64 DGEMM 2048^2 through NumPy's BLAS on all cores: {peak:.1f} GFLOP/s\n")

    ncase, steps = (1 << 20) // div, 1000
    if args.only != "vector":
        report_scalar(bench_scalar(ncase, steps), ncase, steps)
    if args.only != "scalar":
        report_vector(bench_vector(4096 // div, 64, steps), 4096 // div, 64, steps, peak)


def report_scalar(s: dict, ncase: int, steps: int) -> None:
    print(f"1. scalar tanh, {ncase} cases x {steps} steps, float64, summaries only")
    print(
        f"   engine {s['t_engine']:8.2f} s   numpy {s['t_numpy']:8.2f} s   "
        f"ratio {s['t_numpy'] / s['t_engine']:5.1f}x"
    )
    print(
        f"   engine, the recursion alone (outputs=['state']) {s['t_state']:8.2f} s: the "
        f"trackers add {s['t_engine'] / s['t_state'] - 1:.1f}x the recursion's time"
    )
    if s["t_jax"] is not None:
        print(
            f"   jax.jit (same loop, CPU) {s['t_jax']:8.2f} s   "
            f"numpy/jax {s['t_numpy'] / s['t_jax']:4.1f}x   "
            f"jax/engine {s['t_jax'] / s['t_engine']:4.1f}x"
        )
    print("   relative difference engine vs numpy at the last step:")
    print(
        f"   {'':>20} {'median':>8} {'99.99%':>8} {'max':>8} {'<= 1e-12':>9}  worst 3 cases: "
        "error of engine / numpy against 80-bit long double"
    )
    for name, e in s["errors"].items():
        truth = "  ".join(f"{a:.0e}/{b:.0e}" for a, b in e["truth"])
        print(
            f"   {name:>20} {e['median']:8.1e} {e['p9999']:8.1e} {e['max']:8.1e} "
            f"{100 * e['within']:8.3f}%  {truth}"
        )
    print(
        f"   identical memory_horizon {100 * s['same_memory']:.3f}%, saturation_step "
        f"{100 * s['same_saturation']:.3f}% (the rest differ by one step at the tolerance)"
    )


def report_vector(v: dict, ncase_v: int, n: int, steps: int, peak: float) -> None:
    gf_e = v["flops"] / v["t_engine"] / 1e9
    gf_n = v["flops"] / v["t_numpy"] / 1e9
    print(f"\n2. vector tanh, n = {n}, {ncase_v} cases x {steps} steps, exact gradient norm")
    print(
        f"   engine {v['t_engine']:8.2f} s ({gf_e:5.1f} GFLOP/s, {100 * gf_e / peak:4.1f}% "
        f"of peak)   numpy {v['t_numpy']:8.2f} s ({gf_n:5.1f} GFLOP/s)   "
        f"ratio {v['t_numpy'] / v['t_engine']:5.2f}x"
    )
    for name, (err, cnt) in v["errors"].items():
        print(f"   max difference of {name} at the last step: {err:.1e} ({cnt} cases)")
    print("   (state and gradient compared on the cases with a negative growth rate: chaotic")
    print("   runs amplify rounding differences exponentially)")


if __name__ == "__main__":
    main()
