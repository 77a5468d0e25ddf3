"""Compile time of each kernel family, from an empty cache and from a warm one.

Each family runs in a new Python process with an empty Numba cache of its own (so that no
family profits from another's helpers), first float64 then float32; a second process with
the same cache measures the load. A last process compiles every family one after the other,
as a cold ``make test`` does. Prints the CPU and a table; the numbers are in docs/engine.md
("Compile budget").

    python benchmarks/bench_compile.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile

FAMILIES = ("scalar", "rnn", "lstm", "gru", "cec")

_CHILD = r"""
import json, sys, time
from rnnlab.engine._jit import CompileRecorder, compile_stats
rec = CompileRecorder().register()
import numpy as np
from rnnlab.engine import init_layers, simulate_mlp, simulate_network, simulate_rnn, mlp_weights

def run(family, dtype):
    kw = dict(steps=3, dtype=dtype, parallel=False)
    if family == "scalar":
        for a in ("identity", "sigmoid", "tanh", "relu"):
            simulate_rnn([0.5], activation=a, **kw)
    elif family == "rnn":  # vector recursions, stacked rnn layers and deep nets share it
        simulate_rnn(np.eye(2) * 0.5, **kw)
        simulate_mlp(mlp_weights(2, 3), 1.0, dtype=dtype, parallel=False)
    else:
        simulate_network(family, init_layers(family, 2), loss_step=1, **kw)

out = {}
for family in sys.argv[1:]:
    for dtype in ("float64", "float32"):
        t = time.perf_counter()
        run(family, dtype)
        out[f"{family} {dtype}"] = time.perf_counter() - t
out["specialisations"] = sum(1 for r in rec.rows if r[1].startswith("rnnlab.engine"))
out["loaded"] = sum(r["loaded"] for r in compile_stats().values())
print(json.dumps(out))
"""


def _child(families, cache: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *families], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu() -> str:
    try:
        info = open("/proc/cpuinfo").read()
        model = next(ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln)
        isa = "AVX-512" if "avx512f" in info else ("AVX2" if "avx2" in info else "no AVX2")
        return f"{model}, {isa}, {os.cpu_count()} CPUs"
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    print(f"{_cpu()}; Python {platform.python_version()}")
    print(f"{'family':<8} {'cold f64':>9} {'cold f32':>9} {'specs':>6} {'warm':>7}")
    for family in FAMILIES:
        with tempfile.TemporaryDirectory() as cache:
            cold = _child([family], cache)
            warm = _child([family], cache)
        w = warm[f"{family} float64"] + warm[f"{family} float32"]
        print(
            f"{family:<8} {cold[f'{family} float64']:8.1f}s {cold[f'{family} float32']:8.1f}s "
            f"{cold['specialisations']:6d} {w:6.2f}s"
        )
    with tempfile.TemporaryDirectory() as cache:
        every = _child(list(FAMILIES), cache)
    total = sum(v for k, v in every.items() if k.endswith(("float64", "float32")))
    print(
        f"every family in one process: {total:.1f} s, {every['specialisations']} "
        "specialisations (what a cold make test compiles in its main process)"
    )


if __name__ == "__main__":
    main()
