"""The scalar kernel of the ``rnn`` family (n = 1): h(t) = f(w h(t-1) + c x(t) + b), one case
per SIMD lane. Arithmetic only; :func:`rnnlab.engine.simulate_rnn` validates and allocates.

Cases are laid out in lanes of ``LANES`` so that LLVM vectorises each per-step loop across
cases; every per-lane quantity lives in a small local array that stays in L1. The kernel is
compiled once per activation (:func:`make_kernel` freezes its code, so that the lane loops
hold no branch on it) and per precision. Per step it always runs the recursion and watches
for a blow-up; the run without the input (``response``), the gradient w f'(z) product and
the saturation tracker each add their own lane loop only when switched on (see
:mod:`._tracking`).

Array arguments: ``w, c, b, amp`` (cases,), ``keys`` (cases,) uint64, ``xs`` (cases, steps)
or (cases, 0); outputs ``rec_out`` (cases, rows, nrec) and ``sums`` (cases, N_SUMS);
settings ``rec``, ``slots``, ``iopt``, ``fopt`` as in :mod:`._driver`.
"""

from __future__ import annotations

import numpy as np

from . import _tracking as K
from ._jit import jit
from ._numerics import INPUT_ARRAY, INPUT_NOISE, INPUT_STEP, noise_uniform
from .activations import activate

__all__ = ["LANES", "make_kernel"]

#: Cases per lane group: 16 float64 = two AVX-512 or four AVX2 registers per lane quantity.
LANES = 16

_LN2 = 0.6931471805599453
_LOG10_2 = 0.3010299956639812
_TWO_P500 = 2.0**500
_TWO_M500 = 2.0**-500


@jit
def _load(c0, m, w, c, b, wl, cl, bl, lanes_f, lanes_i):
    """Lane group starting at case c0 (m real cases; padding lanes run a harmless w = 0)."""
    L = wl.shape[0]
    for j in range(L):
        if j < m:
            wl[j] = w[c0 + j]
            cl[j] = c[c0 + j]
            bl[j] = b[c0 + j]
        else:
            wl[j] = 0.0
            cl[j] = 0.0
            bl[j] = 0.0
    lanes_f[:, :] = 0.0
    lanes_f[1, :] = 1.0  # the gradient mantissa
    lanes_i[:, :] = -1


@jit
def _inputs(c0, m, t, kind, amp, keys, xs, xl):
    """x(t) of each real lane (the branch on the kind is outside the lane loops)."""
    if kind == INPUT_NOISE:
        for j in range(m):
            xl[j] = amp[c0 + j] * (2.0 * noise_uniform(keys[c0 + j], t) - 1.0)
    elif kind == INPUT_ARRAY:
        for j in range(m):
            xl[j] = xs[c0 + j, t]
    else:
        on = 1.0 if (t == 0 or kind == INPUT_STEP) else 0.0
        for j in range(m):
            xl[j] = amp[c0 + j] * on


@jit
def _gradient(g, ge, wl, d):
    """g <- g w f'(z), rescaled by exact powers of 2 when it leaves [2^-500, 2^500] (the
    exponent is carried in ge, so the product never overflows)."""
    for j in range(g.shape[0]):
        gg = g[j] * (wl[j] * d[j])
        ag = abs(gg)
        big = ag > _TWO_P500
        small = ag < _TWO_M500
        g[j] = gg * (_TWO_M500 if big else (_TWO_P500 if small else 1.0))
        ge[j] += 500.0 if big else (-500.0 if small else 0.0)


@jit
def _track(t, h, hb, hp, f, li, resp_on, sat_on, mem_rtol, sat_tol):
    """The trackers of every lane: f[2] max |h|, li[0] blow-up step; with the response
    f[3] response(0) and li[1] last step above memory_rtol of it; with saturation li[2] the
    last step that moved."""
    L = h.shape[0]
    for j in range(L):
        ah = abs(np.float64(h[j]))
        f[2, j] = max(f[2, j], ah)
        li[0, j] = t if (not (ah < np.inf) and li[0, j] < 0) else li[0, j]
    if resp_on:
        for j in range(L):
            resp = abs(np.float64(h[j]) - np.float64(hb[j]))
            r0 = resp if t == 0 else f[3, j]
            f[3, j] = r0
            li[1, j] = t if resp > mem_rtol * r0 else li[1, j]
    if sat_on:
        for j in range(L):
            ah = abs(np.float64(h[j]))
            moved = abs(np.float64(h[j]) - np.float64(hp[j])) > sat_tol * max(1.0, ah)
            li[2, j] = t if moved else li[2, j]


@jit
def _log_gradient(f, j):
    """ln |dh(t)/dh(0)| of lane j from its mantissa f[1] and base-2 exponent f[0]."""
    return np.log(abs(f[1, j])) + f[0, j] * _LN2


@jit
def _finish(c0, m, h, hb, f, li, trk, sums, iopt, fopt):
    """The summaries of the m real lanes."""
    for j in range(m):
        K.reset(trk)
        trk[K.K_BLOWUP] = li[0, j]
        trk[K.K_LAST_MEMORY] = li[1, j]
        trk[K.K_LAST_CHANGE] = li[2, j]
        trk[K.K_MAX_NORM] = f[2, j]
        trk[K.K_R0] = f[3, j]
        trk[K.K_LOG_GRAD] = _log_gradient(f, j)
        trk[K.K_LOG_GRAD_HALF] = f[4, j]
        trk[K.K_LOG_RESP] = np.log(abs(np.float64(h[j]) - np.float64(hb[j])))
        trk[K.K_LOG_RESP_HALF] = f[5, j]
        trk[K.K_LOG_CELL] = np.nan
        trk[K.K_LOG_CELL_HALF] = np.nan
        K.finish_case(sums, c0 + j, trk, np.float64(h[j]), iopt, fopt)


@jit
def _record(c0, m, kk, t, h, hb, f, li, slots, rec_out):
    for j in range(m):
        if li[0, j] < 0 or li[0, j] == t:  # a lane that blew up earlier stays NaN
            i = c0 + j
            if slots[K.R_STATE] >= 0:
                rec_out[i, slots[K.R_STATE], kk] = h[j]
            if slots[K.R_RESPONSE] >= 0:
                rec_out[i, slots[K.R_RESPONSE], kk] = abs(np.float64(h[j]) - np.float64(hb[j]))
            if slots[K.R_GRADIENT] >= 0:
                lg2 = np.log(abs(f[1, j])) / _LN2 + f[0, j]  # log2 |dh(t)/dh(0)|
                rec_out[i, slots[K.R_GRADIENT], kk] = lg2 * _LOG10_2


@jit
def _all_blown(li, m):
    for j in range(m):
        if li[0, j] < 0:
            return False
    return True


def make_kernel(code):
    """The scalar kernel of the activation with this code (frozen as a constant)."""

    @jit
    def run_block(w, c, b, amp, keys, xs, rec_out, sums, rec, slots, iopt, fopt):
        ncase = w.shape[0]
        dt = w.dtype
        L = LANES
        steps = iopt[K.O_STEPS]
        t_half = iopt[K.O_T_HALF]
        kind = iopt[K.O_INPUT]
        resp_on = iopt[K.O_RESPONSE] != 0
        grad_on = iopt[K.O_GRADIENT] != 0
        sat_on = iopt[K.O_SATURATION] != 0
        mem_rtol = fopt[K.F_MEMORY_RTOL]
        sat_tol = fopt[K.F_SATURATION_TOL]
        nrec = rec.shape[0]
        h, hb, hp = np.zeros(L, dt), np.zeros(L, dt), np.zeros(L, dt)
        wl, cl, bl, xl = np.zeros(L, dt), np.zeros(L, dt), np.zeros(L, dt), np.zeros(L, dt)
        d = np.zeros(L)
        # per lane: f[0] gradient exponent (base 2), f[1] mantissa, f[2] max |h|,
        # f[3] response(0), f[4] ln|g| and f[5] ln(response) at t_half
        f = np.zeros((6, L))
        li = np.zeros((3, L), np.int64)  # blow-up, last memory, last change steps
        trk = np.zeros(K.N_TRK)
        for c0 in range(0, ncase, L):
            m = min(L, ncase - c0)
            _load(c0, m, w, c, b, wl, cl, bl, f, li)
            h[:] = 0.0
            hb[:] = 0.0
            kk = 0 * nrec  # an int64, not a literal 0 (which would compile _record twice)
            for t in range(steps):
                _inputs(c0, m, t, kind, amp, keys, xs, xl)
                for j in range(L):
                    hp[j] = h[j]
                    v, dv = activate(code, wl[j] * h[j] + cl[j] * xl[j] + bl[j])
                    h[j] = v  # rounds to the run's precision
                    d[j] = dv
                if resp_on:
                    xon = 0.0 if t == 0 else 1.0
                    for j in range(L):
                        vb, _ = activate(code, wl[j] * hb[j] + cl[j] * (xl[j] * xon) + bl[j])
                        hb[j] = vb
                if grad_on and t > 0:
                    _gradient(f[1], f[0], wl, d)
                _track(t, h, hb, hp, f, li, resp_on, sat_on, mem_rtol, sat_tol)
                if t == t_half:
                    for j in range(m):
                        f[4, j] = _log_gradient(f, j)
                        f[5, j] = np.log(abs(np.float64(h[j]) - np.float64(hb[j])))
                if kk < nrec and rec[kk] == t:
                    _record(c0, m, kk, t, h, hb, f, li, slots, rec_out)
                    kk += 1
                if _all_blown(li, m):  # stop early once every real lane has blown up
                    break
            _finish(c0, m, h, hb, f, li, trk, sums, iopt, fopt)

    return run_block
