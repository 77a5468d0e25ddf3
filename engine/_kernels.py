"""The jitted kernels of the ``rnn`` family: arithmetic only, no validation, no allocation
of outputs (the public wrapper in :mod:`rnnlab.engine.rnn` validates and allocates).

Two kernels share one contract (same arguments, same outputs):

- :func:`scalar_block` (n = 1): cases are laid out in lanes of ``LANES`` so that LLVM
  vectorises the per-step arithmetic across cases; every per-lane quantity lives in a small
  local array that stays in L1 (the state never goes back to memory between steps).
- :func:`vector_block` (n > 1): one case at a time; the matrix-vector and matrix-matrix
  products call BLAS through ``np.dot``.

Both compute two runs per case, the run ``h`` and the run ``hbar`` without the input at
t = 0, and the Jacobian product ``dh(t)/dh(0)`` with renormalisation (the log of the scale is
carried separately, so exploding products never overflow).

Recorded outputs (``out_*``, shape (cases, nrec)) are written only at the steps listed in
``rec``; they must be filled with NaN by the caller, so that steps after a blow-up (the case
stops) read NaN.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit
from .activations import ACTIVATIONS, activate

__all__ = ["INPUT_ARRAY", "INPUT_IMPULSE", "INPUT_NOISE", "INPUT_STEP", "LANES"]

#: Cases per vector lane group: 16 float64 = two AVX-512 registers per lane quantity.
LANES = 16

# Input kinds (the wrapper maps names to these codes).
INPUT_IMPULSE = 0  # x(0) = a, x(t > 0) = 0
INPUT_STEP = 1  # x(t) = a for all t >= 0
INPUT_NOISE = 2  # x(t) i.i.d. uniform in [-a, a]
INPUT_ARRAY = 3  # x(t) = xs[case, t], given by the user

_LN10 = 2.302585092994046
_LN2 = 0.6931471805599453
_LOG10_2 = 0.3010299956639812
_TWO_P500 = 2.0**500
_TWO_M500 = 2.0**-500

# splitmix64 constants (Steele, Lea & Flood 2014), as uint64 so numba stays in integer math.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53


@jit(inline="always")
def noise_uniform(key, t):
    """Counter-based uniform in [0, 1): splitmix64 of ``key + (t + 1) * golden``.

    A case's noise is a pure function of its key and the step, so no per-step noise array is
    ever allocated (10^6 steps x 10^6 cases would not fit) and the result does not depend on
    blocking. ``rnnlab.engine.reference.noise_uniform`` is an independent NumPy version.
    """
    z = key + (np.uint64(t) + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return np.float64(z >> _S11) * _TWO_M53


@jit(inline="always")
def input_at(i, t, input_kind, amp, keys, xs):
    """x(t) of case i (the per-case kernels; the scalar lanes inline their own copy)."""
    if input_kind == INPUT_NOISE:
        return amp[i] * (2.0 * noise_uniform(keys[i], t) - 1.0)
    if input_kind == INPUT_ARRAY:
        return xs[i, t]
    return amp[i] if (t == 0 or input_kind == INPUT_STEP) else 0.0


@jit(inline="always")
def track(t, resp, change, hn, r0, last_mem, last_change, maxn, blow, mem_rtol, sat_tol):
    """One step of a case's trackers: (r0, last_mem, last_change, maxn, blow) updated."""
    if t == 0:
        r0 = resp
    if resp > mem_rtol * r0:
        last_mem = t
    if change > sat_tol * max(1.0, hn):
        last_change = t
    if hn > maxn:
        maxn = hn
    if not (hn < np.inf) and blow < 0:
        blow = t
    return r0, last_mem, last_change, maxn, blow


@jit(inline="always")
def rescale(M):
    """Divide M (2-D) by its Frobenius norm; return the log of the factor (-inf for a zero
    product, NaN for a non-finite one: the case has blown up)."""
    n, k = M.shape
    fro = _norm(M.reshape(n * k))
    if fro > 0.0 and fro < np.inf:
        inv = 1.0 / fro
        if inv < np.inf:
            for u in range(n):
                for q in range(k):
                    M[u, q] *= inv
        else:  # a subnormal norm: 1 / fro overflows, divide instead
            for u in range(n):
                for q in range(k):
                    M[u, q] /= fro
        return np.log(fro)
    if fro == 0.0:
        return -np.inf
    return np.nan


@jit(inline="always")
def scalar_block(
    act_code, w, c, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
    out_state, out_resp, out_grad,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
):  # fmt: skip
    """Scalar recursions h(t) = f(w h(t-1) + c x(t) + b), one case per lane.

    Arrays ``w, c, b, amp`` (cases,), ``keys`` (cases,) uint64, ``xs`` (cases, steps) or
    (cases, 0), ``rec`` (nrec,) increasing steps; outputs as documented in the module.
    """
    ncase = w.shape[0]
    nrec = rec.shape[0]
    dt = w.dtype
    L = LANES
    h = np.zeros(L, dt)
    hb = np.zeros(L, dt)
    wl = np.zeros(L, dt)
    cl = np.zeros(L, dt)
    bl = np.zeros(L, dt)
    xl = np.zeros(L, dt)
    g = np.ones(L)  # gradient mantissa (float64 even for float32 runs)
    ge = np.zeros(L)  # gradient exponent, base 2
    lg_half = np.zeros(L)  # ln|g| at t_half
    lr_half = np.zeros(L)  # ln(response) at t_half
    r0 = np.zeros(L)
    last_mem = np.zeros(L, np.int64)
    last_change = np.zeros(L, np.int64)
    blow = np.zeros(L, np.int64)
    maxn = np.zeros(L)
    for c0 in range(0, ncase, L):
        m = min(L, ncase - c0)
        for j in range(L):
            if j < m:
                wl[j] = w[c0 + j]
                cl[j] = c[c0 + j]
                bl[j] = b[c0 + j]
            else:  # padding lanes: a harmless case that never blows up
                wl[j] = 0.0
                cl[j] = 0.0
                bl[j] = 0.0
            h[j] = 0.0
            hb[j] = 0.0
            g[j] = 1.0
            ge[j] = 0.0
            lg_half[j] = 0.0
            lr_half[j] = 0.0
            r0[j] = 0.0
            last_mem[j] = -1
            last_change[j] = -1
            blow[j] = -1
            maxn[j] = 0.0
        k = 0
        for t in range(steps):
            # the input of this step, per lane; the branch is outside the lane loop
            if input_kind == INPUT_NOISE:
                for j in range(m):
                    xl[j] = amp[c0 + j] * (2.0 * noise_uniform(keys[c0 + j], t) - 1.0)
            elif input_kind == INPUT_ARRAY:
                for j in range(m):
                    xl[j] = xs[c0 + j, t]
            else:
                on = 1.0 if (t == 0 or input_kind == INPUT_STEP) else 0.0
                for j in range(m):
                    xl[j] = amp[c0 + j] * on
            xbar_on = 0.0 if t == 0 else 1.0
            for j in range(L):
                hprev = h[j]
                v, d = activate(act_code, wl[j] * hprev + cl[j] * xl[j] + bl[j])
                vb, _ = activate(act_code, wl[j] * hb[j] + cl[j] * (xl[j] * xbar_on) + bl[j])
                h[j] = v  # rounds to the run's precision
                hb[j] = vb
                hj = h[j]
                hbj = hb[j]
                # gradient dh(t)/dh(0) = prod_{s=1..t} w f'(z_s), renormalised by powers of 2
                gg = g[j] * (wl[j] * d) if t > 0 else g[j]
                ag = abs(gg)
                big = ag > _TWO_P500
                small = ag < _TWO_M500
                gg = gg * (_TWO_M500 if big else (_TWO_P500 if small else 1.0))
                ge[j] += 500.0 if big else (-500.0 if small else 0.0)
                g[j] = gg
                resp = abs(np.float64(hj) - np.float64(hbj))
                r0j = resp if t == 0 else r0[j]
                r0[j] = r0j
                last_mem[j] = t if resp > mem_rtol * r0j else last_mem[j]
                ah = abs(np.float64(hj))
                moved = abs(np.float64(hj) - np.float64(hprev)) > sat_tol * max(1.0, ah)
                last_change[j] = t if moved else last_change[j]
                maxn[j] = max(maxn[j], ah)
                # ah < inf is False for inf and NaN
                blow[j] = t if (not (ah < np.inf) and blow[j] < 0) else blow[j]
            # everything that calls log stays out of the lane loop, which must vectorise
            if t == t_half:
                for j in range(m):
                    lg_half[j] = np.log(abs(g[j])) + ge[j] * _LN2
                    lr_half[j] = np.log(abs(np.float64(h[j]) - np.float64(hb[j])))
            if k < nrec and rec[k] == t:
                for j in range(m):
                    if blow[j] < 0 or blow[j] == t:
                        out_state[c0 + j, k] = h[j]
                        out_resp[c0 + j, k] = abs(np.float64(h[j]) - np.float64(hb[j]))
                        lg2 = np.log(abs(g[j])) / _LN2 + ge[j]  # log2 |dh(t)/dh(0)|
                        out_grad[c0 + j, k] = lg2 * _LOG10_2
                k += 1
            # stop early once every real lane has blown up
            alive = 0
            for j in range(m):
                if blow[j] < 0:
                    alive += 1
            if alive == 0:
                break
        for j in range(m):
            i = c0 + j
            _finish_case(
                i, blow[j], steps, t_half, last_mem[j], last_change[j], r0[j],
                np.log(abs(g[j])) + ge[j] * _LN2, lg_half[j],
                np.log(abs(np.float64(h[j]) - np.float64(hb[j]))), lr_half[j],
                maxn[j], bound, np.float64(h[j]),
                s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
            )  # fmt: skip


@jit(inline="always")
def _finish_case(
    i, blow, steps, t_half, last_mem, last_change, r0, lg_end, lg_half, lr_end, lr_half,
    maxn, bound, final,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
):  # fmt: skip
    """Turn a case's running trackers into its summaries (shared by both kernels)."""
    last = steps - 1
    s_blow[i] = blow
    s_maxnorm[i] = maxn
    if blow >= 0:
        s_mem[i] = -1
        s_sat[i] = -1
        s_growth[i] = np.nan
        s_rgrowth[i] = np.nan
        s_bounded[i] = False
        s_final[i] = final
        return
    s_mem[i] = 0 if r0 == 0.0 else (last_mem + 1 if last_mem < last else -1)
    s_sat[i] = last_change + 1 if last_change < last else -1
    span = last - t_half
    if span > 0:
        s_growth[i] = _log_slope(lg_end, lg_half, span)
        s_rgrowth[i] = _log_slope(lr_end, lr_half, span)
    else:
        s_growth[i] = np.nan
        s_rgrowth[i] = np.nan
    s_bounded[i] = maxn <= bound
    s_final[i] = final


@jit(inline="always")
def _log_slope(end, start, span):
    # per-step growth between two logs; a quantity that reached exactly 0 decays at -inf
    if end == -np.inf:
        return -np.inf
    return (end - start) / span


@jit(inline="always")
def vector_block(
    act_code, W, C, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
    probe, grad_on,
    out_state, out_resp, out_grad,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
):  # fmt: skip
    """Vector recursions h(t) = f(W h(t-1) + C x(t) + b), one case after the other.

    ``W`` (cases, n, n), ``C`` and ``b`` (cases, n); ``probe`` (n, k): the Jacobian product is
    propagated as ``M_t = J_t ... J_1 probe`` with ``J_s = diag(f'(z_s)) W``, so that
    ``||M_t||_2 = ||dh(t)/dh(0)||_2`` exactly when ``probe`` is the identity, and a lower bound
    otherwise. ``out_state`` records ``||h(t)||``.
    """
    ncase, n, _ = W.shape
    nrec = rec.shape[0]
    k = probe.shape[1]
    dt = W.dtype
    h = np.zeros(n, dt)
    hb = np.zeros(n, dt)
    z = np.zeros(n, dt)
    zb = np.zeros(n, dt)
    d = np.zeros(n, dt)
    M = np.zeros((n, k), dt)
    WM = np.zeros((n, k), dt)
    dr = np.zeros(n)  # h - hbar
    dc = np.zeros(n)  # h(t) - h(t-1)
    for i in range(ncase):
        Wi = W[i]
        h[:] = 0.0
        hb[:] = 0.0
        M[:, :] = probe
        lscale = 0.0  # ln of the factor taken out of M
        blow = -1
        last_mem = -1
        last_change = -1
        r0 = 0.0
        maxn = 0.0
        lg_half = 0.0
        lr_half = 0.0
        lg = 0.0
        resp = 0.0
        hn = 0.0
        kk = 0
        for t in range(steps):
            x = input_at(i, t, input_kind, amp, keys, xs)
            xb = 0.0 if t == 0 else x
            np.dot(Wi, h, z)
            np.dot(Wi, hb, zb)
            for u in range(n):
                v, du = activate(act_code, z[u] + C[i, u] * x + b[i, u])
                vb, _ = activate(act_code, zb[u] + C[i, u] * xb + b[i, u])
                hprev = h[u]
                h[u] = v  # rounds to the run's precision
                dc[u] = np.float64(h[u]) - np.float64(hprev)
                hb[u] = vb
                dr[u] = np.float64(h[u]) - np.float64(hb[u])
                d[u] = du
            hn = _norm(h)
            resp = _norm(dr)
            change = _norm(dc)
            if grad_on and t > 0:
                np.dot(Wi, M, WM)
                for u in range(n):
                    du = d[u]
                    for q in range(k):
                        M[u, q] = du * WM[u, q]
                lscale += rescale(M)
            r0, last_mem, last_change, maxn, blow = track(
                t, resp, change, hn, r0, last_mem, last_change, maxn, blow, mem_rtol, sat_tol
            )
            need_lg = grad_on and (t == t_half or t == steps - 1 or (kk < nrec and rec[kk] == t))
            if need_lg:
                lg = lscale + np.log(_spectral_norm(M)) if lscale > -np.inf else -np.inf
            if t == t_half:
                lg_half = lg
                lr_half = np.log(resp)
            if kk < nrec and rec[kk] == t:
                out_state[i, kk] = hn
                out_resp[i, kk] = resp
                out_grad[i, kk] = lg / _LN10 if grad_on else np.nan
                kk += 1
            if blow >= 0:
                break
        if not grad_on:
            lg = np.nan
            lg_half = np.nan
        _finish_case(
            i, blow, steps, t_half, last_mem, last_change, r0, lg, lg_half,
            np.log(resp), lr_half, maxn, bound, hn,
            s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
        )  # fmt: skip


@jit(inline="always")
def _norm(x):
    """Euclidean norm of a 1-D array without overflow or underflow of the squares.

    The plain sum of squares is used when it is safely inside float64's range (almost always);
    otherwise the sum is recomputed on x / max|x| (LAPACK's dnrm2 does the same in one pass).
    """
    s = 0.0
    big = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        s += v * v
        big = max(big, abs(v))
    if s < 1e300 and s > 1e-300:
        return np.sqrt(s)
    if big == 0.0 or not (big < np.inf):
        return big if big == big else np.nan  # 0, inf, or NaN
    s = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i]) / big  # a division: 1 / big overflows for a subnormal big
        s += v * v
    return big * np.sqrt(s)


@jit(inline="always")
def _spectral_norm(M):
    """Largest singular value of M (n, k): sqrt of the top eigenvalue of the smaller Gram matrix.

    The largest singular value is well conditioned (relative error ~ eps), so going through
    the Gram matrix loses nothing for it (it only loses the small singular values).
    """
    n, k = M.shape
    if k <= n:
        G = np.dot(M.T, M)
    else:
        G = np.dot(M, M.T)
    ev = np.linalg.eigvalsh(G.astype(np.float64))
    return np.sqrt(max(ev[-1], 0.0))


def _make_kernels(code):
    """The four entry points of one activation, with its code frozen as a constant.

    Numba caches these closures per value of ``code`` (an int pickles the same in every
    process), loads them from ``__pycache__`` in new processes, and calls them in about a
    microsecond. Two other ways were measured and rejected: passing the activation function as
    an argument (the cache misses in every new process: seconds per Dask worker) and
    ``numba.literally`` (0.6 s of re-dispatch on every call).
    """

    @jit
    def scalar_serial(
        w, c, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
        out_state, out_resp, out_grad,
        s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
    ):  # fmt: skip
        scalar_block(
            code, w, c, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol,
            sat_tol, out_state, out_resp, out_grad,
            s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
        )  # fmt: skip

    @jit(parallel=True)
    def scalar_parallel(
        w, c, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
        out_state, out_resp, out_grad,
        s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, nchunks,
    ):  # fmt: skip
        ncase = w.shape[0]
        size = (ncase + nchunks - 1) // nchunks
        size = ((size + LANES - 1) // LANES) * LANES
        for ci in prange(nchunks):
            s = min(ci * size, ncase)
            e = min(s + size, ncase)
            if e > s:
                scalar_block(
                    code, w[s:e], c[s:e], b[s:e], amp[s:e], keys[s:e], xs[s:e], input_kind,
                    steps, rec, t_half, bound, mem_rtol, sat_tol,
                    out_state[s:e], out_resp[s:e], out_grad[s:e],
                    s_blow[s:e], s_mem[s:e], s_sat[s:e], s_growth[s:e], s_rgrowth[s:e],
                    s_bounded[s:e], s_final[s:e], s_maxnorm[s:e],
                )  # fmt: skip

    @jit
    def vector_serial(
        W, C, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
        probe, grad_on,
        out_state, out_resp, out_grad,
        s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
    ):  # fmt: skip
        vector_block(
            code, W, C, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol,
            sat_tol, probe, grad_on, out_state, out_resp, out_grad,
            s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
        )  # fmt: skip

    @jit(parallel=True)
    def vector_parallel(
        W, C, b, amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
        probe, grad_on,
        out_state, out_resp, out_grad,
        s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, nchunks,
    ):  # fmt: skip
        ncase = W.shape[0]
        size = (ncase + nchunks - 1) // nchunks
        for ci in prange(nchunks):
            s = min(ci * size, ncase)
            e = min(s + size, ncase)
            if e > s:
                vector_block(
                    code, W[s:e], C[s:e], b[s:e], amp[s:e], keys[s:e], xs[s:e], input_kind,
                    steps, rec, t_half, bound, mem_rtol, sat_tol, probe, grad_on,
                    out_state[s:e], out_resp[s:e], out_grad[s:e],
                    s_blow[s:e], s_mem[s:e], s_sat[s:e], s_growth[s:e], s_rgrowth[s:e],
                    s_bounded[s:e], s_final[s:e], s_maxnorm[s:e],
                )  # fmt: skip

    return {
        "scalar_serial": scalar_serial,
        "scalar_parallel": scalar_parallel,
        "vector_serial": vector_serial,
        "vector_parallel": vector_parallel,
    }


#: Entry points per activation code: ``KERNELS[code]["scalar_serial"]`` etc. Compiled lazily
#: on first call, then loaded from Numba's cache.
KERNELS = {a.code: _make_kernels(a.code) for a in ACTIVATIONS.values()}
