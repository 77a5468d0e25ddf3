"""The small vector kernel: h(t) = f(W h(t-1) + C x(t) + b) for n <= ``MAX_N`` (16), cases in SIMD
lanes. Arithmetic only; :func:`rnnlab.engine.simulate_rnn` validates, allocates and chooses it.

The layered kernel (:mod:`._driver`) runs one case at a time: at n = 16 a step costs about
850 ns whatever n (the BLAS call, the layer's call and its array views, the per-step checks),
where the arithmetic is 512 flops. Here ``LANES`` cases run side by side, as the scalar
kernel's do: every per-case quantity is an array with the case innermost (W's entry (i, j)
of lane g at ``Wl[i n + j, g]``), so that each loop over the lanes is a few SIMD
instructions, and per step nothing is done lane by lane but the rare fallbacks (a norm or a
product out of float64's safe range) and the records.

Every per-lane array is 2-D, (rows, LANES), indexed by loop variables only: LLVM then
vectorises each loop over the lanes (with a flat array and computed indices it did not: the
matrix-vector product ran scalar, 7 GFLOP/s per core at n = 16, 13 GFLOP/s in the lanes). A
lane group of 64 is not fully unrolled, so LLVM's loop vectoriser (which checks at run time
that the arrays do not overlap) handles it; a group of 16 was unrolled and left scalar.

The same run as the layered kernel's ``rnn`` cell with one layer, term for term except the
order of the sums in W h (BLAS's there, j = 0 ... n - 1 here): the recursion and its
blow-up watch always; the run without the input at t = 0 (``response``), the Jacobian
product ds(t)/ds(0) on the probe's columns, renormalised every step (``gradient``), and the
state's change (``saturation``) when switched on. The per-step trackers follow the rules of
:func:`._tracking.track` in one lane loop (``_watch``), the summaries are
:func:`._tracking.finish_case`'s, per lane. A lane that blew up keeps its trackers and records
as they were at that step (the layered kernel stops the case there). The Lyapunov spectrum and the
memory capacity are the layered kernel's only.

Every helper is inlined by Numba (``inline="always"``): each is called from this kernel only,
so the kernel is one specialisation per precision in the compile budget.

Array arguments: ``W`` (cases, n, n), ``C`` and ``b`` (cases, n), ``amp``, ``keys``, ``xs`` the
input; ``probe`` (n, kh) the tangent columns (kh = 0 without the gradient); outputs
``rec_out`` (cases, rows, nrec), ``hid_out`` (cases, nrec, n) or (cases, 0, 0), ``sums``
(cases, N_SUMS); settings ``rec``, ``slots``, ``iopt``, ``fopt`` as in :mod:`._driver`.
"""

from __future__ import annotations

import numpy as np

from . import _tracking as K
from ._driver import _block_log_norm
from ._jit import jit
from ._numerics import INPUT_NOISE, input_at, norm, renormalise
from .activations import activate_into

__all__ = ["LANES", "MAX_N", "MAX_TANGENT", "run_block"]

#: Cases side by side: 8 AVX-512 registers of float64 (16 AVX2 ones) per row.
LANES = 64
#: A group of m < LANES cases computes m rounded up to a multiple of WIDTH lanes (one
#: AVX-512 register of float64), not LANES: one case at n = 64 ran 43x slower computing 64.
WIDTH = 8
#: The largest n that runs here (larger n: the layered kernel, whose products are BLAS's).
#: Not more: a group of a few cases computes WIDTH lanes, and a loop of 8 runs scalar; one
#: case for 20000 steps took 0.08 s at n = 16 (layered 0.03), 0.8 s at n = 64 (0.04).
MAX_N = 16
#: The largest Jacobian product that runs here, n^2 k (k tangent columns; k = n for the
#: exact gradient): measured on 2 cores (AVX-512), n = 16 ran 3x the layered kernel, n = 32
#: 0.9x (its n x n x n product per step is BLAS's DGEMM there).
MAX_TANGENT = 16**3

_LN10 = 2.302585092994046
# rows of the per-lane trackers (float64; the steps are exact integers)
_HN, _RESP, _CHG, _MAXN, _R0, _LSCALE, _LGRAD, _LG_HALF, _LR_HALF = range(9)
_BLOW, _LMEM, _LCHG = 9, 10, 11
_NLANE = 12


@jit(inline="always")
def _load(c0, m, W, C, b, Wl, Cl, bl):
    """Lane group from case c0 (m real cases; padding lanes hold W = 0, C = 0, b = 0)."""
    n = C.shape[1]
    Wl[:, :] = 0.0
    Cl[:, :] = 0.0
    bl[:, :] = 0.0
    for g in range(m):
        for i in range(n):
            Cl[i, g] = C[c0 + g, i]
            bl[i, g] = b[c0 + g, i]
            for j in range(n):
                Wl[i * n + j, g] = W[c0 + g, i, j]


@jit(inline="always")
def _pre_activation(n, w, Wl, Cl, bl, xl, xon, v, z, acc):
    """z = W v + C x + b of every lane (x switched off by ``xon`` = 0), in float64. The sum
    over j runs in order, four terms per pass over the lanes (see :func:`_tangent`)."""
    n4 = n // 4 * 4
    for i in range(n):
        for g in range(w):
            acc[g] = 0.0
        for j in range(0, n4, 4):
            r = i * n + j
            for g in range(w):
                a = acc[g] + Wl[r, g] * v[j, g]
                a += Wl[r + 1, g] * v[j + 1, g]
                a += Wl[r + 2, g] * v[j + 2, g]
                acc[g] = a + Wl[r + 3, g] * v[j + 3, g]
        for j in range(n4, n):
            r = i * n + j
            for g in range(w):
                acc[g] += Wl[r, g] * v[j, g]
        for g in range(w):
            z[i, g] = np.float64(acc[g]) + np.float64(Cl[i, g]) * (xl[g] * xon) + bl[i, g]


@jit(inline="always")
def _tangent(n, kh, w, Wl, d, T, T2, s):
    """T2 = diag(f'(z)) W T, lane by lane (row i kh + q of T: entry (i, q) of each lane's),
    and s[g] its sum of squares (in float64, over the rows in order).
    Row block i kh ... i kh + kh - 1 of T2 (in L1) accumulates the sum over j in order, four
    terms per pass over the lanes: 1.7x faster than one dot product (i, q) at a time over j
    (measured, n = kh = 16, one core, AVX-512 and AVX2), with the same sums to the bit."""
    n4 = n // 4 * 4
    for g in range(w):
        s[g] = 0.0
    for i in range(n):
        e = i * kh
        for q in range(kh):
            for g in range(w):
                T2[e + q, g] = 0.0
        for j in range(0, n4, 4):
            r = i * n + j
            for q in range(kh):
                p = j * kh + q
                for g in range(w):
                    a = T2[e + q, g] + Wl[r, g] * T[p, g]
                    a += Wl[r + 1, g] * T[p + kh, g]
                    a += Wl[r + 2, g] * T[p + 2 * kh, g]
                    T2[e + q, g] = a + Wl[r + 3, g] * T[p + 3 * kh, g]
        for j in range(n4, n):
            r = i * n + j
            for q in range(kh):
                for g in range(w):
                    T2[e + q, g] += Wl[r, g] * T[j * kh + q, g]
        for q in range(kh):
            for g in range(w):
                T2[e + q, g] *= d[i, g]
                v = np.float64(T2[e + q, g])
                s[g] += v * v


@jit(inline="always")
def _squares(n, w, h, hq, sq, r):
    """sq[r, g] = sum_i (h - hq)^2 of every lane, in float64."""
    for g in range(w):
        sq[r, g] = 0.0
    for i in range(n):
        for g in range(w):
            v = np.float64(h[i, g]) - np.float64(hq[i, g])
            sq[r, g] += v * v


@jit(inline="always")
def _state_squares(n, w, h, sq):
    """sq[0, g] = sum_i h^2 of every lane, in float64 (:func:`_squares` with hq = 0)."""
    for g in range(w):
        sq[0, g] = 0.0
    for i in range(n):
        for g in range(w):
            v = np.float64(h[i, g])
            sq[0, g] += v * v


@jit(inline="always")
def _lane_norm(n, g, h, hq, buf):
    """||h - hq|| of lane g without over- or underflow (:func:`norm`)."""
    for i in range(n):
        buf[i] = np.float64(h[i, g]) - np.float64(hq[i, g])
    return norm(buf)


@jit(inline="always")
def _norms(n, w, r, m, h, hq, sq, blow, out, buf):
    """out[g] = sqrt(sq[r, g]) = ||h - hq|| of every lane alive before this step (the others
    keep their value of the step they blew up), recomputed by :func:`_lane_norm` where the
    sum of squares left the safe range (a state near 0, huge, or not finite)."""
    unsafe = 0
    for g in range(w):
        out[g] = np.sqrt(sq[r, g]) if blow[g] < 0 else out[g]
    for g in range(m):  # counted in the lanes; the rare lanes out of range, one by one
        unsafe += 1 if (blow[g] < 0 and not (sq[r, g] < 1e300 and sq[r, g] > 1e-300)) else 0
    if unsafe > 0:
        for g in range(m):
            if blow[g] < 0 and not (sq[r, g] < 1e300 and sq[r, g] > 1e-300):
                out[g] = _lane_norm(n, g, h, hq, buf)


@jit(inline="always")
def _watch(w, t, hn, resp, chg, maxn, blow, r0, lmem, lchg, mem_rtol, sat_tol):
    """:func:`rnnlab.engine._tracking.track` of every lane alive before this step, in one
    lane loop (NaN for a tracker that is off: its test is then never true)."""
    for g in range(w):
        live = blow[g] < 0
        r0[g] = resp[g] if t == 0 else r0[g]
        lmem[g] = t if (live and resp[g] > mem_rtol * r0[g]) else lmem[g]
        lchg[g] = t if (live and chg[g] > sat_tol * max(1.0, hn[g])) else lchg[g]
        maxn[g] = hn[g] if (live and hn[g] > maxn[g]) else maxn[g]
        blow[g] = t if (live and not hn[g] < np.inf) else blow[g]


@jit(inline="always")
def _lane_tangent(n, kh, g, T, Tg, to_lane):
    """Copy lane g's tangent between the lanes' array T and Tg (1, n, kh), either way."""
    for i in range(n):
        for q in range(kh):
            if to_lane:
                T[i * kh + q, g] = Tg[0, i, q]
            else:
                Tg[0, i, q] = T[i * kh + q, g]


@jit(inline="always")
def _renormalise(n, kh, w, m, T, s, inv, blow, lscale, Tg):
    """Every live lane's tangent divided by its Frobenius norm (s: its sum of squares, from
    :func:`_tangent`), the log added to lscale: in the lanes when the sum of squares is
    safely inside float64's range, else through :func:`renormalise` (a product that reached
    0 or blew up, or a huge or tiny one)."""
    for g in range(w):
        ok = s[g] < 1e300 and s[g] > 1e-300 and blow[g] < 0
        fro = np.sqrt(s[g]) if ok else 1.0
        inv[g] = 1.0 / fro
        lscale[g] += np.log(fro)
    for e in range(n * kh):
        for g in range(w):
            T[e, g] *= inv[g]
    for g in range(m):
        if blow[g] < 0 and not (s[g] < 1e300 and s[g] > 1e-300):
            _lane_tangent(n, kh, g, T, Tg, False)
            lscale[g] += renormalise(Tg, 0 * n, kh)
            _lane_tangent(n, kh, g, T, Tg, True)


@jit(inline="always")
def _evaluate(c0, m, t, kk, n, h, blow, hn, resp, lgrad, lg_half, lr_half, T, Tg, B, lscale,
              on, slots, rec_out, hid_out):  # fmt: skip
    """At t_half, the last step and the recorded ones: the gradient's norm of every lane
    alive up to this step, the halves' logs, the records (column kk)."""
    grad_eval, at_half, is_rec = on
    kh = Tg.shape[2]
    for g in range(m):
        if blow[g] >= 0 and blow[g] != t:  # blew up earlier: its values stay those of then
            continue
        if grad_eval:
            _lane_tangent(n, kh, g, T, Tg, False)
            lgrad[g] = _block_log_norm(Tg, 0 * n, 0 * n, n, B, lscale[g])
        if at_half:
            lg_half[g] = lgrad[g]
            lr_half[g] = np.log(resp[g])
        if is_rec:
            _record(c0, g, kk, n, h, hn[g], resp[g], lgrad[g], slots, rec_out, hid_out)


@jit(inline="always")
def _record(c0, g, kk, n, h, hn, resp, lgrad, slots, rec_out, hid_out):
    """Lane g's recorded quantities of this step (column kk)."""
    i = c0 + g
    if slots[K.R_STATE] >= 0:
        rec_out[i, slots[K.R_STATE], kk] = hn
    if slots[K.R_RESPONSE] >= 0:
        rec_out[i, slots[K.R_RESPONSE], kk] = resp
    if slots[K.R_GRADIENT] >= 0:
        rec_out[i, slots[K.R_GRADIENT], kk] = lgrad / _LN10
    if hid_out.shape[1] > 0:
        for u in range(n):
            hid_out[i, kk, u] = h[u, g]


@jit(inline="always")
def _activate(act, w, z, v, d):
    """v, d = f(z), f'(z) of the first w lanes: :func:`activate_into` row by row."""
    for i in range(z.shape[0]):
        activate_into(act, z[i, :w], v[i, :w], d[i, :w])


@jit(inline="always")
def _start(c0, m, W, C, b, probe, Wl, Cl, bl, h, hb, T, lanes):
    """A new lane group: its weights, the states at 0, the tangent at the probe, the
    per-lane trackers (``lanes``: rows hn, resp, chg, maxn, r0, lscale, lgrad, lg_half,
    lr_half, then blow, lmem, lchg)."""
    _load(c0, m, W, C, b, Wl, Cl, bl)
    h[:] = 0.0
    hb[:] = 0.0
    n, kh = probe.shape[0], probe.shape[1]
    for i in range(n):
        for q in range(kh):
            for g in range(LANES):
                T[i * kh + q, g] = probe[i, q]
    lanes[:, :] = 0.0
    lanes[_RESP, :] = np.nan
    lanes[_CHG, :] = np.nan
    lanes[_BLOW:, :] = -1.0


@jit(inline="always")
def _finish(c0, m, lanes, trk, sums, iopt, fopt):
    """The summaries of the group's m real lanes."""
    for g in range(m):
        K.reset(trk)
        trk[K.K_BLOWUP] = lanes[_BLOW, g]
        trk[K.K_LAST_MEMORY] = lanes[_LMEM, g]
        trk[K.K_LAST_CHANGE] = lanes[_LCHG, g]
        trk[K.K_MAX_NORM] = lanes[_MAXN, g]
        trk[K.K_R0] = lanes[_R0, g]
        trk[K.K_LOG_GRAD] = lanes[_LGRAD, g]
        trk[K.K_LOG_GRAD_HALF] = lanes[_LG_HALF, g]
        trk[K.K_LOG_RESP] = np.log(lanes[_RESP, g])
        trk[K.K_LOG_RESP_HALF] = lanes[_LR_HALF, g]
        trk[K.K_LOG_CELL] = np.nan
        trk[K.K_LOG_CELL_HALF] = np.nan
        K.finish_case(sums, c0 + g, trk, lanes[_HN, g], iopt, fopt)


@jit
def run_block(W, C, b, amp, keys, xs, probe, rec_out, hid_out, sums, rec, slots, iopt, fopt):
    """Every case of the block, ``LANES`` at a time (see the module's docstring)."""
    ncase, n = C.shape
    dt = W.dtype
    steps, t_half, kind, resp_on, grad_on, sat_on = K.switches(iopt)
    act = iopt[K.O_ACTIVATION]
    kh = probe.shape[1]  # 0 without the gradient
    nrec = rec.shape[0]
    NL = (n, LANES)
    Wl, Cl, bl = np.zeros((n * n, LANES), dt), np.zeros(NL, dt), np.zeros(NL, dt)
    h, h2, hb, hb2 = np.zeros(NL, dt), np.zeros(NL, dt), np.zeros(NL, dt), np.zeros(NL, dt)
    zero = np.zeros(NL, dt)
    z, d, db = np.zeros(NL), np.zeros(NL), np.zeros(NL)
    T, T2 = np.zeros((n * kh, LANES), dt), np.zeros((n * kh, LANES), dt)
    Tg, B = np.zeros((1, n, kh), dt), np.zeros((n, kh), dt)
    acc, xl, s, inv = np.zeros(LANES, dt), np.zeros(LANES), np.zeros(LANES), np.zeros(LANES)
    sq = np.zeros((3, LANES))
    buf = np.zeros(n)
    lanes = np.zeros((_NLANE, LANES))
    hn, resp, chg, maxn, r0 = lanes[_HN], lanes[_RESP], lanes[_CHG], lanes[_MAXN], lanes[_R0]
    lscale, lgrad = lanes[_LSCALE], lanes[_LGRAD]
    lg_half, lr_half = lanes[_LG_HALF], lanes[_LR_HALF]
    blow, lmem, lchg = lanes[_BLOW], lanes[_LMEM], lanes[_LCHG]
    trk = np.zeros(K.N_TRK)
    mem_rtol, sat_tol = fopt[K.F_MEMORY_RTOL], fopt[K.F_SATURATION_TOL]
    one = 1.0 + 0.0 * n  # not a literal: one specialisation of the inlined helpers
    for c0 in range(0, ncase, LANES):
        m = min(LANES, ncase - c0)
        w = min(LANES, (m + WIDTH - 1) // WIDTH * WIDTH)  # the lanes computed: m, rounded up
        _start(c0, m, W, C, b, probe, Wl, Cl, bl, h, hb, T, lanes)
        kk = 0 * nrec
        for t in range(steps):
            if kind >= INPUT_NOISE or t <= 1:  # an impulse or a step changes x at t <= 1 only
                for g in range(m):
                    xl[g] = input_at(c0 + g, t, kind, amp, keys, xs)
            _pre_activation(n, w, Wl, Cl, bl, xl, one, h, z, acc)
            _activate(act, w, z, h2, d)
            if resp_on:
                _pre_activation(n, w, Wl, Cl, bl, xl, 0.0 * one if t == 0 else one, hb, z, acc)
                _activate(act, w, z, hb2, db)
            if grad_on and t > 0:
                _tangent(n, kh, w, Wl, d, T, T2, s)
                T, T2 = T2, T
                _renormalise(n, kh, w, m, T, s, inv, blow, lscale, Tg)
            h, h2 = h2, h  # h the new state, h2 the previous one
            hb, hb2 = hb2, hb
            _state_squares(n, w, h, sq)
            _norms(n, w, 0 * n, m, h, zero, sq, blow, hn, buf)
            if resp_on:
                _squares(n, w, h, hb, sq, 1 + 0 * n)
                _norms(n, w, 1 + 0 * n, m, h, hb, sq, blow, resp, buf)
            if sat_on:
                _squares(n, w, h, h2, sq, 2 + 0 * n)
                _norms(n, w, 2 + 0 * n, m, h, h2, sq, blow, chg, buf)
            _watch(w, t, hn, resp, chg, maxn, blow, r0, lmem, lchg, mem_rtol, sat_tol)
            is_rec = kk < nrec and rec[kk] == t
            grad_eval = grad_on and (t == t_half or t == steps - 1 or is_rec)
            if grad_eval or t == t_half or is_rec:
                _evaluate(
                    c0, m, t, kk, n, h, blow, hn, resp, lgrad, lg_half, lr_half, T, Tg, B,
                    lscale, (grad_eval, t == t_half, is_rec), slots, rec_out, hid_out,
                )  # fmt: skip
                kk += 1 if is_rec else 0
            alive = 0
            for g in range(w):  # padding lanes run f(0) and never blow up
                alive += 1 if blow[g] < 0 else 0
            if alive == w - m:  # every real lane has blown up
                break
        _finish(c0, m, lanes, trk, sums, iopt, fopt)
