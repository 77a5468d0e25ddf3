"""Benchmark: a sweep through the embedded Dask cluster against the engine called directly.

    python benchmarks/bench_sweep.py           # about a minute of work per side
    python benchmarks/bench_sweep.py --quick   # a few seconds per side

Both sides run the same grid (scalar tanh and sigmoid recursions over w, bias and seed, with
log-spaced recording). "Direct" is one ``simulate_rnn`` call per activation over all cases on
all cores, results left in memory. "Sweep" is ``run_sweep`` on an embedded ``LocalCluster``
(one single-threaded worker process per core): it includes starting the cluster, creating the
store, scheduling the blocks and writing every result to Zarr. The ratio is the fraction of
the direct throughput the sweep keeps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from rnnlab.engine import simulate_rnn
from rnnlab.jobs.runner import run_sweep
from rnnlab.jobs.spec import parse_spec


def make_spec(steps: int, nw: int, store: str) -> dict:
    return {
        "model": {"family": "rnn", "n": 1},
        "grid": {
            "activation": ["tanh", "sigmoid"],
            "w": {"start": -2.0, "stop": 2.0, "num": nw},
            "bias": {"start": -1.0, "stop": 1.0, "num": 16},
            "amplitude": [-1.0, 1.0],
        },
        "run": {"steps": steps, "record": "log", "num_records": 20},
        "store": {"path": store, "block_seconds": 5.0},
    }


def direct(spec_dict: dict) -> float:
    spec, grid = parse_spec(spec_dict)
    mesh = np.meshgrid(*[grid.coords[d] for d in grid.dims[1:]], indexing="ij")
    w, b, a = (m.ravel() for m in mesh)
    t0 = time.perf_counter()
    for act in grid.coords["activation"]:
        simulate_rnn(
            w,
            1.0,
            b,
            activation=str(act),
            steps=spec.run.steps,
            amplitude=a,
            record="log",
            num_records=20,
        )
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    steps, nw = (20_000, 256) if args.quick else (300_000, 1024)
    tmp = Path(tempfile.mkdtemp(prefix="rnnlab-bench-"))
    try:
        spec = make_spec(steps, nw, str(tmp / "sweep.zarr"))
        small = make_spec(10, 16, str(tmp / "warm.zarr"))
        direct(small)  # compile the parallel kernels outside the timing
        run_sweep(small, sync=True)  # and the serial ones (workers load them from the cache)
        t_direct = direct(spec)
        t0 = time.perf_counter()
        res = run_sweep(spec)
        t_sweep = time.perf_counter() - t0
        _, grid = parse_spec(spec)
        cores = os.cpu_count() or 1
        print(f"grid: {grid.size:,} cases x {steps:,} steps, {res.nblocks} blocks, {cores} cores")
        print(
            f"direct engine: {t_direct:7.2f} s  ({grid.size * steps / t_direct:.3g} case-steps/s)"
        )
        print(
            f"sweep (Dask):  {t_sweep:7.2f} s  ({grid.size * steps / t_sweep:.3g} case-steps/s)"
            " including cluster start-up and Zarr writes"
        )
        print(
            f"sweep keeps {100 * t_direct / t_sweep:.1f}% of the direct throughput; overhead "
            f"{(t_sweep - t_direct) * cores / res.nblocks:.2f} core-seconds per block"
        )
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
