"""Model families as the sweep runner sees them: parameters, validation, cost, and a run.

The runner's core (grid, blocks, store, scheduling) knows nothing of any model: it asks the
family for its parameters, the variables it writes, the cost of a case, and to run a batch of
cases given as flat arrays of parameter values. A new family (``lstm``, ``gru``, ...) is a new
:class:`Family` subclass registered in :data:`FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from rnnlab.engine import (
    ACTIVATIONS,
    WEIGHT_KINDS,
    base_matrix,
    impulse_direction,
    remove_dominant_component,
)
from rnnlab.engine.rnn import PER_STEP_VARIABLES, SUMMARY_VARIABLES, record_steps, simulate_rnn

__all__ = ["FAMILIES", "Family", "Param", "RnnFamily", "get_family"]


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its type, default and allowed values."""

    kind: type
    default: Any
    choices: tuple | None = None
    minimum: float | None = None
    help: str = ""


class Family:
    """The interface of a model family (see :class:`RnnFamily`)."""

    name: str = ""
    params: ClassVar[dict[str, Param]] = {}

    def validate(self, fixed: dict, grid: dict[str, np.ndarray], run, problems: list[str]):
        """Append one line per problem of the model table and the grid."""
        for key in fixed:
            if key not in self.params:
                problems.append(f"model.{key}: {self._unknown(key)}")
            elif key in grid:
                problems.append(
                    f"model.{key}: also a grid dimension: keep it in [model] or in [grid], not both"
                )
        for key in grid:
            if key not in self.params:
                problems.append(f"grid.{key}: {self._unknown(key)}")
        for key, p in self.params.items():
            if key in grid:
                for i, v in enumerate(grid[key]):
                    self._check_value(f"grid.{key}[{i}]", v, p, problems)
            elif key in fixed:
                self._check_value(f"model.{key}", fixed[key], p, problems)

    def _unknown(self, key: str) -> str:
        return f"unknown parameter {key!r} for family {self.name!r}: use one of " + ", ".join(
            self.params
        )

    @staticmethod
    def _check_value(where: str, v, p: Param, problems: list[str]) -> None:
        v = v.item() if isinstance(v, np.generic) else v
        if p.kind is float:
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        elif p.kind is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, p.kind)
        if not ok:
            problems.append(f"{where}: expected {p.kind.__name__}, got {v!r}")
            return
        if p.choices is not None and v not in p.choices:
            problems.append(f"{where}: {v!r} is not allowed: use one of {', '.join(p.choices)}")
        if p.minimum is not None and v < p.minimum:
            problems.append(f"{where}: must be >= {p.minimum}, got {v!r}")
        if p.kind is float and not np.isfinite(v):
            problems.append(f"{where}: must be finite, got {v!r}")

    def case_params(self, fixed: dict, flat: dict[str, np.ndarray], ncase: int) -> dict:
        """Full per-case parameter arrays: grid values where given, else fixed or defaults."""
        out = {}
        for key, p in self.params.items():
            if key in flat:
                out[key] = np.asarray(flat[key])
            else:
                value = fixed.get(key, p.default)
                out[key] = np.full(ncase, value, dtype=object if p.kind is str else None)
        return out


_SCALINGS = ("spectral_radius", "max_singular_value", "gain")


class RnnFamily(Family):
    """h(t) = f(W h(t-1) + C x(t) + b): :func:`rnnlab.engine.simulate_rnn` over a grid."""

    name = "rnn"
    params: ClassVar[dict[str, Param]] = {
        "activation": Param(str, "tanh", (*ACTIVATIONS, "linear")),
        "n": Param(int, 1, minimum=1, help="number of hidden units"),
        "w": Param(float, None, help="the scalar recurrent weight (n = 1 only)"),
        "weights": Param(str, "gaussian", WEIGHT_KINDS, help="kind of recurrent matrix"),
        "spectral_radius": Param(float, None, minimum=0.0),
        "max_singular_value": Param(float, None, minimum=0.0),
        "gain": Param(float, None),
        "bias": Param(float, 0.0, help="bias of every unit"),
        "input_weight": Param(float, 1.0, help="c, or the length of C = c u for n > 1"),
        "amplitude": Param(float, 1.0, help="input amplitude a (negative allowed)"),
        "seed": Param(int, 0, minimum=0, help="seed of the weights, direction and noise"),
        "remove_dominant": Param(bool, False, help="remove u's dominant-eigenvector part"),
    }

    def validate(self, fixed, grid, run, problems):
        super().validate(fixed, grid, run, problems)
        given = [k for k in _SCALINGS if k in fixed or k in grid]
        if len(given) > 1:
            problems.append(
                f"model: {' and '.join(given)} both scale W: give at most one of "
                + ", ".join(_SCALINGS)
            )
        if "w" in fixed or "w" in grid:
            if given:
                problems.append(f"model.w: w is the weight itself: drop {given[0]} or w")
            ns = np.atleast_1d(grid.get("n", fixed.get("n", 1)))
            if np.any(ns != 1):
                problems.append(
                    "model.w: w is the scalar weight (n = 1): for n > 1 use spectral_radius, "
                    "max_singular_value or gain"
                )

    def variables(self, fixed: dict, grid: dict) -> tuple[list[str], list[str]]:
        """(per-step, summary) variable names this spec writes.

        ``state`` and ``fixed_point`` exist only when every case has n = 1; a summary named
        like a grid dimension (``spectral_radius``, ``max_singular_value``) is left out, the
        coordinate carrying the value.
        """
        ns = np.atleast_1d(grid.get("n", fixed.get("n", 1)))
        scalar_only = bool(np.all(ns == 1))
        per_step = [v for v in PER_STEP_VARIABLES if scalar_only or v != "state"]
        summary = [
            v for v in SUMMARY_VARIABLES if (scalar_only or v != "fixed_point") and v not in grid
        ]
        return per_step, summary

    def case_seconds(self, params: dict, run) -> np.ndarray:
        """Estimated single-core seconds per case (measured on the 2-core AVX-512 machine).

        n = 1: 6.5 ns per step (lanes of 16 cases). n > 1: per step, 2 matrix-vector products
        (4 n^2 flops) and, with the gradient, a BLAS n x n x n product (2 n^3 flops) at about
        30 GFLOP/s.
        """
        n = params["n"].astype(float)
        grad = 0.0 if run.gradient == "none" else 1.0
        probes = np.where((run.gradient == "estimate") | (n > 128), run.gradient_probes, n)
        per_step = np.where(
            n == 1, 6.5e-9, 2e-7 + (4 * n**2 + grad * (2 * n**2 * probes + 4 * n**2)) / 30e9
        )
        return per_step * run.steps

    def run_cases(self, params: dict, run) -> dict[str, np.ndarray]:
        """Run cases given as flat per-case parameter arrays; return per-variable arrays."""
        ncase = len(params["n"])
        acts = np.array([("identity" if a == "linear" else a) for a in params["activation"]])
        ns = params["n"].astype(np.int64)
        out: dict[str, np.ndarray] = {}
        for act in np.unique(acts):
            for n in np.unique(ns):
                idx = np.flatnonzero((acts == act) & (ns == n))
                if idx.size == 0:
                    continue
                res = self._run_group(act, int(n), {k: v[idx] for k, v in params.items()}, run)
                for name, arr in res.data.items():
                    if name not in out:
                        shape = (ncase, *arr.shape[1:])
                        fill = (
                            -1
                            if arr.dtype.kind == "i"
                            else (False if arr.dtype == bool else np.nan)
                        )
                        out[name] = np.full(shape, fill, dtype=arr.dtype)
                    out[name][idx] = arr
        return out

    def _run_group(self, act: str, n: int, p: dict, run):
        m = len(p["seed"])
        seeds = p["seed"].astype(np.int64)
        if n == 1 and _is_set(p["w"]).all():
            W = p["w"].astype(np.float64)
        else:
            W = np.empty((m, n, n)) if n > 1 else np.empty(m)
            for i in range(m):
                base, rho, smax = _base(int(seeds[i]), n, str(p["weights"][i]))
                factor = 1.0
                for key, current in (
                    ("spectral_radius", rho),
                    ("max_singular_value", smax),
                    ("gain", 1.0),
                ):
                    value = p[key][i]
                    if _given(value):
                        factor = float(value) / current if current else np.nan
                if n == 1:
                    W[i] = base[0, 0] * factor
                else:
                    W[i] = base * factor
        c = p["input_weight"].astype(np.float64)
        if n == 1:
            C = c
            b = p["bias"].astype(np.float64)
        else:
            u = np.stack([impulse_direction(n, int(s)) for s in seeds])
            C = c[:, None] * u
            b = np.repeat(p["bias"].astype(np.float64)[:, None], n, axis=1)
        if n > 1:
            for i in np.flatnonzero(p["remove_dominant"].astype(bool)):
                C[i] = remove_dominant_component(W[i], C[i])
        return simulate_rnn(
            W,
            C,
            b,
            activation=act,
            steps=run.steps,
            input=run.input,
            amplitude=p["amplitude"].astype(np.float64),
            noise_seed=seeds,
            record=run.record,
            num_records=run.num_records,
            dtype=run.dtype,
            gradient=run.gradient,
            gradient_probes=min(run.gradient_probes, n),
            memory_rtol=run.memory_rtol,
            saturation_tol=run.saturation_tol,
            bound=run.bound,
            parallel=False,
        )

    @staticmethod
    def time_steps(run) -> np.ndarray:
        return record_steps(run.steps, run.record, run.num_records)


def _given(v) -> bool:
    """A parameter value that was set (not None, not a NaN placeholder)."""
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _is_set(a: np.ndarray) -> np.ndarray:
    return np.array([_given(v) for v in a])


@lru_cache(maxsize=256)
def _base(seed: int, n: int, kind: str) -> tuple[np.ndarray, float, float]:
    """The base matrix of (seed, n, kind) with its spectral radius and largest singular value."""
    B = base_matrix(n, kind, seed)
    return B, float(np.abs(np.linalg.eigvals(B)).max()), float(np.linalg.norm(B, 2))


FAMILIES: dict[str, Family] = {"rnn": RnnFamily()}


def get_family(name: str, problems: list[str] | None = None) -> Family | None:
    """The family called ``name``; an unknown name is a problem (or a ValueError)."""
    if name in FAMILIES:
        return FAMILIES[name]
    msg = f"model.family: unknown family {name!r}: use one of {', '.join(FAMILIES)}"
    if not name:
        msg = f"model.family: missing: set family to one of {', '.join(FAMILIES)}"
    if problems is None:
        raise ValueError(msg)
    problems.append(msg)
    return None
