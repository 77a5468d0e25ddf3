"""The cliff: the one-unit recurrent network of Pascanu, Mikolov & Bengio (2013, section 2.3).

x(t) = w sigmoid(x(t-1)) + b for t = 1..T, x(0) = x0, loss L(w, b) = (sigmoid(x(T)) - y)^2
(the paper: T = 50, x0 = 0.5, y = 0.7). Where (w, b) crosses a bifurcation of the map
x -> w sigmoid(x) + b (Doya 1993: for w > 4 there is a band of b with two stable fixed points,
:func:`bistable_band`), x(T) jumps from one fixed point to the other, and the loss has a cliff:
a wall where the gradient is huge. Gradient descent that meets the wall is thrown far away;
clipping the gradient's norm (Pascanu et al. 2013, algorithm 1) keeps the step small.

Everything here is exact: the gradient is forward-mode (dx(t)/dw and dx(t)/db carried with
x(t)), in float64, one case per (w, b) point or per descent run, many cases at once.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from ._parallel import run_chunks, threads_for
from .activations import sigmoid

__all__ = ["CLIFF", "basin_boundary", "bistable_band", "cliff_descent", "cliff_loss", "valley"]

#: Pascanu et al.'s settings: sequence length, initial state, target.
CLIFF = {"length": 50, "x0": 0.5, "target": 0.7}


@jit
def _loss_grad(w, b, length, x0, target):
    """(loss, dL/dw, dL/db) of one (w, b)."""
    x, dw, db = x0, 0.0, 0.0
    for _ in range(length):
        s, ds = sigmoid(x)
        dw, db = s + w * ds * dw, 1.0 + w * ds * db
        x = w * s + b
    s, ds = sigmoid(x)
    e = s - target
    return e * e, 2.0 * e * ds * dw, 2.0 * e * ds * db


@jit
def _landscape(w, b, length, x0, target, out):
    for i in range(w.shape[0]):
        loss, gw, gb = _loss_grad(w[i], b[i], length, x0, target)
        out[i, 0], out[i, 1], out[i, 2] = loss, gw, gb


@jit
def _descent(w0, b0, lr, clip, length, x0, target, path, clipped):
    """Gradient descent from each (w0, b0): path[i, k] = (w, b, loss, ||g||) before update k
    (k = updates: the end point); clipped[i] counts the updates whose norm was clipped."""
    updates = path.shape[1] - 1
    for i in range(w0.shape[0]):
        w, b = w0[i], b0[i]
        n = 0
        for k in range(updates + 1):
            loss, gw, gb = _loss_grad(w, b, length, x0, target)
            g = np.sqrt(gw * gw + gb * gb)
            path[i, k, 0], path[i, k, 1], path[i, k, 2], path[i, k, 3] = w, b, loss, g
            if k == updates or not (g < np.inf):
                if not (g < np.inf):  # the loss or gradient overflowed: stop, record it
                    for j in range(k + 1, updates + 1):
                        for c in range(4):
                            path[i, j, c] = np.nan
                break
            if clip[i] > 0.0 and g > clip[i]:
                gw, gb = gw * clip[i] / g, gb * clip[i] / g
                n += 1
            w, b = w - lr[i] * gw, b - lr[i] * gb
        clipped[i] = n


def _cases(*arrays):
    """float64 1-D arrays of one common length (the broadcast of the inputs)."""
    out = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    return [np.ascontiguousarray(a.ravel()) for a in out], out[0].shape


def _check(length, **finite):
    if int(length) != length or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    for name, v in finite.items():
        v = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")


def cliff_loss(w, b, *, length: int = 50, x0: float = 0.5, target: float = 0.7):
    """The loss and its exact gradient over any (w, b) points.

    Parameters
    ----------
    w, b : array_like
        Broadcastable arrays of the recurrent weight and the bias.
    length : int
        T, the number of steps before the loss (Pascanu et al.: 50).
    x0, target : float
        The initial state and the target of sigmoid(x(T)) (0.5 and 0.7 in the paper).

    Returns
    -------
    loss, dloss_dw, dloss_db : numpy.ndarray
        Each of the broadcast shape of ``w`` and ``b``.
    """
    _check(length, x0=x0, target=target)
    (wa, ba), shape = _cases(w, b)
    out = np.empty((wa.shape[0], 3))
    _landscape(wa, ba, int(length), float(x0), float(target), out)
    return tuple(out[:, c].reshape(shape) for c in range(3))


def cliff_descent(
    w0,
    b0,
    *,
    learning_rate=0.1,
    clip=0.0,
    updates: int = 100,
    length: int = 50,
    x0: float = 0.5,
    target: float = 0.7,
    parallel: bool | int = True,
) -> dict:
    """Plain gradient descent on the cliff loss from many starting points at once.

    Parameters
    ----------
    w0, b0 : array_like
        Starting points (broadcast together: one run per element).
    learning_rate : float or array_like
        The step size, per run (broadcast with the starts).
    clip : float or array_like
        Norm clipping threshold per run (Pascanu et al. 2013, algorithm 1: if ||g|| > clip,
        g <- clip g / ||g||); 0 for no clipping.
    updates : int
        Number of updates.
    length, x0, target :
        As in :func:`cliff_loss`.
    parallel : bool or int
        Threads (True: all CPUs).

    Returns
    -------
    dict
        ``w``, ``b``, ``loss``, ``grad_norm``: (runs..., updates + 1), the values before each
        update and at the end (NaN after an overflow); ``clipped_fraction`` (runs...): the
        share of updates whose gradient was clipped; ``max_step`` (runs...): the largest
        parameter step ||delta (w, b)||.
    """
    _check(length, x0=x0, target=target, learning_rate=learning_rate, clip=clip)
    if int(updates) != updates or updates < 1:
        raise ValueError(f"updates must be a positive integer, got {updates!r}")
    if np.any(np.asarray(clip) < 0):
        raise ValueError("clip must be >= 0 (0: no clipping)")
    (wa, ba, lr, cl), shape = _cases(w0, b0, learning_rate, clip)
    path = np.empty((wa.shape[0], int(updates) + 1, 4))
    clipped = np.zeros(wa.shape[0], dtype=np.int64)
    args = (wa, ba, lr, cl, int(length), float(x0), float(target), path, clipped)
    sliced = [True] * 4 + [False] * 3 + [True] * 2
    run_chunks(_descent, args, sliced, wa.shape[0], threads_for(parallel))
    steps = np.hypot(np.diff(path[..., 0], axis=1), np.diff(path[..., 1], axis=1))
    with np.errstate(invalid="ignore"):
        max_step = np.where(np.isnan(steps).all(axis=1), np.nan, np.nanmax(
            np.where(np.isnan(steps), -np.inf, steps), axis=1))  # fmt: skip
    out = {name: path[..., c].reshape(*shape, -1)
           for c, name in enumerate(("w", "b", "loss", "grad_norm"))}  # fmt: skip
    out["clipped_fraction"] = (clipped / int(updates)).reshape(shape)
    out["max_step"] = max_step.reshape(shape)
    return out


def bistable_band(w):
    """The band of b in which x -> w sigmoid(x) + b has two stable fixed points (Doya 1993).

    For w > 4 the fold points, where w sigmoid'(x) = 1, are at sigmoid(x) = s with
    s (1 - s) = 1 / w, s = (1 +- sqrt(1 - 4 / w)) / 2; at each, b = x - w s. Between the two b
    there are three fixed points (the middle one unstable). For w <= 4: no band (NaN).

    Returns
    -------
    (b_low, b_high) : tuple of numpy.ndarray
    """
    w = np.asarray(w, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sqrt(1.0 - 4.0 / w)
        ends = []
        for s in ((1 + r) / 2, (1 - r) / 2):
            x = np.log(s / (1 - s))
            ends.append(np.where(w > 4, x - w * s, np.nan))
    return ends[0], ends[1]


def basin_boundary(w, x0: float = 0.5):
    """The wall: the line b = x0 - w sigmoid(x0), on which x(0) = x0 is itself a fixed point.

    Inside the bistable band this fixed point is the unstable middle one, the boundary between
    the basins of the two stable ones: on either side of the line x(T) ends near a different
    fixed point, and the loss jumps (the cliff).
    """
    w = np.asarray(w, dtype=np.float64)
    return x0 - w / (1.0 + np.exp(-x0))


def valley(w, target: float = 0.7):
    """The bottom of the loss: b = x* - w target with x* = logit(target), where the map's
    fixed point x* gives sigmoid(x*) = target; NaN where that fixed point is unstable
    (w target (1 - target) >= 1), so that no run settles there."""
    w = np.asarray(w, dtype=np.float64)
    x = np.log(target / (1.0 - target))
    return np.where(w * target * (1.0 - target) < 1.0, x - w * target, np.nan)
