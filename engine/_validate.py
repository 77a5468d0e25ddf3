"""Validation and allocation, shared by every public ``simulate_*`` function.

Each check raises one ``ValueError`` whose message names the argument and says what to do;
:func:`check_memory` refuses a run whose arrays would not fit in memory before anything is
allocated. :func:`run_settings` turns the settings common to every family into the kernels'
``iopt``/``fopt`` arrays (see :mod:`._tracking`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from . import _tracking as K
from ._memory import check_memory
from ._numerics import INPUT_ARRAY, INPUT_IMPULSE, INPUT_NOISE, INPUT_STEP
from .weights import case_rng

__all__ = [
    "INPUT_KINDS",
    "RunSettings",
    "as_cases",
    "check_choice",
    "check_int",
    "check_memory",
    "input_arrays",
    "noise_keys",
    "record_steps",
    "run_settings",
]

INPUT_KINDS = {"impulse": INPUT_IMPULSE, "step": INPUT_STEP, "noise": INPUT_NOISE}

#: Most steps of one run (the spec's bound too).
MAX_STEPS = 10**9


def check_choice(name: str, value, choices) -> None:
    """``value`` must be one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """An integer (not a bool, not a float with a fraction) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | float | np.floating):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, float | np.floating) and not float(value).is_integer():
        raise ValueError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if v < minimum or (maximum is not None and v > maximum):
        upper = f" and <= {maximum:,}" if maximum is not None else ""
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {v:,}")
    return v


def finite_numbers(name: str, x, what: str = "numbers") -> np.ndarray:
    """``x`` as a float64 array of finite numbers, or one ValueError naming the argument: a
    user's weights, inputs or amplitudes (a non-finite weight makes every state NaN from the
    first step on); ``what`` says what the argument must be."""
    if x is None or isinstance(x, str | bytes | dict):
        raise ValueError(f"{name} must be {what}, got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {what}, got {type(x).__name__}") from None
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        at = f" at index {where if len(where) > 1 else where[0]}" if where else ""
        raise ValueError(f"{name} holds {arr[where]}{at}: give finite numbers")
    return arr


def _integers(name: str, x) -> np.ndarray:
    """``x`` as whole numbers: integers as they are (a float64 detour would round them above
    2**53), floats only if whole."""
    try:
        exact = np.asarray(x)
    except (TypeError, ValueError):
        exact = None
    if exact is not None and exact.dtype.kind in "biu":
        return exact
    arr = finite_numbers(name, x)
    if not np.array_equal(arr, np.round(arr)):
        raise ValueError(f"{name} must be integers, got {x!r}")
    return arr


def as_cases(x, ncase: int, trailing: tuple[int, ...], name: str, dtype) -> np.ndarray:
    """``x`` broadcast to (ncase, *trailing): a new, writeable, C-contiguous array of ``dtype``
    (one array type per dtype, so that the kernels are compiled once). Finite numbers only;
    an integer ``dtype`` takes integer values only (1.5 is not a seed)."""
    integer = np.dtype(dtype).kind in "iu"
    arr = _integers(name, x) if integer else finite_numbers(name, x)
    arr = arr.astype(dtype)
    try:
        out = np.broadcast_to(arr, (ncase, *trailing))
    except ValueError:
        want = (ncase, *trailing)
        raise ValueError(
            f"{name} has shape {arr.shape}; it must broadcast to {want} (cases, ...)"
        ) from None
    return np.array(out, dtype=dtype, order="C")


def record_steps(steps: int, record="log", num: int = 100) -> np.ndarray:
    """The steps at which per-step variables are recorded.

    Parameters
    ----------
    steps : int
        Number of simulated steps (t = 0 ... steps - 1).
    record : {"all", "log", "none"} or array of int
        ``"all"``: every step. ``"log"``: about ``num`` log-spaced steps, always including 0 and
        the last step. ``"none"``: nothing (summaries only). An array: those steps.
    num : int
        Number of log-spaced records (the result can be smaller: duplicates are dropped).

    Returns
    -------
    numpy.ndarray
        Strictly increasing int64 steps in [0, steps).
    """
    steps = check_int("steps", steps, 1, MAX_STEPS)
    if isinstance(record, str):
        if record == "all":
            return np.arange(steps, dtype=np.int64)
        if record == "none":
            return np.zeros(0, dtype=np.int64)
        if record == "log":
            num = check_int("num_records", num, 2)
            if steps == 1:
                return np.zeros(1, dtype=np.int64)
            pts = np.geomspace(1, steps - 1, min(num, steps) - 1)  # never more points than steps
            return np.unique(np.concatenate([[0], np.rint(pts).astype(np.int64), [steps - 1]]))
        raise ValueError(
            f"record must be 'all', 'log', 'none' or an array of steps, got {record!r}"
        )
    rec = np.asarray(record, dtype=np.int64).ravel()
    if rec.size and (rec.min() < 0 or rec.max() >= steps):
        raise ValueError(f"record steps must lie in [0, {steps - 1}]")
    return np.unique(rec)


def noise_keys(seeds, n: int = 1) -> np.ndarray:
    """The noise keys of cases with the given seeds (uint64).

    Cases with the same ``(seed, n)`` get the same noise sequence (common random numbers).
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    if np.any(seeds < 0):
        raise ValueError("noise seeds must be >= 0")
    uniq, inv = np.unique(seeds, return_inverse=True)
    keys = np.array(
        [case_rng(int(s), n, "noise").integers(0, 2**63, dtype=np.int64) for s in uniq],
        dtype=np.int64,
    ).astype(np.uint64)
    return keys[inv].reshape(seeds.shape)


def input_arrays(input, ncase: int, steps: int, noise_seed, n: int):
    """The kernels' input arguments: (kind code, xs, noise keys, input name).

    ``input`` is a kind name (:data:`INPUT_KINDS`) or an array broadcastable to
    (cases, steps); noise keys depend on ``(noise_seed, n)`` (see :func:`noise_keys`).
    """
    if isinstance(input, str):
        check_choice("input", input, (*INPUT_KINDS, "an array"))
        kind = INPUT_KINDS[input]
        xs = np.zeros((ncase, 0), dtype=np.float64)
        name = input
    else:
        kind = INPUT_ARRAY
        check_memory(8 * ncase * steps, "input: give fewer cases or steps")
        xs = as_cases(input, ncase, (steps,), "input", np.float64)
        name = "array"
    seeds = as_cases(noise_seed, ncase, (), "noise_seed", np.int64)
    keys = noise_keys(seeds, n) if kind == INPUT_NOISE else np.zeros(ncase, dtype=np.uint64)
    return kind, xs, keys, name


@dataclass(frozen=True)
class RunSettings:
    """The validated settings common to every family."""

    steps: int
    dtype: np.dtype
    records: np.ndarray | None  # None: every step (made when asked, after the memory check)
    memory_rtol: float
    saturation_tol: float
    bound: float

    @property
    def nrec(self) -> int:
        """How many steps are recorded (without making the array of them)."""
        return self.steps if self.records is None else len(self.records)

    @property
    def rec(self) -> np.ndarray:
        """The recorded steps."""
        return np.arange(self.steps, dtype=np.int64) if self.records is None else self.records

    @property
    def t_half(self) -> int:
        return (self.steps - 1) // 2

    def attrs(self) -> dict:
        return dict(
            steps=self.steps,
            dtype=self.dtype.name,
            memory_rtol=self.memory_rtol,
            saturation_tol=self.saturation_tol,
            bound=self.bound,
        )

    def options(self, plan, kind, *, loss_step=-1, untied=False, activation=0):
        """The kernels' ``iopt`` and ``fopt`` for an output plan and an input kind."""
        iopt = np.zeros(K.N_IOPT, dtype=np.int64)
        iopt[K.O_STEPS] = self.steps
        iopt[K.O_T_HALF] = self.t_half
        iopt[K.O_INPUT] = kind
        iopt[K.O_RESPONSE] = plan.needs("response")
        iopt[K.O_GRADIENT] = plan.needs("gradient")
        iopt[K.O_SATURATION] = plan.needs("saturation")
        iopt[K.O_LOSS_STEP] = loss_step if plan.needs("bptt") else -1
        iopt[K.O_UNTIED] = untied
        iopt[K.O_ACTIVATION] = activation
        fopt = np.zeros(K.N_FOPT)
        fopt[K.F_BOUND] = self.bound
        fopt[K.F_MEMORY_RTOL] = self.memory_rtol
        fopt[K.F_SATURATION_TOL] = self.saturation_tol
        return iopt, fopt


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def run_settings(
    steps, dtype, record, num_records, memory_rtol, saturation_tol, bound
) -> RunSettings:
    """Validate the settings common to every family."""
    check_choice("dtype", dtype, ("float64", "float32"))
    fdt = np.dtype(dtype)
    steps = check_int("steps", steps, 1, MAX_STEPS)
    # every step: the array of 0 ... steps - 1 is made after the memory check (10^9 steps)
    every = isinstance(record, str) and record == "all"
    rec = None if every else record_steps(steps, record, num_records)
    if saturation_tol is None:
        saturation_tol = 1e-12 if fdt == np.float64 else 1e-5
    return RunSettings(
        steps=steps,
        dtype=fdt,
        records=rec,
        memory_rtol=_positive("memory_rtol", memory_rtol),
        saturation_tol=_positive("saturation_tol", saturation_tol),
        bound=_positive("bound", bound),
    )
