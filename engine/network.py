"""Layered recurrent networks from explicit weights in PyTorch's layout: stacked ``rnn`` cells,
the ``lstm`` and its variants (Greff et al. 2017), the ``gru`` and the constant error
carousel ``cec``.

:func:`simulate_network` validates and allocates; :func:`run_layers` runs the layered kernel
(:mod:`rnnlab.engine._driver`, one per cell of :mod:`rnnlab.engine.cells`) and is shared with
the vector recursions of :func:`rnnlab.engine.simulate_rnn` and the deep nets of
:func:`rnnlab.engine.simulate_mlp`. :func:`state_dict_layers` and :func:`simulate_state_dict`
read the ``state_dict`` of a trained ``torch.nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import _tracking as K
from ._capacity import NPARTS as MC_PARTS
from ._driver import make_kernel
from ._linear import exact_response
from ._numerics import INPUT_ARRAY, INPUT_NOISE
from ._parallel import run_chunks, threads_for
from ._validate import (
    RunSettings,
    as_cases,
    check_choice,
    check_int,
    check_memory,
    finite_numbers,
    input_arrays,
    run_settings,
)
from .activations import get_activation
from .cells import CELLS, get_cell, lstm
from .lyapunov import LYAPUNOV_OUTPUTS, spectrum_outputs, starting_vectors
from .results import RnnResult
from .weights import CELL_GATES, impulse_direction

__all__ = [
    "CELLS",
    "LSTM_VARIANTS",
    "Layers",
    "network_outputs",
    "run_layers",
    "simulate_network",
    "simulate_state_dict",
    "state_dict_layers",
]

#: The layered kernel of each cell, compiled on first call (then loaded from Numba's cache).
KERNELS = {name: make_kernel(c.module) for name, c in CELLS.items()}

#: The LSTM variants of Greff et al. (2017), "LSTM: A search space odyssey". ``vanilla`` is
#: the LSTM with peepholes if the weights have them (PyTorch's LSTM has none); every other
#: variant changes one thing of it.
LSTM_VARIANTS = {name: doc for name, (doc, _) in lstm.VARIANTS.items()}

#: Per-case summaries of every layered network (and of deep nets).
NETWORK_SUMMARIES = (*K.SUMMARIES, "fixed_point_norm")

#: The variables of the memory capacity tracker (Jaeger 2001).
CAPACITY_OUTPUTS = ("memory_capacity", "memory_capacity_by_delay")

#: Outputs computed only when asked for by name (costly, or large).
OPT_IN = ("hidden_state", "cell_state", *LYAPUNOV_OUTPUTS, *CAPACITY_OUTPUTS)


#: The fewest steps in each of the four parts of the capacity's window, and so the shortest
#: run it accepts (its window is the steps after (steps - 1) // 2).
MIN_PART = 2
CAPACITY_MIN_STEPS = 8 * MIN_PART + 1


def capacity_fits(steps: int) -> bool:
    """Whether a run of ``steps`` is long enough for the memory capacity's window."""
    return steps - 1 - (steps - 1) // 2 >= 4 * MIN_PART


def delays_for(steps: int, num_delays: int | None) -> int:
    """The capacity's number of delays: ``num_delays``, or by default 100 or (steps - 1) // 2
    if that is smaller (the window must hold as many steps)."""
    return min(100, max((steps - 1) // 2, 1)) if num_delays is None else num_delays


def without_capacity(outputs, available, input, steps):
    """``outputs``, with ``"all"`` meaning every available variable but the memory capacity
    when the input is not a random scalar signal (an impulse, a step, input vectors) or the
    run too short for it: there is nothing to read out then. Asked for by name, it is
    refused instead."""
    random = (isinstance(input, str) and input == "noise") or (
        not isinstance(input, str) and np.ndim(input) < 3
    )
    long = isinstance(steps, int | np.integer) and capacity_fits(int(steps))
    if isinstance(outputs, str) and outputs == "all" and not (random and long):
        return [v for v in available if v not in CAPACITY_OUTPUTS]
    return outputs


def capacity_delays(plan, num_delays, settings, vector: bool, kind: int) -> int:
    """The validated number of delays of the capacity tracker (0 when it is off)."""
    if not plan.needs("capacity"):
        return 0
    if vector or kind not in (INPUT_NOISE, INPUT_ARRAY):
        raise ValueError(
            "memory_capacity reads out a random scalar input signal: give input='noise' or an "
            "array (cases, steps) (not an impulse, a step or input vectors)"
        )
    if not capacity_fits(settings.steps):
        raise ValueError(
            f"memory_capacity needs at least {4 * MIN_PART} steps after (steps - 1) // 2 (the "
            f"readout is fitted and scored on four parts of them): give steps >= "
            f"{CAPACITY_MIN_STEPS}"
        )
    num_delays = check_int("num_delays", delays_for(settings.steps, num_delays), 1)
    if num_delays > settings.t_half:
        raise ValueError(
            f"num_delays must be >= 1 and <= (steps - 1) // 2 = {settings.t_half}, got "
            f"{num_delays}: give fewer delays or more steps"
        )
    return num_delays


def network_outputs(cell: str, loss_step: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(available, default) outputs of :func:`simulate_network` for a cell.

    The default is every available variable except those of :data:`OPT_IN` (the per-step
    vectors ``hidden_state`` and ``cell_state``, the Lyapunov spectrum).
    """
    c = get_cell(cell)
    steps = ["state_norm", "hidden_state", "response", "log10_gradient_norm"]
    if c.has_cell:
        steps += ["cell_norm", "cell_state", "log10_cell_gradient_norm", "log10_carousel_gain"]
    steps += list(c.gate_means)
    if loss_step:
        steps.append("log10_input_weight_grad")
    summary = list(NETWORK_SUMMARIES)
    if c.has_cell:
        summary.append("cell_growth_rate")
    if cell == "rnn":
        summary += ["spectral_radius", "max_singular_value"]
    available = tuple(steps + summary + list(LYAPUNOV_OUTPUTS) + list(CAPACITY_OUTPUTS))
    return available, tuple(v for v in available if v not in OPT_IN)


#: Why an output may be missing, for the error message.
OUTPUT_HINTS = {
    "log10_input_weight_grad": "it needs loss_step",
    "log10_layer_weight_grad": "deep feed-forward nets only: simulate_mlp",
    "layer_weight_grad_participation": "deep feed-forward nets only: simulate_mlp",
    "state": "it is the signed state of n = 1 recursions: use state_norm",
    "fixed_point": "it is the fixed point of n = 1 recursions: use fixed_point_norm",
    "cell_norm": "LSTM only",
    "cell_state": "LSTM only",
    "log10_cell_gradient_norm": "LSTM only",
    "log10_carousel_gain": "LSTM only",
    "cell_growth_rate": "LSTM only",
    **dict.fromkeys(LYAPUNOV_OUTPUTS, "n > 1: for n = 1 the one exponent is growth_rate"),
    **dict.fromkeys(CAPACITY_OUTPUTS, "recurrent networks with n > 1"),
}


@dataclass
class Layers:
    """The layered kernel's weights for a batch of cases (see :mod:`rnnlab.engine._driver`).

    ``C`` (cases, G H), ``Wih`` (cases, L-1, G H, H), ``Whh`` (cases, L, G H, H) or, when
    ``untied``, (steps, 1, H, H) shared by every case, ``bih`` (cases, L, G H), ``bhh`` (cases,
    L, G H) or, when ``untied``, (steps, 1, G H) shared by every case, ``P``
    (cases, L, 3, H) or (cases, L, 0, 0), ``Rg`` (cases, L, 3H, 3H) or (cases, L, 0, 0),
    ``gain`` (cases,), ``S0`` (cases, L, R); ``flags`` the LSTM variant flags.
    """

    C: np.ndarray
    Wih: np.ndarray
    Whh: np.ndarray
    bih: np.ndarray
    bhh: np.ndarray
    P: np.ndarray
    Rg: np.ndarray
    gain: np.ndarray
    S0: np.ndarray
    flags: np.ndarray
    untied: bool = False

    @property
    def ncase(self) -> int:
        return self.C.shape[0]

    def state_rows(self, cell: str) -> int:
        H = self.Whh.shape[3]
        return int(get_cell(cell).module.rows(H, self.flags))


def _probe(plan, nh: int, probe) -> np.ndarray:
    if not plan.needs("gradient"):
        return np.zeros((nh, 0))
    return np.eye(nh) if probe is None else probe


#: What to give less of when a run's records would not fit in memory (every vector kernel's).
FEWER_RECORDS = (
    "ask for fewer outputs=, record fewer steps (record='log', num_records=...) or run "
    "fewer cases per call"
)


def run_layers(
    cell: str,
    net: Layers,
    settings: RunSettings,
    plan: K.OutputPlan,
    *,
    activation: int,
    inputs: tuple,
    loss_step: int = -1,
    probe: np.ndarray | None = None,
    threads: int = 1,
    projected: np.ndarray | None = None,
    exponents: int = 0,
    delays: int = 0,
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Run the layered kernel of ``cell``; returns its outputs ``(rec_out, vectors, sums)``
    for :func:`rnnlab.engine._tracking.collect`.

    ``inputs`` is ``(kind, xs, keys, amp)`` (see :func:`rnnlab.engine._validate.input_arrays`);
    ``probe`` (L H, k) the tangent columns (default: the identity, exact norms).
    ``projected`` (cases, steps, G H): layer 0's input term W_ih x(t) of vector inputs (then
    ``inputs``' xs holds ||x(t)||, for the input-weight gradient). ``exponents``: how many
    Lyapunov exponents the ``lyapunov`` tracker computes (those beyond the state's dimension
    L R read NaN); ``delays``: how many delays of the input (0 ... delays - 1) the
    ``capacity`` tracker reads out (:mod:`rnnlab.engine._capacity`).
    """
    fdt = settings.dtype
    ncase = net.ncase
    L, GH, H = net.Whh.shape[1:]
    nh, nrec = L * H, settings.nrec
    R = net.state_rows(cell)
    probe = np.ascontiguousarray(_probe(plan, nh, probe), dtype=fdt)
    kl = min(exponents, L * R) if plan.needs("lyapunov") else 0
    lprobe = np.ascontiguousarray(starting_vectors(L * R, kl), dtype=fdt)
    k = probe.shape[1] * (2 if get_cell(cell).has_cell else 1) + kl
    nvec = plan.wants("hidden_state") + plan.wants("cell_state")
    isz = fdt.itemsize
    per_case = 8 * (plan.nrows * nrec + K.N_SUMS + kl) + isz * nvec * nrec * nh
    nb = loss_step + 1 if plan.needs("bptt") else 0
    work = isz * (2 * L * R * k + 3 * GH * k + nb * L * R + 2 * L * R * (L * R + GH) * (nb > 0))
    work += 8 * kl * L * R
    check_memory(
        ncase * per_case + max(threads, 1) * work,
        FEWER_RECORDS,
    )
    rec_out = np.full((ncase, plan.nrows, nrec), np.nan)
    vec = {
        name: np.full((ncase, nrec, nh), np.nan, fdt)
        if plan.wants(name)
        else np.zeros((ncase, 0, 0), fdt)
        for name in ("hidden_state", "cell_state")
    }
    sums = np.empty((ncase, K.N_SUMS))
    spectra = np.full((ncase, kl), np.nan)
    nd = delays if plan.needs("capacity") else 0
    moments = 8.0 * MC_PARTS * nh * (nh + nd) * (nd > 0)  # each thread's, per part
    check_memory(8.0 * ncase * nd + max(threads, 1) * moments,
                 "give fewer cases, delays (num_delays) or units")  # fmt: skip
    capacity = np.full((ncase, nd), np.nan)
    kind, xs, keys, amp = inputs
    iopt, fopt = settings.options(
        plan, kind, loss_step=loss_step, untied=net.untied, activation=activation
    )
    uloss = np.full(H, 1.0 / np.sqrt(H))
    XV = np.zeros((ncase, 1, 0), fdt) if projected is None else projected
    args = (
        net.C, net.Wih, net.Whh, net.bih, net.bhh, net.P, net.Rg, net.gain, net.S0,
        amp, keys, xs, XV, rec_out, vec["hidden_state"], vec["cell_state"], sums, spectra,
        capacity, net.flags, probe, lprobe, uloss, settings.rec, plan.slots, iopt, fopt,
    )  # fmt: skip
    sliced = [True] * 19 + [False] * 8
    sliced[2] = sliced[4] = not net.untied  # untied W_t and b_t are every case's
    run_chunks(KERNELS[cell], args, sliced, ncase, threads)
    if plan.needs("lyapunov"):
        vec.update(spectrum_outputs(spectra, exponents, L * R))
    if plan.needs("capacity"):
        vec.update(memory_capacity=capacity.sum(axis=1), memory_capacity_by_delay=capacity)
    return rec_out, vec, sums


def _layer_array(layers, l, key, ncase, shape, name, dtype, required=True):
    value = layers[l].get(key)
    if value is None:
        if required:
            raise ValueError(f"layers[{l}] has no {key!r} ({name})")
        return None
    arr = finite_numbers(f"layers[{l}][{key!r}]", value, f"an array of numbers ({name})")
    if arr.shape == shape:
        arr = arr[None]
    if arr.shape[1:] != shape or arr.shape[0] not in (1, ncase):
        raise ValueError(
            f"layers[{l}][{key!r}] has shape {np.shape(value)}: expected {shape} or "
            f"(cases, *{shape}) ({name})"
        )
    return np.broadcast_to(arr, (ncase, *shape)).astype(dtype)


def _vector_inputs(input, layers, ncase: int, settings) -> tuple:
    """(W_ih x(t) per case and step (cases, steps, G H), ||x(t)|| (cases, steps)) of vector
    inputs x given as (cases, steps, I) (or (1, steps, I) for every case)."""
    x = np.asarray(input, dtype=np.float64)
    steps = settings.steps
    W0 = np.asarray(layers[0]["weight_ih"], dtype=np.float64)  # its shape: checked by stack_layers
    GH, I = W0.shape[-2], W0.shape[-1]
    if x.shape[0] not in (1, ncase) or x.shape[1:] != (steps, I):
        raise ValueError(
            f"input: vector inputs must have shape (cases, steps, I) = ({ncase}, {steps}, {I}) "
            f"or (1, {steps}, {I}), got {x.shape}"
        )
    check_memory(8.0 * ncase * steps * (GH + 1), "input: give fewer cases or steps")
    W0 = np.broadcast_to(W0, (ncase, GH, I))
    xb = np.broadcast_to(x, (ncase, steps, I))
    projected = np.ascontiguousarray(np.einsum("cgi,csi->csg", W0, xb), dtype=settings.dtype)
    return projected, np.linalg.norm(xb, axis=-1)


def _per_case(layers, ncase: int) -> list[dict]:
    """Weights without a case axis, repeated (as views) for ``ncase`` cases."""
    return [{k: None if v is None else np.broadcast_to(np.asarray(v), (ncase, *np.shape(v)))
             for k, v in w.items()} for w in layers]  # fmt: skip


def _case_count(layers) -> int:
    """The number of cases: the leading axis of any weight array that has one."""
    ndims = {"weight_ih": 2, "weight_hh": 2, "bias_ih": 1, "bias_hh": 1}
    ndims.update(weight_peephole=2, weight_gate=2)
    return max(
        [
            np.shape(v)[0]
            for w in layers
            for k, v in w.items()
            if k in ndims and v is not None and np.ndim(v) == ndims[k] + 1
        ]
        + [1]
    )


def _variant_flags(cell: str, variant: str, peep: bool) -> np.ndarray:
    flags = np.zeros(lstm.NFLAGS, np.int64)
    if cell == "lstm":
        flag = lstm.VARIANTS[variant][1]
        if flag >= 0:
            flags[flag] = 1
        flags[lstm.PEEPHOLES] = int(peep and variant != "NP")
    return flags


def stack_layers(cell: str, layers, variant: str, fdt, input_direction=None) -> Layers:
    """The kernel's arrays from per-layer weight mappings (PyTorch's layout)."""
    if isinstance(layers, Mapping) or not isinstance(layers, Sequence) or len(layers) < 1:
        raise ValueError("layers must be a non-empty list of per-layer weight mappings")
    if not all(isinstance(w, Mapping) for w in layers):
        raise ValueError("layers must be a list of mappings (one dict of arrays per layer)")
    L = len(layers)
    G = CELL_GATES[cell]
    whh0 = np.asarray(layers[0].get("weight_hh", np.zeros(0)))
    wih0 = np.asarray(layers[0].get("weight_ih", np.zeros(0)))
    if whh0.ndim not in (2, 3) or wih0.ndim not in (2, 3):
        raise ValueError("layers[0] needs weight_ih (G H, I) and weight_hh (G H, H) arrays")
    H, I = whh0.shape[-1], wih0.shape[-1]
    ncase = _case_count(layers)
    check_memory(ncase * L * (2 * G * H * H + 20 * H) * fdt.itemsize, "give fewer cases")
    Whh = np.zeros((ncase, L, G * H, H), fdt)
    Wih = np.empty((ncase, L - 1, G * H, H), fdt)
    bih = np.zeros((ncase, L, G * H), fdt)
    bhh = np.zeros((ncase, L, G * H), fdt)
    peep = cell == "lstm" and any(w.get("weight_peephole") is not None for w in layers)
    fgr = variant == "FGR"
    P = np.zeros((ncase, L, 3, H) if peep else (ncase, L, 0, 0), fdt)
    Rg = np.zeros((ncase, L, 3 * H, 3 * H) if fgr else (ncase, L, 0, 0), fdt)
    for l in range(L):
        if cell != "cec":
            Whh[:, l] = _layer_array(layers, l, "weight_hh", ncase, (G * H, H), "G H, H", fdt)
        if l > 0:
            Wih[:, l - 1] = _layer_array(layers, l, "weight_ih", ncase, (G * H, H), "G H, H", fdt)
        for key, arr in (("bias_ih", bih), ("bias_hh", bhh)):
            v = _layer_array(layers, l, key, ncase, (G * H,), "G H", fdt, required=False)
            if v is not None and not (cell == "cec" and key == "bias_hh"):
                arr[:, l] = v
        if peep:
            P[:, l] = _layer_array(layers, l, "weight_peephole", ncase, (3, H), "3, H", fdt)
        if fgr:
            Rg[:, l] = _layer_array(
                layers, l, "weight_gate", ncase, (3 * H, 3 * H), "3H, 3H; needed by FGR", fdt
            )
    W0 = _layer_array(layers, 0, "weight_ih", ncase, (G * H, I), "G H, I", np.float64)
    u = np.ones(1) if I == 1 else impulse_direction(I, seed=0)
    if input_direction is not None:
        u = np.asarray(input_direction, dtype=np.float64).ravel()
        if u.shape != (I,) or not np.linalg.norm(u) > 0:
            raise ValueError(f"input_direction must be a nonzero vector of length I = {I}")
    u = u / np.linalg.norm(u)
    C = np.ascontiguousarray((W0 @ u).astype(fdt))
    flags = _variant_flags(cell, variant, peep)
    R = int(get_cell(cell).module.rows(H, flags))
    return Layers(C, Wih, Whh, bih, bhh, P, Rg, np.ones(ncase), np.zeros((ncase, L, R), fdt), flags)


def simulate_network(
    cell: str,
    layers: Sequence[Mapping[str, np.ndarray]],
    *,
    activation: str = "tanh",
    variant: str = "vanilla",
    steps: int = 1000,
    input: str | np.ndarray = "impulse",
    input_direction=None,
    amplitude=1.0,
    noise_seed=0,
    loss_step: int | None = None,
    record: str | np.ndarray = "log",
    num_records: int = 100,
    dtype: str = "float64",
    gradient: str = "auto",
    memory_rtol: float = 1e-3,
    saturation_tol: float | None = None,
    bound: float = 1e6,
    outputs=None,
    num_exponents: int = 16,
    num_delays: int | None = None,
    parallel: bool = True,
) -> RnnResult:
    """Run a batch of layered recurrent networks from explicit weights (PyTorch's layout).

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "cec"}
        ``rnn``: h = f(W_ih x + b_ih + W_hh h' + b_hh) (``torch.nn.RNN``). ``lstm``:
        ``torch.nn.LSTM`` (gate rows i, f, g, o), optionally with peepholes p_i, p_f acting on
        c(t-1) and p_o on c(t). ``gru``: ``torch.nn.GRU`` (rows r, z, n; the reset gate
        multiplies W_hn h' + b_hn). ``cec``: h = h' + f(W_ih x + b_ih), the constant error
        carousel (``weight_hh`` and ``bias_hh`` are ignored).
    layers : sequence of mapping
        One mapping per layer with ``weight_ih`` (G H, I) for the first layer and (G H, H)
        above, ``weight_hh`` (G H, H), ``bias_ih`` and ``bias_hh`` (G H,) (zero if absent), and
        for the LSTM optionally ``weight_peephole`` (3, H) (rows p_i, p_f, p_o) and
        ``weight_gate`` (3H, 3H) (variant FGR: rows and columns i, f, o). G = 1, 4, 3, 1 for
        rnn, lstm, gru, cec. Each array may carry a leading case axis: (cases, ...).
    activation : {"identity", "sigmoid", "tanh", "relu"}
        f of the rnn and cec cells (the LSTM and GRU use sigmoid gates and tanh).
    variant : str
        LSTM variant, one of :data:`LSTM_VARIANTS`.
    steps : int
        Number of steps, t = 0 ... steps - 1. The state before t = 0 is zero.
    input : {"impulse", "step", "noise"} or array_like
        The input signal s(t) (see :func:`rnnlab.engine.simulate_rnn`), or an array (steps,)
        or (cases, steps): the input vector is x(t) = s(t) u. Or the input vectors
        themselves, a 3-D array (cases, steps, I) (or (1, steps, I) for every case): your
        own data; then ``input_direction`` and ``amplitude`` do not apply, the response is
        that to x(0) (against the run with x(0) = 0), and ``log10_input_weight_grad`` is
        ||dL/dz(k)|| ||x(k)||.
    input_direction : array_like, optional
        u (I,), normalised to unit length. Default: [1] for I = 1, else the seeded unit
        vector ``impulse_direction(I, seed=0)``.
    amplitude, noise_seed :
        As in :func:`rnnlab.engine.simulate_rnn`.
    loss_step : int, optional
        If given (T), the loss L = sum(h_top(T)) / sqrt(H) at step T only is backpropagated
        through time, and ``log10_input_weight_grad`` records, for each recorded step k <= T,
        log10 of the Frobenius norm of step k's contribution to dL/dW_ih of the first layer:
        ``||delta_k x(k)^T|| = ||delta_k|| |s(k)|`` with delta_k = dL/d(W_ih x(k)). Steps after
        T read NaN. Use ``record="all"`` to get every step.
    record, num_records :
        Which steps the per-step variables keep (see :func:`record_steps`).
    dtype : {"float64", "float32"}
        Precision of the weights, states and Jacobian products.
    gradient : {"auto", "exact", "none"}
        ``log10_gradient_norm`` is log10 ||dh(t)/dh(0)||_2 through all paths (via the cell
        state, the gates and the layers), h being the concatenation of every layer's hidden
        state; the product of the step Jacobians is propagated exactly with renormalisation
        (the cost per step is that of the forward pass times 2 L H for the LSTM, L H
        otherwise). ``"none"``: not computed (NaN).
    memory_rtol, saturation_tol, bound :
        As in :func:`rnnlab.engine.simulate_rnn` (saturation requires h and c to settle).
    outputs : None, "all", str or list of str
        The variables to compute and return (see :func:`network_outputs`; docs/engine.md
        says what each costs). Default: every variable but those of :data:`OPT_IN`: the
        per-step vectors ``hidden_state`` (cases, time, L H) and ``cell_state`` (LSTM), the
        Lyapunov spectrum and the memory capacity, which are asked for by name.
    num_exponents, num_delays :
        As in :func:`rnnlab.engine.simulate_rnn`.
    parallel : bool or int
        Run chunks of cases on all CPUs (True), one thread (False) or this many threads;
        the sweep runner calls it with False from its own workers.

    Returns
    -------
    RnnResult
        Per-step (cases, ntime): ``state_norm``, ``response``, ``log10_gradient_norm``; for
        the LSTM ``cell_norm``, ``log10_cell_gradient_norm`` (dc(t)/dc(0), all paths),
        ``log10_carousel_gain`` (the direct cell path alone: log10 max over units of
        prod_{s=1..t} f(s), the constant error carousel) and
        ``input_gate_mean``, ``forget_gate_mean``, ``output_gate_mean`` (mean over every
        unit of every layer); for the GRU ``reset_gate_mean``, ``update_gate_mean``; with
        ``loss_step``, ``log10_input_weight_grad``. Per-case summaries as for
        :func:`simulate_rnn` (no ``fixed_point``), plus ``cell_growth_rate`` for the LSTM and
        the largest ``spectral_radius`` and ``max_singular_value`` over the layers' W_hh for
        the rnn cell.

    Raises
    ------
    ValueError
        For an unknown name, a missing weight or an array of the wrong shape; the message
        names the argument.
    """
    get_cell(cell)
    if not isinstance(variant, str) or variant not in LSTM_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(LSTM_VARIANTS)}")
    if variant != "vanilla" and cell != "lstm":
        raise ValueError(f"variant {variant!r} is an LSTM variant; cell is {cell!r}")
    act = get_activation(activation)
    check_choice("gradient", gradient, ("auto", "exact", "none"))
    settings = run_settings(steps, dtype, record, num_records, memory_rtol, saturation_tol, bound)
    ls = -1 if loss_step is None else int(loss_step)
    if loss_step is not None and not 0 <= ls < settings.steps:
        raise ValueError(f"loss_step must be in [0, steps - 1 = {settings.steps - 1}], got {ls}")
    available, default = network_outputs(cell, loss_step is not None)
    vector = not isinstance(input, str) and np.ndim(input) == 3
    outputs = without_capacity(outputs, available, input, steps)
    plan = K.plan_outputs(outputs, available, default, hints=OUTPUT_HINTS)
    if gradient == "none":
        plan = plan.without("gradient")
    if vector and _case_count(layers) == 1 and np.shape(input)[0] > 1:
        layers = _per_case(layers, np.shape(input)[0])  # one network, many input sequences
    net = stack_layers(cell, layers, variant, settings.dtype, input_direction)
    L, H = net.Whh.shape[1], net.Whh.shape[3]
    ncase = net.ncase
    projected = None
    if vector:
        projected, norms = _vector_inputs(input, layers, ncase, settings)
        kind, xs, keys, input_name = input_arrays(norms, ncase, settings.steps, noise_seed, H)
        input_name = "vectors"
    else:
        kind, xs, keys, input_name = input_arrays(input, ncase, settings.steps, noise_seed, H)
    amp = as_cases(amplitude, ncase, (), "amplitude", np.float64)
    rec_out, vectors, sums = run_layers(
        cell, net, settings, plan, activation=act.code, inputs=(kind, xs, keys, amp),
        loss_step=ls, threads=threads_for(parallel), projected=projected,
        exponents=check_int("num_exponents", num_exponents, 1),
        delays=capacity_delays(plan, num_delays, settings, vector, kind),
    )  # fmt: skip
    linear = cell == "rnn" and act.name == "identity" and L == 1 and projected is None
    if linear and plan.needs("response"):
        exact_response(net.Whh[:, 0], net.C, (kind, xs, keys, amp), settings, plan, rec_out,
                       sums, {})  # fmt: skip
    extra = {}
    if plan.needs("weights"):  # the largest over the layers
        W = net.Whh.astype(np.float64)
        extra["spectral_radius"] = np.abs(np.linalg.eigvals(W)).max(axis=(-2, -1))
        extra["max_singular_value"] = np.linalg.norm(W, ord=2, axis=(-2, -1)).max(axis=-1)
    data = K.collect(
        plan, rec_out, sums, settings.dtype, steps=settings.steps, vectors=vectors, extra=extra
    )
    attrs = dict(
        family=cell,
        cell=cell,
        activation=act.name if get_cell(cell).uses_activation else "lstm/gru gates",
        variant=variant,
        peepholes=bool(net.flags[lstm.PEEPHOLES]),
        layers=L,
        n=H,
        input_size=int(np.shape(layers[0]["weight_ih"])[-1]),
        input=input_name,
        gradient_method="exact" if plan.needs("gradient") else "none",
        loss_step=ls,
        outputs=list(plan.names),
        **settings.attrs(),
    )
    return RnnResult(time=settings.rec, data=data, attrs=attrs)


_MODULES = {"RNN": "rnn", "LSTM": "lstm", "GRU": "gru"}


def state_dict_layers(state_dict: Mapping, kind: str | None = None) -> tuple[str, list[dict]]:
    """Read the ``state_dict`` of a ``torch.nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.

    Parameters
    ----------
    state_dict : mapping
        ``module.state_dict()``: keys ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
        ``bias_hh_l{k}`` (an optional common prefix such as ``"rnn."`` is allowed). Values
        may be torch tensors (converted with ``.detach().cpu().numpy()``) or arrays.
    kind : {"rnn", "lstm", "gru"}, optional
        The module's cell; inferred from the row count of ``weight_hh_l0`` (H, 4H, 3H) if
        not given.

    Returns
    -------
    (cell, layers)
        The arguments of :func:`simulate_network`.

    Raises
    ------
    ValueError
        For bidirectional modules (``_reverse`` keys), projections (``weight_hr``), missing
        layers or sizes that match no cell.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping, got {type(state_dict).__name__}: pass "
            "module.state_dict(), not the module"
        )
    arrays: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[str(key).rsplit(".", 1)[-1]] = np.asarray(value, dtype=np.float64)
    if any(k.endswith("_reverse") for k in arrays):
        raise ValueError("bidirectional modules are not supported: pass one direction's keys")
    if any(k.startswith("weight_hr") for k in arrays):
        raise ValueError("LSTMs with projections (proj_size > 0) are not supported")
    if "weight_hh_l0" not in arrays:
        raise ValueError("state_dict has no weight_hh_l0: is it an nn.RNN, nn.LSTM or nn.GRU?")
    rows, H = arrays["weight_hh_l0"].shape
    if kind is None:
        by_rows = {H: "rnn", 4 * H: "lstm", 3 * H: "gru"}
        if rows not in by_rows:
            raise ValueError(f"weight_hh_l0 has shape {(rows, H)}: matches no rnn/lstm/gru")
        kind = by_rows[rows]
    kind = _MODULES.get(kind, kind)
    if kind not in ("rnn", "lstm", "gru"):
        raise ValueError(f"kind must be 'rnn', 'lstm' or 'gru', got {kind!r}")
    layers = []
    k = 0
    while f"weight_hh_l{k}" in arrays:
        d = {"weight_ih": arrays[f"weight_ih_l{k}"], "weight_hh": arrays[f"weight_hh_l{k}"]}
        for b in ("bias_ih", "bias_hh"):
            if f"{b}_l{k}" in arrays:
                d[b] = arrays[f"{b}_l{k}"]
        layers.append(d)
        k += 1
    return kind, layers


def simulate_state_dict(state_dict: Mapping, *, nonlinearity: str = "tanh", **kwargs):
    """Run :func:`simulate_network` on a trained PyTorch module's ``state_dict``.

    ``nonlinearity`` is that of an ``nn.RNN`` ("tanh" or "relu"); the other keyword arguments
    go to :func:`simulate_network`.

    Examples
    --------
    >>> import torch  # doctest: +SKIP
    >>> lstm = torch.nn.LSTM(input_size=3, hidden_size=32, num_layers=2)  # doctest: +SKIP
    >>> res = simulate_state_dict(lstm.state_dict(), steps=500)  # doctest: +SKIP
    >>> res["log10_cell_gradient_norm"]  # doctest: +SKIP
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu' (nn.RNN's), got {nonlinearity!r}")
    cell, layers = state_dict_layers(state_dict)
    return simulate_network(cell, layers, activation=nonlinearity, **kwargs)
