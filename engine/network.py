"""Layered recurrent networks from explicit weights in PyTorch's layout: stacked ``rnn`` cells,
the ``lstm`` and its variants (Greff et al. 2017), the ``gru`` and the constant error
carousel ``cec``.

:func:`simulate_network` validates and allocates; the arithmetic is in
:mod:`rnnlab.engine._network`. :func:`state_dict_layers` and :func:`simulate_state_dict`
read the ``state_dict`` of a trained ``torch.nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from . import _network as K
from .activations import get_activation
from .rnn import RnnResult, _as_cases, input_arrays, record_steps
from .weights import CELL_GATES, impulse_direction

__all__ = [
    "CELLS",
    "LSTM_VARIANTS",
    "network_variables",
    "simulate_network",
    "simulate_state_dict",
    "state_dict_layers",
]

CELLS = {"rnn": K.CELL_RNN, "lstm": K.CELL_LSTM, "gru": K.CELL_GRU, "cec": K.CELL_CEC}

#: The LSTM variants of Greff et al. (2017), "LSTM: A search space odyssey". ``vanilla`` is
#: the LSTM with peepholes if the weights have them (PyTorch's LSTM has none); every other
#: variant changes one thing of it.
LSTM_VARIANTS = {
    "vanilla": "the LSTM (peepholes if given)",
    "NIG": "no input gate (i = 1)",
    "NFG": "no forget gate (f = 1)",
    "NOG": "no output gate (o = 1)",
    "NIAF": "no input activation function (g(z) = z)",
    "NOAF": "no output activation function (h = o c)",
    "NP": "no peepholes",
    "CIFG": "coupled input and forget gate (f = 1 - i)",
    "FGR": "full gate recurrence (i, f, o also see the previous step's i, f, o)",
}

_VARIANT_FLAG = {
    "NIG": K.NO_INPUT_GATE,
    "NFG": K.NO_FORGET_GATE,
    "NOG": K.NO_OUTPUT_GATE,
    "NIAF": K.LINEAR_INPUT_ACT,
    "NOAF": K.LINEAR_OUTPUT_ACT,
    "CIFG": K.COUPLED_GATES,
    "FGR": K.GATE_RECURRENCE,
}

_GATE_NAMES = {
    "lstm": ("input_gate_mean", "forget_gate_mean", "output_gate_mean"),
    "gru": ("reset_gate_mean", "update_gate_mean"),
}


def network_variables(cell: str, loss_step: bool = False) -> tuple[list[str], list[str]]:
    """(per-step, summary) variable names of :func:`simulate_network` for a cell."""
    per_step = ["state_norm", "response", "log10_gradient_norm"]
    summary = [
        "blowup_step",
        "memory_horizon",
        "saturation_step",
        "growth_rate",
        "response_growth_rate",
        "bounded",
        "max_state_norm",
        "fixed_point_norm",
    ]
    if cell == "lstm":
        per_step += ["cell_norm", "log10_cell_gradient_norm"]
        summary.append("cell_growth_rate")
    per_step += list(_GATE_NAMES.get(cell, ()))
    if loss_step:
        per_step.append("log10_input_weight_grad")
    if cell == "rnn":
        summary += ["spectral_radius", "max_singular_value"]
    return per_step, summary


def _layer_array(layers, l, key, ncase, shape, name, dtype, required=True):
    value = layers[l].get(key)
    if value is None:
        if required:
            raise ValueError(f"layers[{l}] has no {key!r} ({name})")
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == shape:
        arr = arr[None]
    if arr.shape[1:] != shape or arr.shape[0] not in (1, ncase):
        raise ValueError(
            f"layers[{l}][{key!r}] has shape {np.shape(value)}: expected {shape} or "
            f"(cases, *{shape}) ({name})"
        )
    return np.broadcast_to(arr, (ncase, *shape)).astype(dtype)


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
        or (cases, steps). The input vector is x(t) = s(t) u.
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
    parallel : bool
        Use all of Numba's threads (direct use); the sweep runner calls the serial kernel.

    Returns
    -------
    RnnResult
        Per-step (cases, ntime): ``state_norm``, ``response``, ``log10_gradient_norm``; for
        the LSTM ``cell_norm``, ``log10_cell_gradient_norm`` (dc(t)/dc(0), all paths) and
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
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELLS)}")
    if variant not in LSTM_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(LSTM_VARIANTS)}")
    if variant != "vanilla" and cell != "lstm":
        raise ValueError(f"variant {variant!r} is an LSTM variant; cell is {cell!r}")
    act = get_activation(activation)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if gradient not in ("auto", "exact", "none"):
        raise ValueError(
            f"gradient must be 'auto', 'exact' or 'none' for layered networks, got {gradient!r}"
        )
    fdt = np.dtype(dtype)
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if memory_rtol <= 0:
        raise ValueError(f"memory_rtol must be > 0, got {memory_rtol}")
    if saturation_tol is None:
        saturation_tol = 1e-12 if fdt == np.float64 else 1e-5
    if isinstance(layers, Mapping) or len(layers) < 1:
        raise ValueError("layers must be a non-empty list of per-layer weight mappings")
    L = len(layers)
    G = CELL_GATES[cell]

    whh0 = np.asarray(layers[0].get("weight_hh", np.zeros(0)))
    wih0 = np.asarray(layers[0].get("weight_ih", np.zeros(0)))
    if whh0.ndim not in (2, 3) or wih0.ndim not in (2, 3):
        raise ValueError("layers[0] needs weight_ih (G H, I) and weight_hh (G H, H) arrays")
    H = whh0.shape[-1]
    I = wih0.shape[-1]
    # the number of cases: the leading axis of any array that has one
    ndims = {"weight_ih": 2, "weight_hh": 2, "bias_ih": 1, "bias_hh": 1}
    ndims.update(weight_peephole=2, weight_gate=2)
    ncase = max(
        [
            np.shape(v)[0]
            for w in layers
            for k, v in w.items()
            if k in ndims and v is not None and np.ndim(v) == ndims[k] + 1
        ]
        + [1]
    )

    Whh = np.empty((ncase, L, G * H, H), fdt)
    Wih = np.empty((ncase, L - 1, G * H, H), fdt)
    bih = np.zeros((ncase, L, G * H), fdt)
    bhh = np.zeros((ncase, L, G * H), fdt)
    peep = any(layers[l].get("weight_peephole") is not None for l in range(L))
    fgr = variant == "FGR"
    P = np.zeros((ncase, L, 3, H), fdt)
    Rg = np.zeros((ncase, L, 3 * H, 3 * H) if fgr else (ncase, L, 0, 0), fdt)
    for l in range(L):
        if cell == "cec":
            Whh[:, l] = 0.0
        else:
            Whh[:, l] = _layer_array(layers, l, "weight_hh", ncase, (G * H, H), "G H, H", fdt)
        if l > 0:
            Wih[:, l - 1] = _layer_array(layers, l, "weight_ih", ncase, (G * H, H), "G H, H", fdt)
        for key, arr in (("bias_ih", bih), ("bias_hh", bhh)):
            v = _layer_array(layers, l, key, ncase, (G * H,), "G H", fdt, required=False)
            if v is not None and not (cell == "cec" and key == "bias_hh"):
                arr[:, l] = v
        if cell == "lstm" and peep:
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

    flags = np.zeros(K.NFLAGS, np.int64)
    if cell == "lstm":
        if variant in _VARIANT_FLAG:
            flags[_VARIANT_FLAG[variant]] = 1
        flags[K.PEEPHOLES] = int(peep and variant != "NP")

    amp = _as_cases(amplitude, ncase, (), "amplitude", np.float64)
    rec = record_steps(steps, record, num_records)
    t_half = (steps - 1) // 2
    kind, xs, keys, input_name = input_arrays(input, ncase, steps, noise_seed, H)
    if loss_step is None:
        ls = -1
    else:
        ls = int(loss_step)
        if not 0 <= ls < steps:
            raise ValueError(f"loss_step must be in [0, steps - 1 = {steps - 1}], got {ls}")
    uloss = np.full(H, 1.0 / np.sqrt(H))
    grad_on = gradient != "none"

    nrec = rec.shape[0]

    def nanarr(*shape):
        return np.full(shape, np.nan)

    outs = (nanarr(ncase, nrec), nanarr(ncase, nrec), nanarr(ncase, nrec), nanarr(ncase, nrec),
            nanarr(ncase, nrec), nanarr(ncase, 3, nrec), nanarr(ncase, nrec),
            np.empty(ncase, np.int64), np.empty(ncase, np.int64), np.empty(ncase, np.int64),
            np.empty(ncase), np.empty(ncase), np.empty(ncase, np.bool_), np.empty(ncase),
            np.empty(ncase), np.empty(ncase))  # fmt: skip
    args = (CELLS[cell], act.code, flags, C, Wih, Whh, bih, bhh, P, Rg, amp, keys, xs, kind,
            steps, rec, t_half, float(bound), float(memory_rtol), float(saturation_tol),
            grad_on, ls, uloss)  # fmt: skip
    nthreads = numba.get_num_threads() if parallel else 1
    # the products are small (G H x H x k): one BLAS thread each is fastest (measured: a
    # serial run with OpenBLAS's default threads took 1.6x longer)
    with threadpool_limits(1, user_api="blas"):
        if nthreads > 1 and ncase > 1:
            K.network_parallel(*args, *outs, min(ncase, 4 * nthreads))
        else:
            K.network_serial(*args, *outs)
    o_state, o_resp, o_grad, o_cell, o_cgrad, o_gates, o_iwg = outs[:7]
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxn, s_cgrowth = outs[7:]

    data: dict[str, np.ndarray] = {
        "state_norm": o_state.astype(fdt),
        "response": o_resp.astype(fdt),
        "log10_gradient_norm": o_grad,
    }
    if cell == "lstm":
        data["cell_norm"] = o_cell.astype(fdt)
        data["log10_cell_gradient_norm"] = o_cgrad
    for g, name in enumerate(_GATE_NAMES.get(cell, ())):
        data[name] = o_gates[:, g]
    if ls >= 0:
        data["log10_input_weight_grad"] = o_iwg
    saturated = s_sat >= 0
    data.update(
        blowup_step=s_blow,
        memory_horizon=s_mem,
        saturation_step=s_sat,
        growth_rate=s_growth,
        response_growth_rate=s_rgrowth,
        bounded=s_bounded,
        max_state_norm=s_maxn,
        fixed_point_norm=np.where(saturated, s_final, np.nan),
    )
    if cell == "lstm":
        data["cell_growth_rate"] = s_cgrowth
    if cell == "rnn":
        W = Whh.astype(np.float64)
        data["spectral_radius"] = np.abs(np.linalg.eigvals(W)).max(axis=(-2, -1))
        data["max_singular_value"] = np.linalg.norm(W, ord=2, axis=(-2, -1)).max(axis=-1)
    attrs = dict(
        family=cell,
        cell=cell,
        activation=act.name if cell in ("rnn", "cec") else "lstm/gru gates",
        variant=variant,
        peepholes=bool(flags[K.PEEPHOLES]),
        layers=L,
        n=H,
        input_size=I,
        steps=steps,
        dtype=dtype,
        input=input_name,
        memory_rtol=float(memory_rtol),
        saturation_tol=float(saturation_tol),
        bound=float(bound),
        gradient_method="exact" if grad_on else "none",
        loss_step=ls,
    )
    return RnnResult(time=rec, data=data, attrs=attrs)


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
    cell, layers = state_dict_layers(state_dict)
    return simulate_network(cell, layers, activation=nonlinearity, **kwargs)
