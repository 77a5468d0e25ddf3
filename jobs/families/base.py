"""The interface every model family implements, and helpers they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnlab.engine import (
    CAPACITY_OUTPUTS,
    LYAPUNOV_OUTPUTS,
    OUTPUTS,
    record_steps,
)
from rnnlab.engine.fixedpoints import FIXED_POINT_OUTPUTS
from rnnlab.engine.network import CAPACITY_MIN_STEPS, capacity_fits, delays_for

from ..schema import VARIABLES

__all__ = [
    "MEANFIELD_OUTPUTS",
    "OUTPUT_HINTS",
    "Family",
    "Param",
    "UpdateFamily",
    "capacity_bytes",
    "capacity_seconds",
    "lyapunov_bytes",
    "lyapunov_seconds",
    "own_table",
    "recurrence_options",
    "run_grouped",
    "with_meanfield",
]


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
    #: Every variable the family can write, with its kind and dtype (the recurrence
    #: kernels' table by default; a family of other kernels brings its own).
    table: ClassVar[dict] = OUTPUTS
    #: What the time axis counts, and whether the run table's input applies.
    step_name: ClassVar[str] = "step"
    has_input: ClassVar[bool] = True

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
                for i in self._suspects(grid[key], p):
                    self._check_value(f"grid.{key}[{i}]", grid[key][i], p, problems)
            elif key in fixed:
                self._check_value(f"model.{key}", fixed[key], p, problems)
        self.check_run(fixed, grid, run, problems)

    def _unknown(self, key: str) -> str:
        return f"unknown parameter {key!r} for family {self.name!r}: use one of " + ", ".join(
            self.params
        )

    @staticmethod
    def _suspects(values: np.ndarray, p: Param):
        """Indices of the grid values to check one by one: for numbers of the right kind,
        only the non-finite and too small ones (found at once: a grid dimension may hold
        millions of values); else all."""
        kinds = {float: "iuf", int: "iu"}.get(p.kind, "")
        if p.choices is None and values.dtype.kind in kinds:
            bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.size, bool)
            if p.minimum is not None:
                bad |= values < p.minimum
            return np.flatnonzero(bad)
        return range(values.size)

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

    def check_run(self, fixed: dict, grid: dict, run, problems: list[str]) -> None:
        """Problems of settings that depend on the run table (loss_step < steps, outputs)."""
        if run is None:
            return
        ls = np.atleast_1d(grid.get("loss_step", fixed.get("loss_step")))
        if "loss_step" in self.params and ls[0] is not None and np.max(ls) >= run.steps:
            problems.append(
                f"model.loss_step: {int(np.max(ls))} is not a simulated step: "
                f"make it < run.steps = {run.steps}"
            )
        if run.outputs is None:
            return
        if _capacity_asked(run) and run.input != "noise":
            problems.append(
                f"run.input: memory_capacity reads out a random input signal, not the {run.input}"
                ' input: give input = "noise"'
            )
        if _capacity_asked(run) and not capacity_fits(run.steps):
            problems.append(f"run.steps: memory_capacity needs at least {CAPACITY_MIN_STEPS} steps")
        if _capacity_asked(run) and delays_for(run.steps, run.num_delays) > max(
            (run.steps - 1) // 2, 1
        ):
            problems.append(
                f"run.num_delays: {run.num_delays} delays need a window of as many steps: "
                f"make it <= (run.steps - 1) // 2 = {max((run.steps - 1) // 2, 1)} or run "
                "more steps"
            )
        if not run.outputs:
            problems.append("run.outputs: empty list: name the variables to store, or leave it out")
        try:
            available, _ = self.outputs(fixed, grid)
        except (TypeError, ValueError):  # a bad model value, reported on its own line
            return
        for i, name in enumerate(run.outputs):
            if name not in available:
                why = OUTPUT_HINTS.get(name, "")
                problems.append(
                    f"run.outputs[{i}]: {name!r} is not an output of this sweep"
                    + (f" ({why})" if why else "")
                    + f": use names from {', '.join(available)}"
                )
            elif self.table[name].kind == "vector":
                varying = [k for k in ("n", "layers") if k in grid]
                if varying:
                    problems.append(
                        f"run.outputs[{i}]: {name} has one entry per unit: it needs a fixed "
                        f"{' and '.join(varying)} (not a grid dimension)"
                    )

    def outputs(self, fixed: dict, grid: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(available, default) variables of a sweep of this family."""
        raise NotImplementedError

    def variables(self, fixed: dict, grid: dict, run) -> dict[str, str]:
        """The variables this sweep writes, each with its kind ("step", "summary",
        "vector" or "weights"): ``run.outputs`` or the family's default, in the engine's
        order. A summary named like a grid dimension (``spectral_radius`` swept as a
        dimension) is left out: the coordinate carries the value."""
        available, default = self.outputs(fixed, grid)
        asked = default if run.outputs is None else run.outputs
        names = [v for v in available if v in asked]
        return {
            v: self.table[v].kind
            for v in names
            if not (self.table[v].kind == "summary" and v in grid)
        }

    def units(self, fixed: dict, grid: dict) -> int:
        """Length of the ``unit`` dimension of vector variables (n times the layers)."""
        return int(fixed.get("n", self.params["n"].default)) * int(fixed.get("layers", 1))

    def parameters(self, fixed: dict, grid: dict) -> int:
        """Length of the ``parameter`` dimension of weights variables (the grid's largest
        network); families without such variables have none."""
        return 0

    def state_size(self, fixed: dict, grid: dict) -> int:
        """Length of the ``component`` dimension of stored fixed points (the grid's largest
        network's flat state); families without them have none."""
        return 0

    @staticmethod
    def time_steps(run) -> np.ndarray:
        """The recorded steps of the store's ``time`` dimension."""
        return record_steps(run.steps, run.record, run.num_records)

    def kernel_variants(self, fixed: dict, grid: dict) -> list[dict]:
        """Grid values that select different compiled kernels, one dict per kernel (the
        runner compiles each once before the workers start, see ``warm_kernels``). The
        layered kernels depend only on the family's cell and the run's precision."""
        return [{}]

    def variable_attrs(self, name: str) -> dict:
        """The stored attributes of a variable (the schema's; a family may say more)."""
        long_name, units, description = VARIABLES[name]
        return {"long_name": long_name, "units": units, "description": description}

    def case_bytes(self, params: dict, run) -> np.ndarray:
        """Working memory of each case in a block, beyond its results: weights, their
        transient copies and the tangent matrices (conservative; the results are counted
        by the planner)."""
        return np.zeros(len(params["seed"]))

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


#: Why a variable may be missing from a sweep, for the error message.
OUTPUT_HINTS = {
    "state": "n = 1 sweeps only: use state_norm",
    "fixed_point": "n = 1 sweeps only: use fixed_point_norm",
    "hidden_state": "n > 1 sweeps only: use state for n = 1",
    "log10_input_weight_grad": "it needs model.loss_step",
    "log10_layer_weight_grad": "family mlp only",
    "layer_weight_grad_participation": "family mlp only",
    "cell_norm": "family lstm only",
    "cell_state": "family lstm only",
    "log10_cell_gradient_norm": "family lstm only",
    "log10_carousel_gain": "family lstm only",
    "cell_growth_rate": "family lstm only",
    "trained_weights": "family train only",
    **dict.fromkeys(FIXED_POINT_OUTPUTS, "family train only (fixed points of trained networks)"),
    **dict.fromkeys(
        CAPACITY_OUTPUTS,
        "families rnn (n > 1), lstm, gru and cec",
    ),
    **dict.fromkeys(
        LYAPUNOV_OUTPUTS,
        "families rnn (n > 1), lstm, gru, cec and mlp: for n = 1 the one exponent is growth_rate",
    ),
}


def _given(v) -> bool:
    """A parameter value that was set (not None, not a NaN placeholder)."""
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _is_set(a: np.ndarray) -> np.ndarray:
    return np.array([_given(v) for v in a])


def run_grouped(params: dict, keys: tuple[str, ...], run_group) -> dict[str, np.ndarray]:
    """Run the cases in groups of equal ``keys`` values and scatter the results back.

    ``run_group(sub_params)`` returns an engine result (or a dict of per-case arrays) for the
    cases of one group; the
    per-variable outputs are filled with -1 (int), False (bool) or NaN where a group did not
    write (never, when every group writes the same variables).
    """
    ncase = len(next(iter(params.values())))
    labels = np.array(
        ["\x1f".join(str(params[k][i]) for k in keys) for i in range(ncase)], dtype=object
    )
    out: dict[str, np.ndarray] = {}
    for label in dict.fromkeys(labels):
        idx = np.flatnonzero(labels == label)
        res = run_group({k: v[idx] for k, v in params.items()})
        for name, arr in (res if isinstance(res, dict) else res.data).items():
            if name not in out:
                fill = -1 if arr.dtype.kind == "i" else (False if arr.dtype == bool else np.nan)
                out[name] = np.full((ncase, *arr.shape[1:]), fill, dtype=arr.dtype)
            out[name][idx] = arr
    return out


class UpdateFamily(Family):
    """A family of descents or training runs: the time axis counts updates, every variable
    is in the family's own table (all stored by default), and there is no input signal."""

    step_name: ClassVar[str] = "update"
    has_input: ClassVar[bool] = False
    #: Why the run table's input does not apply, for the refusal.
    no_input_why: ClassVar[str] = "it makes no use of it"

    def outputs(self, fixed, grid):
        """Every variable of the family's table, by default all of them."""
        names = tuple(self.table)
        return names, names

    def units(self, fixed, grid):
        return 0

    def variable_attrs(self, name: str) -> dict:
        """The time axis counts updates."""
        return super().variable_attrs("update" if name == "time" else name)

    def check_run(self, fixed, grid, run, problems):
        """The run table's input does not apply: refused when set."""
        super().check_run(fixed, grid, run, problems)
        if run is not None and run.input != "impulse":
            problems.append(f"run.input: {self.no_input_why}: drop run.input")


def own_table(steps, summaries: dict) -> dict:
    """A family's output table: per-update float64 variables and per-case summaries with
    their dtypes."""
    from rnnlab.engine._tracking import Output

    return {
        **{v: Output(v, "step", (), -1, "float64") for v in steps},
        **{v: Output(v, "summary", (), -1, d) for v, d in summaries.items()},
    }


#: Mean-field theory's per-case variables (the keys of rnnlab.analysis.meanfield.depth_scales),
#: stored beside a deep or random recurrent net's simulation when run.outputs lists them.
MEANFIELD_OUTPUTS = ("q_star", "chi_1", "signal_depth_scale", "gradient_depth_scale")
MEANFIELD_TABLE = own_table((), dict.fromkeys(MEANFIELD_OUTPUTS, "float64"))


def with_meanfield(run_cases, params: dict, outputs, theory_args) -> dict[str, np.ndarray]:
    """``run_cases(params, engine_outputs)`` for the simulated variables, and the asked-for
    mean-field variables beside them: ``theory_args(params)`` gives per case (activation,
    sigma_w, sigma_b, bias) arrays, NaN sigma_w where the theory does not apply; each
    distinct case is solved once (rnnlab.analysis.meanfield.depth_scales)."""
    from rnnlab.analysis.meanfield import depth_scales

    theory = [o for o in outputs if o in MEANFIELD_OUTPUTS]
    engine = [o for o in outputs if o not in MEANFIELD_OUTPUTS]
    out = run_cases(params, engine) if engine else {}
    if theory:
        cases = list(zip(*theory_args(params), strict=True))
        solved = {c: depth_scales(str(c[0]), *map(float, c[1:])) for c in set(cases)
                  if np.isfinite(float(c[1]))}  # fmt: skip
        for name in theory:
            out[name] = np.array([solved[c][name] if c in solved else np.nan for c in cases])
    return out


def recurrence_options(run, inputs: bool = True) -> dict:
    """The run table's settings of a recurrence kernel, as the engine's keywords (one home
    for what every recurrence family passes on); ``inputs``: the kernel reads an input
    signal (deep nets do not: no memory capacity)."""
    delays = {"num_delays": run.num_delays} if inputs else {}
    return dict(
        **delays,
        record=run.record,
        num_records=run.num_records,
        dtype=run.dtype,
        gradient="none" if run.gradient == "none" else "exact",
        memory_rtol=run.memory_rtol,
        saturation_tol=run.saturation_tol,
        bound=run.bound,
        num_exponents=run.num_exponents,
        parallel=False,
    )


def _asks(run, names) -> bool:
    """Whether the sweep stores any of ``names`` (it lists its outputs)."""
    return bool(set(names) & set(run.outputs or ()))


def _capacity_asked(run) -> bool:
    return _asks(run, CAPACITY_OUTPUTS)


def capacity_seconds(run, dim) -> np.ndarray:
    """Single-core seconds per case of the memory-capacity tracker when the sweep stores its
    variables: per step the state's second moments and its products with K = num_delays
    inputs (dim^2 + dim K multiply-adds) at about 2 GFLOP/s, and the two solves at the end."""
    if not _capacity_asked(run):
        return np.zeros(np.shape(dim))
    K = delays_for(run.steps, run.num_delays)
    return (2 * (dim**2 + dim * K) * run.steps / 2 + 4 * dim**3 + 8 * dim**2 * K) / 2e9


def capacity_bytes(run, dim) -> np.ndarray:
    """Working memory of the memory-capacity tracker: two halves' moments."""
    if not _capacity_asked(run):
        return np.zeros(np.shape(dim))
    return 8.0 * 2 * dim * (dim + delays_for(run.steps, run.num_delays)) * 2


def lyapunov_seconds(run, dim, flops_per_column) -> np.ndarray:
    """Single-core seconds per case of the Lyapunov tracker when the sweep stores its
    variables: per step and vector ``flops_per_column`` (the tangent) and 4 ``dim`` k (the
    QR of k = num_exponents vectors of ``dim`` entries), at about 30 GFLOP/s (measured: n =
    200, k = 200, 2000 steps in 2.5 s)."""
    if not _asks(run, LYAPUNOV_OUTPUTS):
        return np.zeros(np.shape(dim))
    k = np.minimum(run.num_exponents, dim)
    return k * (flops_per_column + 4 * dim * k) / 30e9 * run.steps


def lyapunov_bytes(run, dim) -> np.ndarray:
    """Working memory of the Lyapunov tracker: three copies of k vectors of ``dim``."""
    if not _asks(run, LYAPUNOV_OUTPUTS):
        return np.zeros(np.shape(dim))
    return 24.0 * np.minimum(run.num_exponents, dim) * dim
