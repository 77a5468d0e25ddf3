"""The jitted kernel of the ``mlp`` family: deep feed-forward networks, the layer index playing
the role of time. Arithmetic only; :mod:`rnnlab.engine.mlp` validates and allocates.

h(-1) = x, h(t) = f(s W_t h(t-1) + b) for t = 0 ... depth - 1, with untied weights W_t (one
(depth, n, n) stack shared by the cases of a call, each case with its own scale s, bias b and
input x). The input-free run hbar starts from hbar(-1) = 0. The Jacobian product
dh(t)/dh(0) = J_t ... J_1, J_s = diag(f'(z_s)) s W_s, is propagated exactly and renormalised.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit
from ._kernels import _finish_case, _norm, _spectral_norm, rescale, track
from .activations import activate

_LN10 = 2.302585092994046


@jit
def mlp_block(
    act, W, scale, b, x0, steps, rec, t_half, bound, mem_rtol, sat_tol, grad_on,
    out_state, out_resp, out_grad,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
):  # fmt: skip
    """Run every case of a block. ``W`` (depth, n, n), ``scale`` (cases,), ``b`` and ``x0``
    (cases, n); outputs as in :mod:`._kernels`."""
    ncase, n = x0.shape
    nrec = rec.shape[0]
    dt = W.dtype
    k = n if grad_on else 0
    h = np.zeros(n, dt)
    hb = np.zeros(n, dt)
    hp = np.zeros(n, dt)
    z = np.zeros(n, dt)
    zb = np.zeros(n, dt)
    d = np.zeros(n)
    M = np.zeros((n, k), dt)
    WM = np.zeros((n, k), dt)
    dr = np.zeros(n)
    dc = np.zeros(n)
    for i in range(ncase):
        s = scale[i]
        h[:] = x0[i]
        hb[:] = 0.0
        M[:, :] = 0.0
        for u in range(k):
            M[u, u] = 1.0
        lscale = 0.0
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
            Wt = W[t]
            np.dot(Wt, h, z)
            np.dot(Wt, hb, zb)
            for u in range(n):
                v, du = activate(act, s * z[u] + b[i, u])
                vb, _ = activate(act, s * zb[u] + b[i, u])
                hp[u] = h[u]
                h[u] = v
                hb[u] = vb
                d[u] = du * s
                dr[u] = np.float64(h[u]) - np.float64(hb[u])
                dc[u] = np.float64(h[u]) - np.float64(hp[u])
            hn = _norm(h)
            resp = _norm(dr)
            change = _norm(dc)
            if grad_on and t > 0:
                np.dot(Wt, M, WM)
                for u in range(n):
                    for q in range(k):
                        M[u, q] = d[u] * WM[u, q]
                lscale += rescale(M)
            r0, last_mem, last_change, maxn, blow = track(
                t, resp, change, hn, r0, last_mem, last_change, maxn, blow, mem_rtol, sat_tol
            )
            is_rec = kk < nrec and rec[kk] == t
            if grad_on and (t == t_half or t == steps - 1 or is_rec):
                lg = lscale + np.log(_spectral_norm(M)) if lscale > -np.inf else -np.inf
            if t == t_half:
                lg_half = lg
                lr_half = np.log(resp)
            if is_rec:
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


@jit(parallel=True)
def mlp_parallel(
    act, W, scale, b, x0, steps, rec, t_half, bound, mem_rtol, sat_tol, grad_on,
    out_state, out_resp, out_grad,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, nchunks,
):  # fmt: skip
    ncase = x0.shape[0]
    size = (ncase + nchunks - 1) // nchunks
    for ci in prange(nchunks):
        s = min(ci * size, ncase)
        e = min(s + size, ncase)
        if e > s:
            mlp_block(
                act, W, scale[s:e], b[s:e], x0[s:e], steps, rec, t_half, bound, mem_rtol,
                sat_tol, grad_on, out_state[s:e], out_resp[s:e], out_grad[s:e],
                s_blow[s:e], s_mem[s:e], s_sat[s:e], s_growth[s:e], s_rgrowth[s:e],
                s_bounded[s:e], s_final[s:e], s_maxnorm[s:e],
            )  # fmt: skip
