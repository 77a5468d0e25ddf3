"""The response of linear vector recursions, exactly: ||W^t C x(0)|| for any length.

For h(t) = W h(t-1) + C x(t) + b the memory of the input at t = 0, h(t) - hbar(t), is exactly
W^t C x(0) whatever the other inputs and the bias. The two-run difference of the kernels
computes it with two rounding errors that grow with the runs themselves, underflows after a
few hundred steps of decay (|lambda| = 0.8: 1e-969 at t = 10^4) and, when the dominant
component was removed from the input, lets rounding bring that component back: from 1e-16 it
grows like |lambda_1|^t and takes over the slope after a few hundred steps. Here the vector
d(t) = W d(t-1) is propagated alone, renormalised every step (its log norm kept apart, as the
Jacobian products are), and, with ``projectors``, projected every step onto the complement
of the dominant eigenspace, so that ``response_growth_rate`` is ln|lambda_2| over any length.
"""

from __future__ import annotations

import numpy as np

from . import _tracking as K
from ._numerics import input_at

__all__ = ["exact_response", "linear_response"]


def linear_response(W, d0, settings, projectors=None):
    """||W^t d0|| at every recorded step, and the memory summaries, for every case.

    Parameters
    ----------
    W : ndarray (cases, n, n)
    d0 : ndarray (cases, n)
        C x(0), the state the input at t = 0 adds.
    settings : RunSettings
        The run's steps, recorded steps and memory tolerance.
    projectors : ndarray (cases, n, n), optional
        Applied after every step (:func:`rnnlab.engine.weights.dominant_complement`).

    Returns
    -------
    rows : ndarray (cases, nrec)
        The response at the recorded steps (float64; below 1e-308 it rounds to 0).
    memory : ndarray (cases,)
        ``memory_horizon`` as the kernels define it (-1 never forgotten, 0 if d0 = 0).
    growth : ndarray (cases,)
        ``response_growth_rate``: (ln r(T) - ln r(T/2)) / (T - T/2).
    """
    W = np.asarray(W, dtype=np.float64)
    d = np.array(d0, dtype=np.float64)
    ncase = d.shape[0]
    steps, rec, t_half = settings.steps, settings.rec, settings.t_half
    log_r = np.zeros(ncase)
    d, log_r = _renormalise(d, log_r)
    log_r0 = log_r.copy()
    floor = np.log(settings.memory_rtol) + log_r0
    last_memory = np.where(log_r > floor, 0, -1)
    rows = np.full((ncase, rec.size), np.nan)
    kk = 0
    log_half = log_r.copy()
    for t in range(steps):
        if t > 0:
            d = np.einsum("cij,cj->ci", W, d)
            if projectors is not None:
                d = np.einsum("cij,cj->ci", projectors, d)
            d, log_r = _renormalise(d, log_r)
            last_memory = np.where(log_r > floor, t, last_memory)
        if t == t_half:
            log_half = log_r.copy()
        while kk < rec.size and rec[kk] == t:
            with np.errstate(over="ignore"):  # beyond the float range: inf, as h would be
                rows[:, kk] = np.exp(log_r)
            kk += 1
    last = steps - 1
    memory = np.where(last_memory < last, last_memory + 1, -1).astype(np.float64)
    memory = np.where(np.isneginf(log_r0), 0.0, memory)
    span = last - t_half
    with np.errstate(invalid="ignore"):
        growth = np.where(np.isneginf(log_r), -np.inf, (log_r - log_half) / max(span, 1))
    return rows, memory, np.where(span > 0, growth, np.nan)


def _renormalise(d, log_r):
    """d scaled to unit norm where it is finite and not 0; its log norm added to log_r."""
    s = np.linalg.norm(d, axis=1)
    ok = (s > 0) & np.isfinite(s)
    with np.errstate(divide="ignore"):
        log_r = log_r + np.where(ok, np.log(np.where(ok, s, 1.0)), np.log(s))
    d = np.where(ok[:, None], d / np.where(ok, s, 1.0)[:, None], d)
    return d, log_r


def override(rec_out, sums, plan, rows, memory, growth) -> None:
    """Write the exact linear response over the kernel's two-run difference (cases that
    blew up keep the kernel's values: their later steps are NaN)."""
    ok = sums[:, K.S_BLOWUP] < 0
    slot = plan.slots[K.R_RESPONSE]
    if slot >= 0:
        rec_out[ok, slot] = rows[ok]
    sums[ok, K.S_MEMORY] = memory[ok]
    sums[ok, K.S_RESPONSE_GROWTH] = growth[ok]


def exact_response(W, C, inputs, settings, plan, rec_out, sums, projectors) -> None:
    """The response of single-layer linear recursions, exactly, over the kernel's
    (``rec_out`` and ``sums`` in place). ``W`` (cases, n, n), ``C`` (cases, n) the input
    column, ``inputs`` the kernels' ``(kind, xs, keys, amp)``, ``projectors`` {case: the
    projector off its W's dominant eigenspace (:func:`rnnlab.engine.weights.
    dominant_complement`), applied every step}; the other cases are not projected."""
    kind, xs, keys, amp = inputs
    x0 = np.array([input_at(i, 0, kind, amp, keys, xs) for i in range(C.shape[0])])
    d0 = np.asarray(C, dtype=np.float64) * x0[:, None]
    Q = None
    if projectors:
        eye = np.eye(W.shape[1])
        Q = np.stack([projectors.get(i, eye) for i in range(W.shape[0])])
    override(rec_out, sums, plan, *linear_response(W, d0, settings, Q))
