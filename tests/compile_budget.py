"""The compile budget of the test suite: what Numba compiled in the test process, per kernel,
reported at the end of every run and checked by ``test_compile.py``.

The kernels are the scalar kernel (one per activation and precision), the small vector
kernel (one per precision), the layered kernel (one per cell and precision) and the gradient
kernel of :func:`rnnlab.engine.bptt` (one per cell and precision): 26 in all. Everything
else Numba compiles is a helper they call. Keep these numbers when adding kernels
(docs/engine.md, "Compile budget").
"""

from __future__ import annotations

from collections import defaultdict

from rnnlab.engine._jit import CompileRecorder

RECORDER = CompileRecorder().register()  # before any kernel is compiled

#: Kernels (entry points, one per activation or cell and precision; the bptt kernels added 8,
#: the small vector kernel 2).
MAX_KERNELS = 26
#: Specialisations of every engine function together (kernels and helpers), compiled cold
#: (150 before the small vector kernel, which adds its two: its helpers are inlined).
MAX_SPECIALISATIONS = 152
#: Seconds of compilation of the whole suite from an empty cache, on 2 cores. The same 152
#: specialisations took 188 s on an AMD EPYC (Zen 5), 240.3 s on CI and 360 s on an Intel
#: Xeon: seconds measure the machine as much as the code, so the counts above are the exact
#: guards and this one catches what they cannot (a kernel that compiles 2x slower, as
#: ``inline="always"`` did): 480 s, 1.33x the slowest machine seen.
MAX_SECONDS = 480.0


def kernel_labels() -> dict[int, str]:
    """id(dispatcher) -> "scalar tanh", "lstm", ... for every kernel."""
    from rnnlab.engine import ACTIVATIONS, _lanes, network, rnn
    from rnnlab.engine.bptt import KERNELS as BPTT_KERNELS

    names = {a.code: a.name for a in ACTIVATIONS.values()}
    labels = {id(k): f"scalar {names[code]}" for (code, _), k in rnn.KERNELS.items()}
    labels[id(_lanes.run_block)] = "lanes (vector, n <= 16)"
    labels.update({id(k): f"layered {cell}" for cell, k in network.KERNELS.items()})
    labels.update({id(k): f"bptt {cell}" for cell, k in BPTT_KERNELS.items()})
    return labels


def _dtype(sig) -> str:
    for a in sig:
        if hasattr(a, "dtype"):
            return str(a.dtype)
    return "?"


def summary() -> dict:
    """Kernels compiled (label, dtype) -> seconds, and the totals."""
    labels = kernel_labels()
    kernels = {}
    engine = [r for r in RECORDER.rows if r[1].startswith("rnnlab.engine")]
    for d, _, sig, seconds, _, _ in engine:
        if id(d) in labels:
            kernels[(labels[id(d)], _dtype(sig))] = seconds
    top = sum(r[3] for r in RECORDER.rows if r[5] == 0)
    return {
        "kernels": kernels,
        "specialisations": len(engine),
        "seconds": top,
        "literal": RECORDER.literal_specialisations(),
    }


def report_lines() -> list[str]:
    s = summary()
    from rnnlab.engine._jit import compile_stats

    loaded = sum(row["loaded"] for row in compile_stats().values())
    lines = [
        f"Numba in the test process: {len(s['kernels'])} kernels and "
        f"{s['specialisations']} specialisations in all compiled in {s['seconds']:.1f} s; "
        f"{loaded} loaded from the cache (budget: {MAX_KERNELS} kernels, "
        f"{MAX_SPECIALISATIONS} specialisations, {MAX_SECONDS:.0f} s)"
    ]
    by_label = defaultdict(list)
    for (label, dtype), seconds in sorted(s["kernels"].items()):
        by_label[label].append(f"{dtype} {seconds:.1f} s")
    lines += [f"  {label:<18} {', '.join(v)}" for label, v in by_label.items()]
    return lines
