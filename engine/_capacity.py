"""Memory capacity (Jaeger 2001) without storing the states: the layered kernel's
``capacity`` tracker accumulates, over the second half of the run, the moments of the hidden
state h(t) (every layer's, L H entries) and of the inputs u(t - k) of the last K steps,
centred on the window's first state and input (so that a state far from 0, a bias or a
fixed point, loses no precision), in four quarters of that window. :func:`finish` fits the
least-squares readout of each delayed input on one quarter and takes its correlation with
the input on the next (quarters 1 -> 2 and 3 -> 4, and the reverse), and multiplies the
correlations of the two independent pairs: an out-of-sample r^2, not inflated by the n
fitted weights (the in-sample r^2 exceeds the true value by about n / T per delay, and its
sum the bound n), and of mean 0 (either sign) for a delay the state has forgotten, since the
two factors then are independent noise.

Delay k = 0 is the current input: h(t) already contains x(t). The readout solves the normal
equations with a 1e-12 relative ridge: directions of the state whose variance is below about
1e-12 of the mean variance are not read (in float64 they cannot be, from the moments), so
the capacity measured is the part resolvable at this precision; a linear network's exact
capacity is n for every spectral radius below 1, most of it in such directions when the
radius is small.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["NPARTS", "accumulate", "finish", "reset"]

#: The window's parts: a readout is fitted on one and scored on another.
NPARTS = 4


@jit
def reset(M, S, P, U, cnt, ref):
    """Zero every part's moments: M (4, D) sum h, S (4, D, D) sum h h^T, P (4, D, K) sum
    h u_k, U (4, 2, K) sum u_k and sum u_k^2, cnt (4,) the counts; ref (D + 1,) the
    centring state and input, set at the window's first step (its count ref[D] < 0 until
    then: NaN)."""
    M[:, :] = 0.0
    S[:, :, :] = 0.0
    P[:, :, :] = 0.0
    U[:, :, :] = 0.0
    cnt[:] = 0.0
    ref[:] = np.nan


@jit
def accumulate(part, h, ring, t, M, S, P, U, cnt, ref):
    """Add step t's state h (D,) and delayed inputs ring[(t - k) % K], centred on ``ref``
    (the first call's state and input), to part ``part``."""
    D = h.shape[0]
    K = ring.shape[0]
    if not ref[D] == ref[D]:  # the window's first step: its values centre every later one
        for a in range(D):
            ref[a] = h[a]
        ref[D] = ring[t % K]
    cnt[part] += 1.0
    for a in range(D):
        ha = h[a] - ref[a]
        M[part, a] += ha
        for b in range(D):
            S[part, a, b] += ha * (h[b] - ref[b])
        for k in range(K):
            P[part, a, k] += ha * (ring[(t - k) % K] - ref[D])
    for k in range(K):
        u = ring[(t - k) % K] - ref[D]
        U[part, 0, k] += u
        U[part, 1, k] += u * u


@jit
def _moments(M, S, P, U, cnt, part):
    """(covariance of h (D, D), cov(h, u_k) (D, K), var u_k (K,)) of one part."""
    n = cnt[part]
    m = M[part] / n
    cov = S[part] / n - np.outer(m, m)
    mu = U[part, 0] / n
    cross = P[part] / n - np.outer(m, mu)
    return cov, cross, U[part, 1] / n - mu * mu


@jit
def _correlation(fit, test, M, S, P, U, cnt, out):
    """out[k] = the correlation, on part ``test``, of u_k with the readout fitted on part
    ``fit``; 0 where the state is constant; NaN where the input is constant or a moment is
    not finite."""
    cov, cross, var_fit = _moments(M, S, P, U, cnt, fit)
    covt, crosst, vart = _moments(M, S, P, U, cnt, test)
    D = cov.shape[0]
    tr = 0.0
    for a in range(D):
        tr += cov[a, a]
    if not (np.all(np.isfinite(cov)) and np.all(np.isfinite(cross)) and abs(tr) < np.inf):
        out[:] = np.nan
        return
    if not (np.all(np.isfinite(covt)) and np.all(np.isfinite(crosst))):
        out[:] = np.nan
        return
    for k in range(out.shape[0]):
        out[k] = 0.0 if (var_fit[k] > 0.0 and vart[k] > 0.0) else np.nan
    if not tr > 0.0:  # a constant state reads out nothing
        return
    for a in range(D):
        cov[a, a] += 1e-12 * tr / D
    w = np.linalg.solve(cov, cross)  # (D, K)
    for k in range(w.shape[1]):
        if not out[k] == 0.0:
            continue
        wk = np.ascontiguousarray(w[:, k])
        c = 0.0
        for a in range(D):
            c += wk[a] * crosst[a, k]
        v = np.dot(wk, np.dot(covt, wk))
        if v > 0.0:
            out[k] = c / np.sqrt(v * vart[k])


@jit
def finish(M, S, P, U, cnt, out):
    """out (K,): each delay's capacity, the mean of r(1 -> 2) r(3 -> 4) and r(2 -> 1)
    r(4 -> 3), r(a -> b) the correlation on part b of the readout fitted on part a; NaN
    after a blow-up (a moment that is not finite), for a constant input, or with fewer than
    2 steps in a part."""
    for p in range(M.shape[0]):
        if cnt[p] < 2:
            out[:] = np.nan
            return
    K = out.shape[0]
    r12, r34, r21, r43 = np.zeros(K), np.zeros(K), np.zeros(K), np.zeros(K)
    o = M.shape[0] - NPARTS  # 0, but not a literal: one specialisation of the helpers
    _correlation(o, o + 1, M, S, P, U, cnt, r12)
    _correlation(o + 2, o + 3, M, S, P, U, cnt, r34)
    _correlation(o + 1, o, M, S, P, U, cnt, r21)
    _correlation(o + 3, o + 2, M, S, P, U, cnt, r43)
    for k in range(K):
        out[k] = 0.5 * (r12[k] * r34[k] + r21[k] * r43[k])
