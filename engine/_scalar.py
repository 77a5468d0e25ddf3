"""The scalar kernel of the ``rnn`` family (n = 1): h(t) = f(w h(t-1) + c x(t) + b), one case
per SIMD lane. Arithmetic only; :func:`rnnlab.engine.simulate_rnn` validates and allocates.

Cases are laid out in lanes of ``LANES`` so that LLVM vectorises each per-step loop across
cases; every per-lane quantity lives in a small local array that stays in L1. The kernel is
compiled once per activation and precision (:func:`make_kernel` freezes the activation's
code, ``code + F32`` for float32, so that the lane loops hold no branch on it): a float32
kernel is 32 bits wide throughout (its activations, step counters, tolerances and the
gradient's exponent), so that its lane loops hold twice the float64 lanes per register.
Per step it always runs the recursion and watches for a blow-up; the run without the input
(``response``), the gradient w f'(z) product and the saturation tracker each add their own
lane loop only when switched on (see :mod:`._tracking`).

Array arguments: ``w, c, b, amp`` (cases,), ``keys`` (cases,) uint64, ``xs`` (cases, steps)
or (cases, 0); outputs ``rec_out`` (cases, rows, nrec) and ``sums`` (cases, N_SUMS);
settings ``rec``, ``slots``, ``iopt``, ``fopt`` as in :mod:`._driver`.
"""

from __future__ import annotations

import numpy as np

from . import _tracking as K
from ._jit import float32_bits_as_int32, fma, int32_bits_as_float32, jit
from ._numerics import INPUT_ARRAY, INPUT_NOISE, INPUT_STEP, noise_uniform
from .activations import F32, activate

__all__ = ["LANES", "make_kernel"]

#: Cases per lane group: 128 float64 = 16 AVX-512 or 32 AVX2 registers per lane quantity, so
#: that each step has enough independent chains to hide the latency of its tanh (measured on
#: 2 cores: 16 lanes ran 0.26 Gsteps/s with every tracker, 128 lanes 0.55; the recursion
#: alone 0.50 and 1.13). The per-lane arrays (about 15 of them) stay in L1 (15 KB).
LANES = 128

_LN2 = 0.6931471805599453
_LOG10_2 = 0.3010299956639812
_TWO_P500 = 2.0**500
_TWO_M500 = 2.0**-500
#: Steps between two folds of the gradient's exponent (:func:`_fold`), minus one.
FOLD_MASK = 2**22 - 1
_ONE_32 = np.float32(1.0)
_TWO_P64_32 = np.float32(2.0**64)
_TWO_M64_32 = np.float32(2.0**-64)
_MANTISSA_SIGN_32 = -0x7F800001  # 0x807FFFFF as an int32: every bit but the exponent's
_ONE_BITS_32 = 0x3F800000  # the exponent bits of 1.0f


@jit
def _load(c0, m, w, c, b, wl, cl, bl):
    """Lane group starting at case c0 (m real cases; padding lanes run a harmless w = 0)."""
    for j in range(wl.shape[0]):
        if j < m:
            wl[j] = w[c0 + j]
            cl[j] = c[c0 + j]
            bl[j] = b[c0 + j]
        else:
            wl[j] = 0.0
            cl[j] = 0.0
            bl[j] = 0.0


@jit(inline="always")
def _inputs(c0, m, t, kind, amp, keys, xs, xl):
    """x(t) of each real lane; an impulse or a step changes x at t = 0 and 1 only."""
    if kind == INPUT_NOISE:
        for j in range(m):
            xl[j] = amp[c0 + j] * (2.0 * noise_uniform(keys[c0 + j], t) - 1.0)
    elif kind == INPUT_ARRAY:
        for j in range(m):
            xl[j] = xs[c0 + j, t]
    elif t == 0:
        for j in range(m):
            xl[j] = amp[c0 + j]
    elif t == 1 and kind != INPUT_STEP:
        for j in range(m):
            xl[j] = 0.0


@jit(inline="always")
def _times_factor(g, ge, j, f):
    """g[j] 2^ge[j] (the product so far) times the step's factor f = w f'(z).

    With g in [2^-500, 2^500], f is first scaled by 2^500 if it is below 2^-500 (by 2^-500
    above 2^500), so that g f stays a normal float64 for every normal f, however small one
    step's factor is (a saturated tanh step at z = 300 has f ~ 1e-258); then g f is brought
    back into [2^-500, 2^500]. Every scaling is by an exact power of 2, its exponent carried
    in ge (measured: 8% of the default scalar run)."""
    af = abs(f)
    f_small = af < _TWO_M500
    f_big = af > _TWO_P500
    gg = g[j] * (f * (_TWO_P500 if f_small else (_TWO_M500 if f_big else 1.0)))
    ag = abs(gg)
    big = ag > _TWO_P500
    small = ag < _TWO_M500
    g[j] = gg * (_TWO_M500 if big else (_TWO_P500 if small else 1.0))
    ge[j] += (500.0 if big else (-500.0 if small else 0.0)) + (
        -500.0 if f_small else (500.0 if f_big else 0.0)
    )


@jit(inline="always")
def _times_factor32(g, ge, j, f):
    """:func:`_times_factor` of a float32 kernel: g[j] in [1, 2) after every step, its
    exponent moved into the int32 ge[j] by bits (exact; float32's range is too small for
    the 2^500 steps; :func:`_fold` empties ge into a float64 every 2^22 steps), and f scaled
    by 2^64 below 2^-64 (2^-64 above 2^64) first, so that
    g f is a normal float32 for every finite f. A zero, infinite or NaN product is kept as
    it is (its log is -inf, inf or NaN)."""
    af = abs(f)
    f_small = af < _TWO_M64_32
    f_big = af > _TWO_P64_32
    gg = np.float32(g[j]) * (f * (_TWO_P64_32 if f_small else (_TWO_M64_32 if f_big else _ONE_32)))
    bits = float32_bits_as_int32(gg)
    ex = (bits >> 23) & 255
    normal = ex > 0 and ex < 255
    unit = int32_bits_as_float32(np.int32((bits & _MANTISSA_SIGN_32) | _ONE_BITS_32))
    g[j] = unit if normal else gg
    ge[j] += (ex - 127 if normal else 0) + (-64 if f_small else (64 if f_big else 0))


@jit(inline="always")
def _times(code, g, ge, j, w, d):
    """g[j] 2^ge[j] times the step's factor w d = w f'(z), in the kernel's precision (the
    other branch is removed: ``code`` is a constant)."""
    if code >= F32:
        _times_factor32(g, ge, j, np.float32(w) * np.float32(d))
    else:
        _times_factor(g, ge, j, np.float64(w * d))


@jit(inline="always")
def _gradient(code, g, ge, wl, d):
    """g <- g w f'(z), exactly rescaled (:func:`_times`): the product never overflows or
    underflows."""
    for j in range(LANES):
        _times(code, g, ge, j, wl[j], d[j])


@jit(inline="always")
def _moved(h, hp, sat_tol):
    """Whether the step from hp to h moved by more than sat_tol max(1, |h|), in the run's
    precision (sat_tol has the state's type; the float32 1 is exact in both precisions,
    where a float64 1.0 would widen a float32 lane loop). sat_tol |h| alone would be
    subnormal for a small h, which is slow (a decaying float32 state: 2x slower)."""
    return abs(h - hp) > sat_tol * max(_ONE_32, abs(h))


@jit(inline="always")
def _track_change(t, h, hp, last_change, sat_tol):
    """The last step h moved by more than the saturation tolerance."""
    for j in range(LANES):  # a constant trip count: no remainder loop
        last_change[j] = t if _moved(h[j], hp[j], sat_tol) else last_change[j]


@jit(inline="always")
def _watch(t, h, maxn, blow):
    """The blow-up tracker of a lane after its step to h: (the largest |h| so far, the first
    step at which h is not finite, or -1). Scalars in and out: the lane loops stay
    vectorised (array arguments did not, measured 8x slower)."""
    ah = abs(h)  # in the run's precision: a float32 lane loop holds no float64
    return max(maxn, ah), (t if (not (ah < np.inf) and blow < 0) else blow)


@jit(inline="always")
def _recursion(code, t, m, wl, cl, bl, xl, h, hp, d, maxn, blow):
    """One step of every lane with the blow-up tracker; returns the real lanes still alive."""
    for j in range(LANES):  # a constant trip count: no remainder loop
        hp[j] = h[j]
        v, dv = activate(code, fma(wl[j], h[j], fma(cl[j], xl[j], bl[j])))
        h[j] = v  # rounds to the run's precision
        d[j] = dv
        maxn[j], blow[j] = _watch(t, h[j], maxn[j], blow[j])
    alive = 0
    for j in range(m):  # a separate loop: the counting slowed the vectorised one down
        alive += 1 if blow[j] < 0 else 0
    return alive


@jit(inline="always")
def _state_step(code, t, m, wl, cl, bl, xl, h, maxn, blow):
    """:func:`_recursion` without keeping f'(z) and h(t-1) (no gradient, no saturation
    tracker)."""
    for j in range(LANES):  # a constant trip count: no remainder loop
        v, _ = activate(code, fma(wl[j], h[j], fma(cl[j], xl[j], bl[j])))
        h[j] = v  # rounds to the run's precision
        maxn[j], blow[j] = _watch(t, h[j], maxn[j], blow[j])
    alive = 0
    for j in range(m):  # a separate loop: the counting slowed the vectorised one down
        alive += 1 if blow[j] < 0 else 0
    return alive


@jit(inline="always")
def _response(code, t, wl, cl, bl, xl, xon, h, hb, r0, last_mem, mem_rtol):
    """One step of the run without the input at t = 0, and the response's tracker."""
    for j in range(LANES):  # a constant trip count: no remainder loop
        vb, _ = activate(code, fma(wl[j], hb[j], fma(cl[j], xl[j] * xon, bl[j])))
        hb[j] = vb
        resp = abs(h[j] - hb[j])
        r = resp if t == 0 else r0[j]
        r0[j] = r
        last_mem[j] = t if resp > mem_rtol * r else last_mem[j]


@jit(inline="always")
def _every_tracker(
    code, t, m, wl, cl, bl, xl, xon, h, hb, g, ge, maxn, r0, blow, last_mem, last_change,
    mem_rtol, sat_tol,
):  # fmt: skip
    """:func:`_recursion`, :func:`_response`, :func:`_gradient` and :func:`_track_change`
    fused into one lane loop, for the default run that has every tracker on (twice as fast
    as the separate loops: one loop's overhead per step instead of four). The same
    arithmetic, term for term (FMAs are explicit), so the results are identical."""
    for j in range(LANES):  # a constant trip count: no remainder loop
        hprev = h[j]
        v, dv = activate(code, fma(wl[j], hprev, fma(cl[j], xl[j], bl[j])))
        vb, _ = activate(code, fma(wl[j], hb[j], fma(cl[j], xl[j] * xon, bl[j])))
        h[j] = v
        hb[j] = vb
        _times(code, g, ge, j, wl[j] if t > 0 else 1.0, dv if t > 0 else 1.0)
        resp = abs(h[j] - hb[j])
        r = resp if t == 0 else r0[j]
        r0[j] = r
        last_mem[j] = t if resp > mem_rtol * r else last_mem[j]
        last_change[j] = t if _moved(h[j], hprev, sat_tol) else last_change[j]
        maxn[j], blow[j] = _watch(t, h[j], maxn[j], blow[j])
    alive = 0
    for j in range(m):  # a separate loop: the counting slowed the vectorised one down
        alive += 1 if blow[j] < 0 else 0
    return alive


@jit
def _finish(c0, m, h, hb, g, ge, gef, maxn, r0, lg_half, lr_half, blow, lmem, lchg, trk, sums,
            io, fo):  # fmt: skip
    """The summaries of the m real lanes."""
    for j in range(m):
        K.reset(trk)
        trk[K.K_BLOWUP] = blow[j]
        trk[K.K_LAST_MEMORY] = lmem[j]
        trk[K.K_LAST_CHANGE] = lchg[j]
        trk[K.K_MAX_NORM] = maxn[j]
        trk[K.K_R0] = r0[j]
        trk[K.K_LOG_GRAD] = np.log(abs(g[j])) + (ge[j] + gef[j]) * _LN2
        trk[K.K_LOG_GRAD_HALF] = lg_half[j]
        trk[K.K_LOG_RESP] = np.log(abs(np.float64(h[j]) - np.float64(hb[j])))
        trk[K.K_LOG_RESP_HALF] = lr_half[j]
        trk[K.K_LOG_CELL] = np.nan
        trk[K.K_LOG_CELL_HALF] = np.nan
        K.finish_case(sums, c0 + j, trk, np.float64(h[j]), io, fo)


@jit(inline="always")
def _fold(ge, gef):
    """Move the gradient's exponent into a float64: a float32 kernel's int32 exponent moves
    by at most 128 + 64 per step (a factor 2^128 scaled by 2^-64), so folding it every
    FOLD = 2^22 steps keeps it below 2^30 (it wrapped after 1.5e9 nats of growth)."""
    for j in range(ge.shape[0]):
        gef[j] += ge[j]
        ge[j] = 0


@jit
def _halves(m, h, hb, g, ge, gef, lg_half, lr_half):
    """ln|g| and ln(response) at t_half (they call log: out of the vectorised loops)."""
    for j in range(m):
        lg_half[j] = np.log(abs(g[j])) + (ge[j] + gef[j]) * _LN2
        lr_half[j] = np.log(abs(np.float64(h[j]) - np.float64(hb[j])))


@jit
def _record(c0, m, kk, t, h, hb, g, ge, gef, blow, slots, rec_out):
    for j in range(m):
        if blow[j] < 0 or blow[j] == t:  # a lane that blew up earlier stays NaN
            i = c0 + j
            if slots[K.R_STATE] >= 0:
                rec_out[i, slots[K.R_STATE], kk] = h[j]
            if slots[K.R_RESPONSE] >= 0:
                rec_out[i, slots[K.R_RESPONSE], kk] = abs(np.float64(h[j]) - np.float64(hb[j]))
            if slots[K.R_GRADIENT] >= 0:
                lg2 = np.log(abs(g[j])) / _LN2 + (ge[j] + gef[j])  # log2 |dh(t)/dh(0)|
                rec_out[i, slots[K.R_GRADIENT], kk] = lg2 * _LOG10_2


def make_kernel(code):
    """The scalar kernel of the activation with this code (frozen as a constant).

    Every per-lane quantity is its own 1-D array of ``LANES``, no array view is made inside
    the step loop, and the helpers called there are inlined by Numba: a call with array
    arguments costs reference-count updates, which per step of 16 lanes made the kernel 2x
    slower (measured). Each tracker adds one lane loop fused with its own work; with every
    tracker on (the default), one loop does it all.
    """

    # step counters (and the gradient's exponent) as wide as the state, so that a float32
    # lane loop is 32 bits throughout
    idt = np.int32 if code >= F32 else np.int64
    edt = np.int32 if code >= F32 else np.float64

    @jit
    def run_block(w, c, b, amp, keys, xs, rec_out, sums, rec, slots, iopt, fopt):
        ncase = w.shape[0]
        dt = w.dtype
        L = LANES
        steps, t_half, kind, resp_on, grad_on, sat_on = K.switches(iopt)
        nrec = rec.shape[0]
        h, hb, hp = np.zeros(L, dt), np.zeros(L, dt), np.zeros(L, dt)
        wl, cl, bl, xl = np.zeros(L, dt), np.zeros(L, dt), np.zeros(L, dt), np.zeros(L, dt)
        d = np.zeros(L, dt)
        g, ge = np.ones(L, dt), np.zeros(L, edt)  # gradient mantissa and base-2 exponent
        gef = np.zeros(L)  # the exponent folded out of ge every FOLD steps (float64)
        maxn, r0 = np.zeros(L, dt), np.zeros(L, dt)
        lg_half, lr_half = np.zeros(L), np.zeros(L)
        blow = np.zeros(L, idt)  # blow-up step
        step = np.zeros(1, idt)
        lmem = np.zeros(L, idt)  # last step with a response above memory_rtol
        lchg = np.zeros(L, idt)  # last step that moved
        tol = np.empty(3, dt)  # the tolerances (and x's on-off factor) in the state's precision
        tol[0] = fopt[K.F_MEMORY_RTOL]
        tol[1] = fopt[K.F_SATURATION_TOL]
        mem_rtol, sat_tol = tol[0], tol[1]
        trk = np.zeros(K.N_TRK)
        every = resp_on and grad_on and sat_on  # the default run: one fused lane loop
        for c0 in range(0, ncase, L):
            m = min(L, ncase - c0)
            _load(c0, m, w, c, b, wl, cl, bl)
            h[:] = 0.0
            hb[:] = 0.0
            g[:] = 1.0
            ge[:] = 0.0
            gef[:] = 0.0
            maxn[:] = 0.0
            r0[:] = 0.0
            blow[:] = -1
            lmem[:] = -1
            lchg[:] = -1
            kk = 0 * nrec  # an int64, not a literal 0 (which would compile _record twice)
            for t0 in range(steps):
                step[0] = t0
                t = step[0]  # as wide as the lanes' step counters
                if kind >= INPUT_NOISE or t <= 1:  # skipped when x(t) is unchanged (the
                    _inputs(c0, m, t, kind, amp, keys, xs, xl)  # recursion: 1.2x-2.2x faster)
                tol[2] = 0.0 if t == 0 else 1.0
                xon = tol[2]  # in the state's precision: a float64 would widen the lane loop
                if every:
                    alive = _every_tracker(
                        code, t, m, wl, cl, bl, xl, xon, h, hb, g, ge, maxn, r0, blow, lmem, lchg,
                        mem_rtol, sat_tol,
                    )  # fmt: skip
                elif not (grad_on or sat_on):
                    alive = _state_step(code, t, m, wl, cl, bl, xl, h, maxn, blow)
                    if resp_on:
                        _response(code, t, wl, cl, bl, xl, xon, h, hb, r0, lmem, mem_rtol)
                else:
                    alive = _recursion(code, t, m, wl, cl, bl, xl, h, hp, d, maxn, blow)
                    if resp_on:
                        _response(code, t, wl, cl, bl, xl, xon, h, hb, r0, lmem, mem_rtol)
                    if grad_on and t > 0:
                        _gradient(code, g, ge, wl, d)
                    if sat_on:
                        _track_change(t, h, hp, lchg, sat_tol)
                if (t0 & FOLD_MASK) == FOLD_MASK:
                    _fold(ge, gef)
                if t == t_half:
                    _halves(m, h, hb, g, ge, gef, lg_half, lr_half)
                if kk < nrec and rec[kk] == t:
                    _record(c0, m, kk, t, h, hb, g, ge, gef, blow, slots, rec_out)
                    kk += 1
                if alive == 0:  # stop early once every real lane has blown up
                    break
            _finish(
                c0, m, h, hb, g, ge, gef, maxn, r0, lg_half, lr_half, blow, lmem, lchg, trk, sums,
                iopt, fopt,
            )  # fmt: skip

    return run_block
