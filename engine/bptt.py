"""Exact gradients of a loss by backpropagation through time, for every cell of
:mod:`rnnlab.engine.cells` (stacked layers, a linear readout, MSE or cross-entropy).

:func:`bptt` validates and allocates; the kernel (one per cell and precision, made by
:func:`make_bptt_kernel` around the cell's module) does the arithmetic, one case after the
other, and chunks of cases run on threads (:func:`rnnlab.engine._parallel.run_chunks`). Per
case, in a time-major layout (steps, batch, ...):

- forward, layer by layer (layer l's input at step t is layer l-1's h at step t, so a whole
  layer can run before the next): the input terms ``W_ih x`` of every step and sample are one
  matrix product, then the cell's ``forward`` runs step after step for each sample, keeping
  every state and the cell's ``cache`` (what its derivatives need);
- the readout ``y = W_o h_top + b_o`` at the loss steps, the loss and its adjoint dL/dy;
- reverse mode, layer by layer from the top: the adjoint of the layer's state goes back in
  time through the cell's ``backward`` (the vector-Jacobian step, O(H^2) per step and
  sample), fed at each step by what arrives at its h from above (the readout at the top,
  ``W_ih^T dL/d(ax)`` of the layer above otherwise); the weight gradients
  ``sum_t dL/d(ax) x^T`` and ``sum_t dL/d(W_hh h') h'^T`` are then one matrix product each
  over every step and sample.

Everything the backward needs is stored (no recomputation): per case and layer, the states
and caches of every step, which is ``8 steps batch (CACHE + 2 R) H`` bytes or so (the memory
guard refuses runs that would not fit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._jit import jit
from ._memory import check_memory
from ._parallel import run_chunks, threads_for
from ._validate import check_choice
from .activations import get_activation
from .cells import CELLS, get_cell, lstm
from .network import _variant_flags

__all__ = ["LOSSES", "bptt", "make_bptt_kernel"]

#: The losses of :func:`bptt` and their codes in the kernel.
LOSSES = {"mse": 0, "cross_entropy": 1}

_LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole", "weight_gate")


@jit
def _loss_and_adjoint(Y, bo, Yt, Yc, kind, Z, dY):
    """The loss of the readout ``Z = Y + b_o`` (nloss, batch, O) and its adjoint ``dY``.

    ``kind`` 0: mean squared error against ``Yt`` (mean over every entry); 1: cross-entropy
    against the class indices ``Yc`` (mean over loss steps and samples of -log softmax Z).
    ``Z`` (float64) gets the readout with its bias (the outputs, or the logits).
    """
    nl, B, O = Y.shape
    total = 0.0
    if kind == 0:
        scale = 1.0 / (nl * B * O)
        for k in range(nl):
            for b in range(B):
                for o in range(O):
                    y = np.float64(Y[k, b, o]) + bo[o]
                    Z[k, b, o] = y
                    e = y - Yt[k, b, o]
                    total += e * e
                    dY[k, b, o] = 2.0 * e * scale
        return total * scale
    scale = 1.0 / (nl * B)
    for k in range(nl):
        for b in range(B):
            m = -np.inf
            for o in range(O):
                y = np.float64(Y[k, b, o]) + bo[o]
                Z[k, b, o] = y
                if y > m:
                    m = y
                elif y != y:  # NaN: every output of this sample becomes NaN
                    m = y
            s = 0.0
            for o in range(O):
                s += np.exp(Z[k, b, o] - m)
            c = Yc[k, b]
            total += m + np.log(s) - Z[k, b, c]
            for o in range(O):
                dY[k, b, o] = np.exp(Z[k, b, o] - m) / s * scale
            dY[k, b, c] -= scale
    return total * scale


@jit
def _column_sums_into(A, out):
    """out[j] = sum_r A[r, j] (float64 sums)."""
    for j in range(A.shape[1]):
        v = 0.0
        for r in range(A.shape[0]):
            v += A[r, j]
        out[j] = v


@jit
def _copy_into(src, dst):
    """dst[:] = src for 2-D arrays (of any two dtypes)."""
    for r in range(src.shape[0]):
        for c in range(src.shape[1]):
            dst[r, c] = src[r, c]


def make_bptt_kernel(cell):
    """The gradient kernel of one cell (its module in :mod:`.cells`), compiled on first call.

    Arguments (``cases`` leading): ``W0`` (cases, G H, I) layer 0's input weight, ``Wih``
    (cases, L-1, G H, H) the others', ``Whh`` (cases, L, G H, H), ``bih``, ``bhh``
    (cases, L, G H), ``P`` (cases, L, 3, H) or (cases, L, 0, 0) the peepholes, ``Rg``
    (cases, L, 3H, 3H) or (cases, L, 0, 0) the FGR gate weights, ``Wo`` (cases, O, H) and
    ``bo`` (cases, O) the readout, ``X`` (cases, steps, batch, I) the inputs, ``Yt``
    (cases, nloss, batch, O) the MSE targets or (cases, 0, 0, 0), ``Yc`` (cases, nloss,
    batch) the class indices or (cases, 0, 0); settings ``lsteps`` (nloss,) the loss steps,
    ``flags`` the LSTM variant flags, ``iopt`` (activation code, loss code); outputs (float64,
    zero on entry) ``loss`` (cases,), ``outputs`` (cases, nloss, batch, O) the readout at the
    loss steps, and the gradients ``g*`` of the same shapes as the weights. As in
    :func:`rnnlab.engine._driver.make_kernel`, only the module is captured.
    """

    @jit
    def run_cases(
        W0, Wih, Whh, bih, bhh, P, Rg, Wo, bo, X, Yt, Yc, lsteps, flags, iopt,
        loss, outputs, gW0, gWih, gWhh, gbih, gbhh, gP, gRg, gWo, gbo,
    ):  # fmt: skip
        ncase = X.shape[0]
        steps, B, I = X.shape[1], X.shape[2], X.shape[3]
        L, GH, H = Whh.shape[1], Whh.shape[2], Whh.shape[3]
        O = Wo.shape[1]
        nl = lsteps.shape[0]
        act, kind = iopt[0], iopt[1]
        dt = Whh.dtype
        R = cell.rows(H, flags)
        n = steps * B
        S = np.zeros((L, steps + 1, B, R), dt)  # S[l, t + 1] = the state after step t
        Hh = np.zeros((L, steps + 1, B, H), dt)  # its h rows, contiguous for the products
        cache = np.zeros((L, steps, B, cell.CACHE, H))
        AX = np.zeros((steps, B, GH), dt)  # the input terms, then their adjoints
        DAH = np.zeros((steps, B, GH), dt)  # the adjoints of W_hh h'
        LIN = np.zeros((steps, B, H), dt)  # the adjoint arriving at a layer's h from above
        lam, lamp = np.zeros((B, R), dt), np.zeros((B, R), dt)
        ah, gq, gw = np.zeros(GH, dt), np.zeros(3 * H, dt), np.zeros(3 * H, dt)
        z, gsum = np.zeros(GH), np.zeros(3)
        HL, Y, dY = np.zeros((nl, B, H), dt), np.zeros((nl, B, O), dt), np.zeros((nl, B, O), dt)
        tGH, tI, tO = np.zeros((GH, H), dt), np.zeros((GH, I), dt), np.zeros((O, H), dt)
        one = np.float64(1.0)  # the rnn cell's gain
        AX2, DAH2, LIN2 = AX.reshape((n, GH)), DAH.reshape((n, GH)), LIN.reshape((n, H))
        for i in range(ncase):
            X2 = X[i].reshape((n, I))
            for l in range(L):
                if l == 0:
                    np.dot(X2, W0[i].T, AX2)
                else:
                    np.dot(Hh[l - 1, 1:].reshape((n, H)), Wih[i, l - 1].T, AX2)
                for t in range(steps):
                    for b in range(B):
                        cell.forward(
                            H, flags, act, one, Whh[i, l], bih[i, l], bhh[i, l], P[i, l],
                            Rg[i, l], AX[t, b], S[l, t, b], S[l, t + 1, b], gsum, ah, gq, z,
                            cache[l, t, b],
                        )  # fmt: skip
                        for u in range(H):
                            Hh[l, t + 1, b, u] = S[l, t + 1, b, u]
            # the readout at the loss steps, the loss and its adjoint
            for k in range(nl):
                HL[k, :, :] = Hh[L - 1, lsteps[k] + 1]
            np.dot(HL.reshape((nl * B, H)), Wo[i].T, Y.reshape((nl * B, O)))
            loss[i] = _loss_and_adjoint(Y, bo[i], Yt[i], Yc[i], kind, outputs[i], dY)
            dY2 = dY.reshape((nl * B, O))
            np.dot(dY2.T, HL.reshape((nl * B, H)), tO)
            _copy_into(tO, gWo[i])
            _column_sums_into(dY2, gbo[i])
            LIN[:, :, :] = 0.0
            for k in range(nl):
                np.dot(dY[k], Wo[i], LIN[lsteps[k]])
            # reverse mode, layer by layer from the top
            for l in range(L - 1, -1, -1):
                lamp[:, :] = 0.0
                for t in range(steps - 1, -1, -1):
                    for b in range(B):
                        for r in range(R):
                            lam[b, r] = lamp[b, r]
                        for u in range(H):
                            lam[b, u] += LIN[t, b, u]
                        cell.backward(
                            H, flags, one, Whh[i, l], P[i, l], Rg[i, l], S[l, t, b],
                            S[l, t + 1, b], lam[b], lamp[b], AX[t, b], DAH[t, b], gbhh[i, l],
                            gP[i, l], gRg[i, l], gw, cache[l, t, b],
                        )  # fmt: skip
                np.dot(DAH2.T, Hh[l, 0:steps].reshape((n, H)), tGH)
                _copy_into(tGH, gWhh[i, l])
                _column_sums_into(AX2, gbih[i, l])
                if l == 0:
                    np.dot(AX2.T, X2, tI)
                    _copy_into(tI, gW0[i])
                else:
                    np.dot(AX2.T, Hh[l - 1, 1:].reshape((n, H)), tGH)
                    _copy_into(tGH, gWih[i, l - 1])
                    np.dot(AX2, Wih[i, l - 1], LIN2)

    return run_cases


#: The gradient kernel of each cell, compiled on first call (then loaded from Numba's cache).
KERNELS = {name: make_bptt_kernel(c.module) for name, c in CELLS.items()}


def _float_array(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        what = type(value).__name__
        raise ValueError(f"{name} must be an array of numbers, got {what}") from None


class _Cases:
    """Arrays with an optional leading case axis; the case count they agree on."""

    def __init__(self):
        self.counts: list[tuple[str, int]] = []

    def add(self, value, shape: tuple[int, ...], name: str, what: str) -> np.ndarray:
        """``value`` as (c, *shape) float64, c = 1 if it had no case axis."""
        arr = _float_array(value, name)
        if arr.shape == shape:
            arr = arr[None]
        elif arr.ndim != len(shape) + 1 or arr.shape[1:] != shape or arr.shape[0] < 1:
            raise ValueError(
                f"{name} has shape {arr.shape}: expected {shape} ({what}) or (cases, *{shape})"
            )
        if arr.shape[0] > 1:
            self.counts.append((name, arr.shape[0]))
        return arr

    def count(self) -> int:
        if not self.counts:
            return 1
        name, n = self.counts[0]
        for other, m in self.counts[1:]:
            if m != n:
                raise ValueError(
                    f"{other} has {m} cases but {name} has {n}: give 1 or the same number"
                )
        return n


def _stack(arrays, ncase: int, shape, dtype) -> np.ndarray:
    """Per-layer (c, *shape) arrays as one writeable (ncase, L, *shape) array."""
    out = np.zeros((ncase, len(arrays), *shape), dtype)
    for l, a in enumerate(arrays):
        if a is not None:
            out[:, l] = a
    return out


def _loss_steps(loss_steps, steps: int) -> np.ndarray:
    if loss_steps is None:
        return np.arange(steps, dtype=np.int64)
    arr = np.asarray(loss_steps)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise ValueError(f"loss_steps must be a non-empty 1-D sequence of integers, got {arr!r}")
    if arr.min() < 0 or arr.max() >= steps:
        raise ValueError(f"loss_steps must lie in [0, steps - 1 = {steps - 1}], got {arr.tolist()}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError("loss_steps must be strictly increasing")
    return arr.astype(np.int64)


def bptt(
    cell: str,
    layers: Sequence[Mapping[str, np.ndarray]],
    readout: Mapping[str, np.ndarray],
    inputs,
    targets,
    *,
    loss: str = "mse",
    loss_steps=None,
    variant: str = "vanilla",
    activation: str = "tanh",
    dtype: str = "float64",
    parallel: bool | int = True,
    return_outputs: bool = False,
) -> tuple[np.ndarray, dict] | tuple[np.ndarray, dict, np.ndarray]:
    """The loss of a stacked recurrent network with a linear readout and its exact gradient
    with respect to every weight, by backpropagation through time.

    For each case, each sample of its batch runs from the zero state, layer l's input at step
    t being layer l-1's h at step t (the network's input x(t) for layer 0); at each loss step
    s the readout is ``y(s) = W_o h_top(s) + b_o`` and the loss is PyTorch's default (mean)
    reduction over samples, loss steps (and outputs for MSE).

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "cec"}
        The cell (see :func:`rnnlab.engine.simulate_network` for the equations).
    layers : sequence of mapping
        One mapping per layer in PyTorch's layout, as for
        :func:`rnnlab.engine.simulate_network`: ``weight_ih`` (G H, I) for the first layer and
        (G H, H) above, ``weight_hh`` (G H, H) (not needed by cec, which ignores it and
        ``bias_hh``), optionally ``bias_ih`` and ``bias_hh`` (G H,) (zero if absent), and for
        the LSTM ``weight_peephole`` (3, H) and ``weight_gate`` (3H, 3H) (variant FGR) as
        :func:`rnnlab.engine.init_layers` makes them. Each array may carry a leading case
        axis (cases, ...); torch tensors are accepted.
    readout : mapping
        ``weight`` (O, H) and optionally ``bias`` (O,), each optionally with a case axis.
    inputs : array_like
        (cases, batch, steps, I), or (batch, steps, I) for every case.
    targets : array_like
        For ``"mse"``: floats (cases, batch, nloss, O) or (batch, nloss, O). For
        ``"cross_entropy"``: integer class indices in [0, O) (cases, batch, nloss) or
        (batch, nloss).
    loss : {"mse", "cross_entropy"}
        ``"mse"``: mean over samples, loss steps and outputs of (y - target)^2
        (``torch.nn.functional.mse_loss``). ``"cross_entropy"``: mean over samples and loss
        steps of -log softmax(y)[target] (``torch.nn.functional.cross_entropy`` on the
        logits y).
    loss_steps : int or sequence of int, optional
        The strictly increasing steps in [0, steps - 1] where the loss is taken (nloss of
        them). Default: every step.
    variant : str
        LSTM variant, one of :data:`rnnlab.engine.LSTM_VARIANTS` (vanilla, NIG, NFG, NOG,
        NIAF, NOAF, NP, CIFG, FGR); ``"vanilla"`` for the other cells. Peepholes are used
        when the layers have ``weight_peephole`` (except for NP, whose peephole gradients
        are then zero).
    activation : {"identity", "sigmoid", "tanh", "relu"}
        f of the rnn and cec cells (the LSTM and GRU use sigmoid gates and tanh).
    dtype : {"float64", "float32"}
        Precision of the weights, states and adjoints (the loss and the gradients are
        returned as float64, summed in float64 where the kernel sums).
    parallel : bool or int
        Run chunks of cases on all CPUs (True), one thread (False) or this many threads.
        A case's result does not depend on it (bit for bit).
    return_outputs : bool
        Also return the readout at the loss steps (for accuracies and predictions).

    Returns
    -------
    loss : numpy.ndarray
        (cases,) float64: the loss of each case (NaN when a weight or an input is NaN, inf or
        NaN when the run overflowed; nothing raises).
    grads : dict
        ``grads["layers"]``: one dict per layer with the keys of ``layers[l]`` (the gradient
        of each array, float64, (cases, *shape): a case axis always, also when the weights
        had none); ``grads["readout"]``: the same for ``readout``. The gradients of arrays the
        cell or variant does not use (cec's ``weight_hh``, NP's peepholes, ``weight_gate``
        outside FGR) are zero.
    outputs : numpy.ndarray
        Only with ``return_outputs``: (cases, batch, nloss, O) float64, the readout
        ``W_o h_top(s) + b_o`` at each loss step (the logits for cross-entropy).

    Raises
    ------
    ValueError
        For an unknown name, a missing weight, an array of the wrong shape, disagreeing case
        counts, loss steps out of range, a class index out of range or arrays that would not
        fit in memory; the message names the argument.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnlab.engine import bptt, init_layers
    >>> layers = init_layers("lstm", 8, 2, input_size=3, seed=0)
    >>> readout = {"weight": np.ones((1, 8)) / 8, "bias": np.zeros(1)}
    >>> x = np.random.default_rng(0).standard_normal((4, 20, 3))  # batch 4, 20 steps
    >>> loss, grads = bptt("lstm", layers, readout, x, np.zeros((4, 1, 1)), loss_steps=[19])
    >>> grads["layers"][1]["weight_hh"].shape
    (1, 32, 8)
    """
    c = get_cell(cell)
    if not isinstance(variant, str) or variant not in lstm.VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {', '.join(lstm.VARIANTS)}")
    if variant != "vanilla" and cell != "lstm":
        raise ValueError(f"variant {variant!r} is an LSTM variant; cell is {cell!r}")
    act = get_activation(activation)
    check_choice("loss", loss, tuple(LOSSES))
    check_choice("dtype", dtype, ("float64", "float32"))
    fdt = np.dtype(dtype)
    threads = threads_for(parallel)
    if isinstance(layers, Mapping) or not isinstance(layers, Sequence) or len(layers) < 1:
        raise ValueError("layers must be a non-empty list of per-layer weight mappings")
    if not all(isinstance(w, Mapping) for w in layers):
        raise ValueError("layers must be a list of mappings (one dict of arrays per layer)")
    for l, w in enumerate(layers):
        for key in w:
            if key not in _LAYER_KEYS:
                raise ValueError(f"layers[{l}] has an unknown key {key!r}: use {_LAYER_KEYS}")
            if key in ("weight_peephole", "weight_gate") and cell != "lstm":
                raise ValueError(f"layers[{l}][{key!r}] is an LSTM weight; cell is {cell!r}")
        if "weight_ih" not in w:
            raise ValueError(f"layers[{l}] has no 'weight_ih'")
        if cell != "cec" and "weight_hh" not in w:
            raise ValueError(f"layers[{l}] has no 'weight_hh'")
    if not isinstance(readout, Mapping) or "weight" not in readout:
        raise ValueError("readout must be a mapping with 'weight' (O, H) and optionally 'bias'")
    if any(k not in ("weight", "bias") for k in readout):
        raise ValueError(f"readout has unknown keys {sorted(readout)}: use 'weight' and 'bias'")

    G, L = c.gates, len(layers)
    w0 = _float_array(layers[0]["weight_ih"], "layers[0]['weight_ih']")
    if w0.ndim not in (2, 3) or w0.shape[-2] % G or w0.shape[-2] == 0 or w0.shape[-1] == 0:
        raise ValueError(
            f"layers[0]['weight_ih'] has shape {w0.shape}: expected (G H, I) with G = {G}"
        )
    H, I = w0.shape[-2] // G, w0.shape[-1]
    cases = _Cases()
    peep = cell == "lstm" and any("weight_peephole" in w for w in layers)
    fgr = variant == "FGR"
    arrays: dict[str, list] = {k: [] for k in _LAYER_KEYS}
    for l, w in enumerate(layers):
        nin, what = (I, "G H, I") if l == 0 else (H, "G H, H")
        name = f"layers[{l}]"
        arrays["weight_ih"].append(
            cases.add(w["weight_ih"], (G * H, nin), f"{name}['weight_ih']", what)
        )
        for key, shape, what in (
            ("weight_hh", (G * H, H), "G H, H"),
            ("bias_ih", (G * H,), "G H"),
            ("bias_hh", (G * H,), "G H"),
            ("weight_peephole", (3, H), "3, H"),
            ("weight_gate", (3 * H, 3 * H), "3H, 3H"),
        ):
            if key in w:
                arrays[key].append(cases.add(w[key], shape, f"{name}[{key!r}]", what))
            elif key == "weight_peephole" and peep:
                raise ValueError(f"{name} has no 'weight_peephole' (the other layers have)")
            elif key == "weight_gate" and fgr:
                raise ValueError(f"{name} has no 'weight_gate' (3H, 3H), needed by FGR")
            else:
                arrays[key].append(None)
    rw = _float_array(readout["weight"], "readout['weight']")
    if rw.ndim not in (2, 3) or rw.shape[-1] != H or rw.shape[-2] < 1:
        raise ValueError(
            f"readout['weight'] has shape {rw.shape}: expected (O, H = {H}) or (cases, O, {H})"
        )
    O = rw.shape[-2]
    rw = cases.add(rw, (O, H), "readout['weight']", "O, H")
    rb = cases.add(readout["bias"], (O,), "readout['bias']", "O") if "bias" in readout else None

    x = _float_array(inputs, "inputs")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[3] != I or 0 in x.shape:
        raise ValueError(
            f"inputs has shape {x.shape}: expected (cases, batch, steps, {I}) or "
            f"(batch, steps, {I}), with I = {I} the columns of layers[0]['weight_ih']"
        )
    if x.shape[0] > 1:
        cases.counts.append(("inputs", x.shape[0]))
    B, steps = x.shape[1], x.shape[2]
    lsteps = _loss_steps(loss_steps, steps)
    nl = len(lsteps)

    if loss == "mse":
        y = _float_array(targets, "targets")
        if y.ndim == 3:
            y = y[None]
        if y.ndim != 4 or y.shape[1:] != (B, nl, O) or y.shape[0] < 1:
            raise ValueError(
                f"targets has shape {y.shape}: expected (cases, batch, nloss, O) or "
                f"(batch, nloss, O) = {(B, nl, O)} for mse"
            )
        if y.shape[0] > 1:
            cases.counts.append(("targets", y.shape[0]))
        yc = np.zeros((1, 0, 0), np.int64)
    else:
        yc = np.asarray(targets.detach().cpu().numpy() if hasattr(targets, "detach") else targets)
        if yc.dtype.kind not in "iu":
            raise ValueError(f"targets must be integer class indices for cross_entropy, got "
                             f"dtype {yc.dtype}")  # fmt: skip
        if yc.ndim == 2:
            yc = yc[None]
        if yc.ndim != 3 or yc.shape[1:] != (B, nl) or yc.shape[0] < 1:
            raise ValueError(
                f"targets has shape {yc.shape}: expected (cases, batch, nloss) or "
                f"(batch, nloss) = {(B, nl)} for cross_entropy"
            )
        if yc.size and (yc.min() < 0 or yc.max() >= O):
            raise ValueError(
                f"targets holds class indices in [{yc.min()}, {yc.max()}]: they must lie in "
                f"[0, O - 1 = {O - 1}]"
            )
        if yc.shape[0] > 1:
            cases.counts.append(("targets", yc.shape[0]))
        y = np.zeros((1, 0, 0, 0))
    ncase = cases.count()

    flags = _variant_flags(cell, variant, peep)
    R = int(c.module.rows(H, flags))
    isz = fdt.itemsize
    nweights = L * G * H * (2 * H + 2) + G * H * I + O * (H + 1) + L * 12 * H * H
    work = (
        isz * L * (steps + 1) * B * (R + H)
        + 8 * L * steps * B * int(c.module.CACHE) * H
        + isz * steps * B * (2 * G * H + H)
    )
    check_memory(
        ncase * (isz * steps * B * I + 16 * nl * B * O + 16 * nweights)
        + min(threads, ncase) * work,
        "give fewer cases, a smaller batch or fewer steps per call",
    )

    def per_case(a, dt=fdt):
        # a new writeable array (a read-only view would compile the kernel once more)
        return np.array(np.broadcast_to(a, (ncase, *a.shape[1:])), dtype=dt, order="C")

    W0 = per_case(arrays["weight_ih"][0])
    Wih = _stack(arrays["weight_ih"][1:], ncase, (G * H, H), fdt)
    Whh = _stack(arrays["weight_hh"], ncase, (G * H, H), fdt)
    bih = _stack(arrays["bias_ih"], ncase, (G * H,), fdt)
    bhh = _stack(arrays["bias_hh"], ncase, (G * H,), fdt)
    if cell == "cec":  # h = h' + f(W_ih x + b_ih): no recurrent weight
        Whh[:] = 0.0
        bhh[:] = 0.0
    pshape, rshape = ((3, H) if peep else (0, 0)), ((3 * H, 3 * H) if fgr else (0, 0))
    P = _stack(arrays["weight_peephole"] if peep else [None] * L, ncase, pshape, fdt)
    Rg = _stack(arrays["weight_gate"] if fgr else [None] * L, ncase, rshape, fdt)
    Wo = per_case(rw)
    bo = per_case(rb) if rb is not None else np.zeros((ncase, O), fdt)
    X = per_case(np.transpose(x, (0, 2, 1, 3)))  # time-major: (cases, steps, batch, I)
    Yt = per_case(np.transpose(y, (0, 2, 1, 3)), np.float64) if loss == "mse" else np.zeros(
        (ncase, 0, 0, 0))  # fmt: skip
    Yc = per_case(np.transpose(yc, (0, 2, 1)), np.int64) if loss != "mse" else np.zeros(
        (ncase, 0, 0), np.int64)  # fmt: skip
    iopt = np.array([act.code if c.uses_activation else 0, LOSSES[loss]], np.int64)

    out_loss = np.zeros(ncase)
    out_y = np.zeros((ncase, nl, B, O))
    g = {
        name: np.zeros(a.shape)
        for name, a in (("W0", W0), ("Wih", Wih), ("Whh", Whh), ("bih", bih), ("bhh", bhh),
                        ("P", P), ("Rg", Rg), ("Wo", Wo), ("bo", bo))
    }  # fmt: skip
    args = (
        W0, Wih, Whh, bih, bhh, P, Rg, Wo, bo, X, Yt, Yc, lsteps, flags, iopt, out_loss, out_y,
        g["W0"], g["Wih"], g["Whh"], g["bih"], g["bhh"], g["P"], g["Rg"], g["Wo"], g["bo"],
    )  # fmt: skip
    sliced = [True] * 12 + [False] * 3 + [True] * 11
    run_chunks(KERNELS[cell], args, sliced, ncase, threads)

    out_layers = []
    for l, w in enumerate(layers):
        d = {}
        for key in w:
            if key == "weight_ih":
                d[key] = g["W0"] if l == 0 else g["Wih"][:, l - 1]
            elif key == "weight_hh":
                d[key] = g["Whh"][:, l]
            elif key == "bias_ih":
                d[key] = g["bih"][:, l]
            elif key == "bias_hh":
                d[key] = g["bhh"][:, l]
            elif key == "weight_peephole":
                d[key] = g["P"][:, l] if peep else np.zeros((ncase, 3, H))
            else:
                d[key] = g["Rg"][:, l] if fgr else np.zeros((ncase, 3 * H, 3 * H))
        out_layers.append({k: np.ascontiguousarray(v) for k, v in d.items()})
    out_readout = {"weight": g["Wo"]}
    if "bias" in readout:
        out_readout["bias"] = g["bo"]
    grads = {"layers": out_layers, "readout": out_readout}
    if return_outputs:
        return out_loss, grads, np.ascontiguousarray(np.transpose(out_y, (0, 2, 1, 3)))
    return out_loss, grads
