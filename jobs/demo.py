"""The engine demo: the lecture's recursions in one run, summarised, and stored in Zarr.

Runs (1) the scalar recursions h(t) = f(w h(t-1) + x(t) + b) for the four activations across
w, bias and the sign of the input, and (2) vector tanh and linear recursions of n = 64 across
spectral radii, then prints what the lecture claims next to what was measured and writes both
as xarray Datasets to one Zarr store.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import numpy as np

from rnnlab.engine import recurrent_matrix, simulate_rnn

from .paths import PathError, check_target, replacing
from .schema import to_dataset

__all__ = ["run_demo"]

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")
#: Root attribute that marks a demo store (only such a store is ever replaced).
_MARKER = "rnnlab_demo"


def _scalar_grid():
    w = np.array([-1.5, -1.0, -0.5, 0.5, 0.9, 1.0, 1.1, 1.5, 3.0])
    bias = np.array([-1.0, 0.0, 1.0])
    amp = np.array([-1.0, 1.0])
    W, B, A = np.meshgrid(w, bias, amp, indexing="ij")
    return W.ravel(), B.ravel(), A.ravel()


def run_demo(out: str | Path = "results/demo.zarr", steps: int = 1000, quiet: bool = False):
    """Run the demo, print the summary table and write the Zarr store.

    Parameters
    ----------
    out : path
        The Zarr store to write. An existing demo store there is replaced; any other
        existing non-empty folder, the working directory, the home folder and the like are
        refused (:class:`rnnlab.jobs.paths.PathError`) before anything runs.
    steps : int
        Steps per run.
    quiet : bool
        Print nothing.

    Returns
    -------
    dict of str to xarray.Dataset
        ``{"scalar_<activation>": ..., "vector_<activation>": ...}`` as written to the store
        (one Zarr group each).
    """
    say = (lambda *a: None) if quiet else print
    out = check_target(out, "--out")
    if out.exists() and any(out.iterdir()) and not _is_demo(out):
        raise PathError(
            f"--out: {out} exists and is not an rnnlab demo store: rnnlab removes only what "
            "it wrote; choose a new or empty folder"
        )
    start = _dt.datetime.now(_dt.UTC)
    w, bias, amp = _scalar_grid()
    datasets = {}
    say(f"rnnlab engine demo: {steps} steps per run\n")
    say("Scalar recursions h(t) = f(w h(t-1) + x(t) + b), impulse x(0) = +-1, b = 0:")
    say(
        f"{'activation':>10} {'w':>6} {'memory':>8} {'saturates':>10} {'growth':>9} "
        f"{'ln|w|':>7} {'fixed point':>12}"
    )
    for act in ACTIVATIONS:
        t0 = time.perf_counter()
        res = simulate_rnn(w, 1.0, bias, activation=act, steps=steps, amplitude=amp, record="log")
        dt = time.perf_counter() - t0
        ds = to_dataset(res, coords={"w": w, "bias": bias, "amplitude": amp})
        datasets[f"scalar_{act}"] = ds.set_index(case=["w", "bias", "amplitude"]).unstack("case")
        sel = (bias == 0.0) & (amp == 1.0)
        for i in np.flatnonzero(sel):
            say(
                f"{act:>10} {w[i]:6.2f} {_int(res['memory_horizon'][i]):>8} "
                f"{_int(res['saturation_step'][i]):>10} {res['growth_rate'][i]:9.4f} "
                f"{np.log(abs(w[i])):7.3f} {res['fixed_point'][i]:12.5g}"
            )
        say(f"{'':>10} ({w.size} cases in {dt * 1e3:.1f} ms)")
    say("\nVector recursions, n = 64, gaussian W scaled to a spectral radius, impulse along u:")
    say(
        f"{'activation':>10} {'radius':>7} {'memory':>8} {'growth':>9} {'ln(radius)':>10} "
        f"{'ln(gamma*smax)':>15}"
    )
    radii = np.array([0.5, 0.9, 1.0, 1.1, 1.5, 3.0])
    W = np.stack([recurrent_matrix(64, "gaussian", seed=0, spectral_radius=r) for r in radii])
    for act in ("identity", "tanh"):
        t0 = time.perf_counter()
        res = simulate_rnn(W, activation=act, steps=steps, record="log", amplitude=1e-3)
        dt = time.perf_counter() - t0
        ds = to_dataset(res, coords={"spectral_radius_target": radii})
        datasets[f"vector_{act}"] = ds.swap_dims(case="spectral_radius_target")
        for i, r in enumerate(radii):
            say(
                f"{act:>10} {r:7.2f} {_int(res['memory_horizon'][i]):>8} "
                f"{res['growth_rate'][i]:9.4f} {np.log(r):10.3f} "
                f"{np.log(res['max_singular_value'][i]):15.3f}"
            )
        say(f"{'':>10} ({radii.size} cases with exact 64x64 gradient norms in {dt:.2f} s)")
    end = _dt.datetime.now(_dt.UTC)
    out = Path(out)
    _write(datasets, out, start, end)
    say("\nmemory: steps until the response stays below 1e-3 of its start (never: -1 = kept)")
    say(f"Wrote {len(datasets)} groups to {out} (open with xarray.open_zarr(path, group=...)).")
    return datasets


def _int(v) -> str:
    return "never" if v < 0 else str(int(v))


def _is_demo(path: Path) -> bool:
    import zarr

    try:
        return bool(zarr.open_group(str(path), mode="r").attrs.get(_MARKER))
    except Exception:  # not a Zarr group at all
        return False


def _write(datasets, out: Path, start, end) -> None:
    """Write the groups into a new folder beside ``out``, then put it in ``out``'s place."""
    import zarr

    with replacing(out, _is_demo, "--out", "an rnnlab demo store") as tmp:
        zarr.open_group(str(tmp), mode="w", zarr_format=3).attrs[_MARKER] = True
        for name, ds in datasets.items():
            ds.attrs["start_time"] = start.isoformat()
            ds.attrs["end_time"] = end.isoformat()
            ds.to_zarr(tmp, group=name, mode="w", zarr_format=3, consolidated=False)
