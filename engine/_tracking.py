"""What a run can measure, what each measurement costs, and the per-case summaries: one home
for the outputs of every kernel.

The kernels always run the recursion itself (one activation per unit and step) and watch its
norm for a blow-up. Everything else is a *tracker*, switched on only when a requested output
needs it:

============  =====================================================================
tracker       what it adds per step
============  =====================================================================
response      a second run hbar without the input at t = 0, and ||h - hbar||
gradient      the Jacobian product dh(t)/dh(0) (k tangent columns), renormalised
saturation    ||h(t) - h(t-1)|| (and the LSTM cell's), for the convergence step
bptt          backpropagation through time of a loss at ``loss_step`` (after the run)
lyapunov      k tangent vectors propagated and re-orthonormalised (QR) every step
capacity      the moments of h(t) and of the last K inputs, for the memory capacity
weights       eigenvalues and singular values of W (in NumPy, once per case)
============  =====================================================================

:data:`OUTPUTS` lists every variable with the trackers it needs; docs/engine.md shows the
same table. The jitted part: :func:`track` (one step of a case's trackers) and
:func:`finish_case` (the per-case summaries), shared by the scalar and the layered kernels;
the Python part: :func:`plan_outputs` (names -> switches and record rows) and
:func:`collect` (kernel arrays -> the result's variables).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import jit
from ._numerics import log_slope

__all__ = [
    "MEMORY_CLASSES",
    "OUTPUTS",
    "TRACKERS",
    "Output",
    "OutputPlan",
    "collect",
    "finish_case",
    "memory_class",
    "plan_outputs",
]

# Rows of the recorded per-step scalars. A kernel writes row r into ``rec_out[i, slots[r], k]``
# when ``slots[r] >= 0`` (only requested rows are allocated).
R_STATE = 0  # h(t) for n = 1 (signed), else ||h(t)||
R_RESPONSE = 1
R_GRADIENT = 2
R_CELL = 3
R_CELL_GRADIENT = 4
R_GATE = 5  # 5, 6, 7: the cell's gate means, in the order of the cell's GATE_MEANS
R_INPUT_GRAD = 8
R_CAROUSEL = 9  # log10 of the LSTM's direct cell path, max over units of prod f(s)
R_WEIGHT_GRAD = 10  # log10 ||dL/dA_t||_F, A_t layer 0's recurrent (deep nets: layer t's) weight
R_WEIGHT_GRAD_PR = 11  # the participation ratio of dL/dA_t's entries, over their number
N_ROWS = 12

# Columns of the per-case summaries ``sums`` (cases, N_SUMS), float64.
S_BLOWUP = 0
S_MEMORY = 1
S_SATURATION = 2
S_GROWTH = 3
S_RESPONSE_GROWTH = 4
S_CELL_GROWTH = 5
S_BOUNDED = 6
S_MAX_NORM = 7
S_FINAL = 8  # the final state (n = 1, signed) or its norm
N_SUMS = 9

# Integer settings of a run (the kernels' ``iopt``) ...
O_STEPS = 0
O_T_HALF = 1
O_INPUT = 2
O_RESPONSE = 3  # tracker switches: 0 or 1
O_GRADIENT = 4
O_SATURATION = 5
O_LOSS_STEP = 6  # -1: no backpropagation through time
O_UNTIED = 7  # 1: W_hh changes with t and is shared by the cases (deep feed-forward nets)
O_ACTIVATION = 8
N_IOPT = 9
# ... and float settings (``fopt``).
F_BOUND = 0
F_MEMORY_RTOL = 1
F_SATURATION_TOL = 2
N_FOPT = 3

# A case's running trackers (the kernels' ``trk``, float64; steps are exact integers).
K_R0 = 0  # response(0)
K_LAST_MEMORY = 1  # last step with response > memory_rtol * response(0)
K_LAST_CHANGE = 2  # last step the state moved by more than the saturation tolerance
K_MAX_NORM = 3
K_BLOWUP = 4
K_LOG_GRAD = 5  # ln ||dh(t)/dh(0)|| at the last evaluation
K_LOG_GRAD_HALF = 6
K_LOG_CELL = 7
K_LOG_CELL_HALF = 8
K_LOG_RESP = 9
K_LOG_RESP_HALF = 10
K_SCALE_H = 11  # ln of the factors taken out of the h columns of the Jacobian product
K_SCALE_C = 12
N_TRK = 13


@jit
def switches(iopt):
    """(steps, t_half, input kind, response on, gradient on, saturation on) of a run."""
    return (
        iopt[O_STEPS],
        iopt[O_T_HALF],
        iopt[O_INPUT],
        iopt[O_RESPONSE] != 0,
        iopt[O_GRADIENT] != 0,
        iopt[O_SATURATION] != 0,
    )


#: The per-case summaries every run has (the families add theirs).
SUMMARIES = (
    "blowup_step",
    "memory_horizon",
    "memory_class",
    "saturation_step",
    "growth_rate",
    "response_growth_rate",
    "bounded",
    "max_state_norm",
)


@jit
def reset(trk):
    """Trackers of a new case."""
    for j in range(N_TRK):
        trk[j] = 0.0
    trk[K_LAST_MEMORY] = -1.0
    trk[K_LAST_CHANGE] = -1.0
    trk[K_BLOWUP] = -1.0


@jit
def track(trk, t, resp, change, hn, fopt):
    """One step of a case's trackers, from its response, state change and state norm (NaN
    for a tracker that is off: its test is then never true)."""
    if t == 0:
        trk[K_R0] = resp
    if resp > fopt[F_MEMORY_RTOL] * trk[K_R0]:
        trk[K_LAST_MEMORY] = t
    if change > fopt[F_SATURATION_TOL] * max(1.0, hn):
        trk[K_LAST_CHANGE] = t
    if hn > trk[K_MAX_NORM]:
        trk[K_MAX_NORM] = hn
    if not (hn < np.inf) and trk[K_BLOWUP] < 0:  # hn < inf is False for inf and NaN
        trk[K_BLOWUP] = t


@jit
def finish_case(sums, i, trk, final, iopt, fopt):
    """Turn case i's trackers into its summaries (``sums[i]``). NaN where a tracker was off."""
    last = iopt[O_STEPS] - 1
    t_half = iopt[O_T_HALF]
    blow = trk[K_BLOWUP]
    sums[i, S_BLOWUP] = blow
    sums[i, S_MAX_NORM] = trk[K_MAX_NORM]
    sums[i, S_FINAL] = final
    sums[i, S_MEMORY] = np.nan
    sums[i, S_SATURATION] = np.nan
    sums[i, S_GROWTH] = np.nan
    sums[i, S_RESPONSE_GROWTH] = np.nan
    sums[i, S_CELL_GROWTH] = np.nan
    if blow >= 0:
        sums[i, S_BOUNDED] = 0.0
        if iopt[O_RESPONSE]:
            sums[i, S_MEMORY] = -1.0
        if iopt[O_SATURATION]:
            sums[i, S_SATURATION] = -1.0
        return
    sums[i, S_BOUNDED] = 1.0 if trk[K_MAX_NORM] <= fopt[F_BOUND] else 0.0
    span = last - t_half
    if iopt[O_RESPONSE]:
        lm = trk[K_LAST_MEMORY]
        sums[i, S_MEMORY] = 0.0 if trk[K_R0] == 0.0 else (lm + 1.0 if lm < last else -1.0)
        if span > 0:
            sums[i, S_RESPONSE_GROWTH] = log_slope(trk[K_LOG_RESP], trk[K_LOG_RESP_HALF], span)
    if iopt[O_SATURATION]:
        lc = trk[K_LAST_CHANGE]
        sums[i, S_SATURATION] = lc + 1.0 if lc < last else -1.0
    if iopt[O_GRADIENT] and span > 0:
        sums[i, S_GROWTH] = log_slope(trk[K_LOG_GRAD], trk[K_LOG_GRAD_HALF], span)
        sums[i, S_CELL_GROWTH] = log_slope(trk[K_LOG_CELL], trk[K_LOG_CELL_HALF], span)


#: The trackers, in the order of the table above.
TRACKERS = ("response", "gradient", "saturation", "bptt", "lyapunov", "capacity", "weights")


@dataclass(frozen=True)
class Output:
    """One variable a run can return.

    Attributes
    ----------
    name : str
        The store schema's name.
    kind : {"step", "summary", "vector", "spectrum", "delays", "weights", "points", \
"point_states", "point_eigenvalues"}
        Per recorded step (cases, time), per case (cases,), a vector per recorded step
        (cases, time, units), the k Lyapunov exponents of a case (cases, exponents), a value
        per delay of the input (cases, delays), a network's flattened weights (cases,
        parameters; the train family), or a value, the state or the eigenvalues of each
        fixed point found (cases, points[, components]; the train family).
    needs : tuple of str
        The trackers it needs (none: the recursion itself).
    index : int
        Its row ``R_*`` (step), column ``S_*`` (summary), or -1.
    dtype : str
        "state" (the run's precision), "float64", "complex128", "int64" or "bool".
    """

    name: str
    kind: str
    needs: tuple[str, ...]
    index: int
    dtype: str


OUTPUTS: dict[str, Output] = {
    o.name: o
    for o in (
        Output("state", "step", (), R_STATE, "state"),
        Output("state_norm", "step", (), R_STATE, "state"),
        Output("hidden_state", "vector", (), -1, "state"),
        Output("cell_state", "vector", (), -1, "state"),
        Output("response", "step", ("response",), R_RESPONSE, "state"),
        Output("log10_gradient_norm", "step", ("gradient",), R_GRADIENT, "float64"),
        Output("cell_norm", "step", (), R_CELL, "state"),
        Output("log10_cell_gradient_norm", "step", ("gradient",), R_CELL_GRADIENT, "float64"),
        Output("log10_carousel_gain", "step", (), R_CAROUSEL, "float64"),
        Output("input_gate_mean", "step", (), R_GATE, "float64"),
        Output("forget_gate_mean", "step", (), R_GATE + 1, "float64"),
        Output("output_gate_mean", "step", (), R_GATE + 2, "float64"),
        Output("reset_gate_mean", "step", (), R_GATE, "float64"),
        Output("update_gate_mean", "step", (), R_GATE + 1, "float64"),
        Output("log10_input_weight_grad", "step", ("bptt",), R_INPUT_GRAD, "float64"),
        Output("log10_layer_weight_grad", "step", ("bptt",), R_WEIGHT_GRAD, "float64"),
        Output("layer_weight_grad_participation", "step", ("bptt",), R_WEIGHT_GRAD_PR, "float64"),
        Output("blowup_step", "summary", (), S_BLOWUP, "int64"),
        Output("memory_horizon", "summary", ("response",), S_MEMORY, "int64"),
        Output("memory_class", "summary", ("response",), S_MEMORY, "int8"),
        Output("saturation_step", "summary", ("saturation",), S_SATURATION, "int64"),
        Output("growth_rate", "summary", ("gradient",), S_GROWTH, "float64"),
        Output("response_growth_rate", "summary", ("response",), S_RESPONSE_GROWTH, "float64"),
        Output("cell_growth_rate", "summary", ("gradient",), S_CELL_GROWTH, "float64"),
        Output("bounded", "summary", (), S_BOUNDED, "bool"),
        Output("max_state_norm", "summary", (), S_MAX_NORM, "float64"),
        Output("fixed_point", "summary", ("saturation",), S_FINAL, "float64"),
        Output("fixed_point_norm", "summary", ("saturation",), S_FINAL, "float64"),
        Output("lyapunov_exponents", "spectrum", ("lyapunov",), -1, "float64"),
        Output("kaplan_yorke_dimension", "summary", ("lyapunov",), -1, "float64"),
        Output("entropy_rate", "summary", ("lyapunov",), -1, "float64"),
        Output("memory_capacity", "summary", ("capacity",), -1, "float64"),
        Output("memory_capacity_by_delay", "delays", ("capacity",), -1, "float64"),
        Output("spectral_radius", "summary", ("weights",), -1, "float64"),
        Output("max_singular_value", "summary", ("weights",), -1, "float64"),
        Output("second_eigenvalue_modulus", "summary", ("weights",), -1, "float64"),
    )
}


@dataclass(frozen=True)
class OutputPlan:
    """The requested variables of one run and what the kernel must do for them."""

    names: tuple[str, ...]
    trackers: frozenset[str]
    slots: np.ndarray  # (N_ROWS,) int64: row -> position in rec_out, or -1

    @property
    def nrows(self) -> int:
        return int((self.slots >= 0).sum())

    def wants(self, name: str) -> bool:
        return name in self.names

    def needs(self, tracker: str) -> bool:
        return tracker in self.trackers

    def without(self, tracker: str) -> OutputPlan:
        """The same names with ``tracker`` off: the variables that need it read NaN."""
        keep = [n for n in self.names if tracker not in OUTPUTS[n].needs]
        plan = _plan(keep)
        return OutputPlan(self.names, plan.trackers, plan.slots)

    def subset(self, names) -> OutputPlan:
        """The plan of those of its variables in ``names``, with the trackers that are off
        here still off (the variables that need them read NaN)."""
        keep = tuple(n for n in self.names if n in names)
        plan = _plan([n for n in keep if set(OUTPUTS[n].needs) <= self.trackers])
        return OutputPlan(keep, plan.trackers, plan.slots)


def plan_outputs(outputs, available, default, where="outputs", hints=None) -> OutputPlan:
    """Check the requested outputs and plan the run.

    Parameters
    ----------
    outputs : None, str or sequence of str
        None for ``default``; ``"all"`` for ``available``; a name or a list of names.
    available, default : sequence of str
        The variables this run can return, and those it returns when not told.
    where : str
        The argument's name, for the error message.
    hints : dict, optional
        Why a known variable may not be available (added to the message).

    Raises
    ------
    ValueError
        For a name this run cannot return; the message lists the valid names.
    """
    if outputs is None:
        names = list(default)
    elif isinstance(outputs, str):
        names = list(available) if outputs == "all" else [outputs]
    else:
        names = list(dict.fromkeys(outputs))
    if any(not isinstance(n, str) for n in names):
        raise ValueError(f"{where}: give variable names (strings), got {outputs!r}")
    bad = [n for n in names if n not in available]
    if bad or not names:
        what = f"{bad[0]!r} is not an output of this run" if bad else "no output requested"
        why = f" ({hints[bad[0]]})" if bad and hints and bad[0] in hints else ""
        raise ValueError(f"{where}: {what}{why}: use 'all' or names from {', '.join(available)}")
    return _plan([n for n in available if n in names])  # the order of ``available``


def _plan(names) -> OutputPlan:
    trackers = frozenset(t for n in names for t in OUTPUTS[n].needs)
    slots = np.full(N_ROWS, -1, dtype=np.int64)
    for n in names:
        o = OUTPUTS[n]
        if o.kind == "step" and slots[o.index] < 0:
            slots[o.index] = int((slots >= 0).sum())
    return OutputPlan(tuple(names), trackers, slots)


def collect(
    plan: OutputPlan,
    rec_out,
    sums,
    state_dtype,
    *,
    steps: int,
    signed=False,
    vectors=None,
    extra=None,
) -> dict:
    """The result's variables from the kernel's arrays, in the requested order.

    ``steps`` is the run's length (the classes of the memory are judged over its second
    half).
    ``signed``: row ``R_STATE`` holds h itself (n = 1) rather than its norm. ``vectors``
    holds the kernel's arrays that are variables themselves (``hidden_state``,
    ``cell_state``, the Lyapunov spectrum and its summaries) and ``extra`` the variables
    computed outside the kernel (weight norms).
    """
    vectors = vectors or {}
    extra = extra or {}
    ncase, _, nrec = rec_out.shape
    data = {}
    for name in plan.names:
        o = OUTPUTS[name]
        dt = np.dtype(state_dtype) if o.dtype == "state" else np.dtype(o.dtype)
        if name in extra:
            data[name] = np.asarray(extra[name], dtype=dt)
        elif name in vectors:
            data[name] = vectors[name].astype(dt, copy=False)
        elif o.kind == "step" and plan.slots[o.index] < 0:  # its tracker was switched off
            data[name] = np.full((ncase, nrec), np.nan, dtype=dt)
        elif o.kind == "step":
            row = rec_out[:, plan.slots[o.index]]
            with np.errstate(over="ignore"):  # a float32 run's response of two states near
                # the float32 maximum (3.4e38) can be above it: inf in float32, as it is
                data[name] = (np.abs(row) if signed and name == "state_norm" else row).astype(dt)
        elif o.index < 0:  # computed outside the kernel, and not this time
            data[name] = np.full(ncase, np.nan, dtype=dt)
        else:
            data[name] = _summary(name, sums[:, o.index], dt, sums, steps)
    return data


#: memory_class codes, and the factor by which a response that was never forgotten must
#: grow over the second half of the run to count as growing (else it is kept).
MEMORY_CLASSES = {0: "forgets", 1: "keeps", 2: "grows", 3: "blows up"}
GROWS_BY = 2.0


def memory_class(sums, steps: int) -> np.ndarray:
    """Per case: 3 blew up (a non-finite state), 0 forgot (the memory horizon was reached),
    2 grew (never forgot, and the response grew by more than ``GROWS_BY`` over the second
    half of the run, from t = (steps - 1) // 2 to the last step), else 1 kept."""
    span = (steps - 1) - (steps - 1) // 2
    growth = sums[:, S_RESPONSE_GROWTH] * span
    code = np.where(growth > np.log(GROWS_BY), 2, 1)
    code = np.where(sums[:, S_MEMORY] >= 0, 0, code)
    code = np.where(sums[:, S_BLOWUP] >= 0, 3, code)
    return np.where(np.isnan(sums[:, S_MEMORY]) & (sums[:, S_BLOWUP] < 0), -1, code)


def _summary(name, col, dt, sums, steps):
    if name == "memory_class":
        return memory_class(sums, steps).astype(dt)
    if name in ("fixed_point", "fixed_point_norm"):
        value = col if name == "fixed_point" else np.abs(col)
        return np.where(sums[:, S_SATURATION] >= 0, value, np.nan)
    if dt == np.bool_:
        return col == 1.0
    if dt.kind == "i":
        return np.where(np.isnan(col), -1, col).astype(dt)
    return col.astype(dt)
