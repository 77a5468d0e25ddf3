"""What float32 loses: every output of the scalar recursion in float32 against float64.

    python benchmarks/float32_accuracy.py            # 10^4 steps
    python benchmarks/float32_accuracy.py --steps 1000

The grid: h(t) = f(w h(t-1) + x(t) + b), w in [-2, 2] (129 values), b in [-1, 1] (33), an
impulse x(0) = 1, every activation; both runs start from the same float32-rounded w and b
and use the same saturation tolerance (1e-5, float32's default), so that the differences
are float32's rounding and range only. Printed per variable, over the cases where neither
run blew up: the difference of the state, the response and the fixed point relative to the
case's largest |h| (a signed state passing near 0 has no relative accuracy in either
precision; the response, a difference of two states, is resolved to float32's spacing of
the states), of ``max_state_norm`` relative to itself, of log10 quantities and rates
absolute; its median, 99th percentile and maximum, and the share of cases where the two
runs agree on being finite (float32's range ends at 3.4e38 and its subnormals at 1.4e-45,
where float64 goes on); for the integer summaries, the share of cases with equal values.
"""

from __future__ import annotations

import argparse

import numpy as np

from rnnlab.engine import ACTIVATIONS, simulate_rnn

SCALED = ("state", "response", "fixed_point")  # relative to the case's largest |h|
REAL = (*SCALED, "max_state_norm")
LOGS = ("log10_gradient_norm", "growth_rate", "response_growth_rate")
INTEGERS = ("blowup_step", "memory_horizon", "saturation_step", "memory_class", "bounded")


def grid():
    w, b = np.meshgrid(np.linspace(-2, 2, 129), np.linspace(-1, 1, 33), indexing="ij")
    f32 = np.float32
    return w.ravel().astype(f32).astype(float), b.ravel().astype(f32).astype(float)


def compare(activation: str, steps: int) -> dict:
    """{variable: (median, p99, max, finite agreement) or (equal share,)} for one activation."""
    w, b = grid()
    kw = dict(activation=activation, steps=steps, record="log", num_records=50,
              saturation_tol=1e-5)  # fmt: skip
    r64 = simulate_rnn(w, 1.0, b, **kw)
    r32 = simulate_rnn(w, 1.0, b, dtype="float32", **kw)
    out = {name: (np.mean(r64[name] == r32[name]),) for name in INTEGERS}
    ok = (r64["blowup_step"] < 0) & (r32["blowup_step"] < 0)
    scale = np.asarray(r64["max_state_norm"], float)[ok]
    for name in REAL + LOGS:
        a = np.asarray(r64[name], float)[ok]
        c = np.asarray(r32[name], float)[ok]
        agree = np.mean(np.isfinite(a) == np.isfinite(c))
        both = np.isfinite(a) & np.isfinite(c)
        if name in REAL:
            ref = scale if name in SCALED else np.abs(a)
            ref = np.broadcast_to(ref.reshape(ref.shape + (1,) * (a.ndim - 1)), a.shape)
            both &= ref > 1e-30
            err = np.abs(a[both] - c[both]) / ref[both]
        else:
            err = np.abs(a[both] - c[both])
        out[name] = (np.median(err), np.quantile(err, 0.99), err.max(), agree)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(f"float32 against float64, {129 * 33} cases x {args.steps} steps\n")
    print("| variable | activation | median | 99th percentile | max | finite in both |")
    print("|---|---|---:|---:|---:|---:|")
    rows = {act: compare(act, args.steps) for act in ACTIVATIONS}
    for name in REAL + LOGS + INTEGERS:
        for act, res in rows.items():
            v = res[name]
            if len(v) == 1:
                print(f"| {name} | {act} | equal in {v[0]:.2%} of cases | | | |")
            else:
                print(f"| {name} | {act} | {v[0]:.1e} | {v[1]:.1e} | {v[2]:.1e} | {v[3]:.2%} |")


if __name__ == "__main__":
    main()
