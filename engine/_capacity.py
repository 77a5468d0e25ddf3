"""Memory capacity (Jaeger 2001) without storing the states: the layered kernel's
``capacity`` tracker accumulates, over the second half of the run, the moments of the hidden
state h(t) (every layer's, L H entries) and of the inputs u(t - k) of the last K steps, in
two halves A and B of that window; :func:`finish` fits the best linear readout of each
delayed input on one half and scores its correlation with the input on the other, both
ways, and multiplies the two: an out-of-sample r^2, so that the n fitted weights do not
inflate it (the in-sample estimate exceeds the true value by about n / T per delay, and
their sum exceeds the bound n), and one whose noise has mean 0 for a forgotten delay.

Delay k = 0 is the current input: h(t) already contains x(t).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["accumulate", "finish", "reset"]


@jit
def reset(M, S, P, U, cnt):
    """Zero both halves' moments: M (2, D) sum h, S (2, D, D) sum h h^T, P (2, D, K) sum
    h u_k, U (2, 2, K) sum u_k and sum u_k^2, cnt (2,) the counts."""
    M[:, :] = 0.0
    S[:, :, :] = 0.0
    P[:, :, :] = 0.0
    U[:, :, :] = 0.0
    cnt[:] = 0.0


@jit
def accumulate(half, h, ring, t, M, S, P, U, cnt):
    """Add step t's state h (D,) and delayed inputs ring[(t - k) % K] to half ``half``."""
    D = h.shape[0]
    K = ring.shape[0]
    cnt[half] += 1.0
    for a in range(D):
        ha = h[a]
        M[half, a] += ha
        for b in range(D):
            S[half, a, b] += ha * h[b]
        for k in range(K):
            P[half, a, k] += ha * ring[(t - k) % K]
    for k in range(K):
        u = ring[(t - k) % K]
        U[half, 0, k] += u
        U[half, 1, k] += u * u


@jit
def _moments(M, S, P, U, cnt, half):
    """(covariance of h (D, D), cov(h, u_k) (D, K), var u_k (K,)) of one half."""
    n = cnt[half]
    m = M[half] / n
    cov = S[half] / n - np.outer(m, m)
    mu = U[half, 0] / n
    cross = P[half] / n - np.outer(m, mu)
    return cov, cross, U[half, 1] / n - mu * mu


@jit
def _score(fit, test, M, S, P, U, cnt, out):
    """out[k] = the correlation, on half ``test``, of u_k with the readout fitted on half
    ``fit`` (least squares with a 1e-12 relative ridge, so that a degenerate state never
    makes the solve fail); 0 where either side is constant."""
    out[:] = 0.0
    cov, cross, _ = _moments(M, S, P, U, cnt, fit)
    D = cov.shape[0]
    tr = 0.0
    for a in range(D):
        tr += cov[a, a]
    if not tr > 0.0:  # a constant state reads out nothing
        return
    for a in range(D):
        cov[a, a] += 1e-12 * tr / D
    w = np.linalg.solve(cov, cross)  # (D, K)
    covt, crosst, vart = _moments(M, S, P, U, cnt, test)
    for k in range(w.shape[1]):
        wk = np.ascontiguousarray(w[:, k])
        c = 0.0
        for a in range(D):
            c += wk[a] * crosst[a, k]
        v = np.dot(wk, np.dot(covt, wk))
        if v > 0.0 and vart[k] > 0.0:
            out[k] = c / np.sqrt(v * vart[k])


@jit
def finish(M, S, P, U, cnt, out):
    """out (K,): each delay's capacity, the product of the two out-of-sample correlations
    (fitted on A and scored on B, and the reverse): r^2 where the state remembers the
    input, and noise of mean 0 (either sign) where it has forgotten it, so that forgotten
    delays add no bias to the sum (a squared correlation would add about 1 / T each). NaN
    after a blow-up."""
    out[:] = 0.0
    for j in range(M.shape[1]):
        if not (abs(M[0, j]) < np.inf and abs(M[1, j]) < np.inf):
            out[:] = np.nan
            return
    if cnt[0] < 2 or cnt[1] < 2:
        out[:] = np.nan
        return
    rb = np.zeros(out.shape[0])
    _score(0, 1, M, S, P, U, cnt, out)
    _score(1, 0, M, S, P, U, cnt, rb)
    for k in range(out.shape[0]):
        out[k] *= rb[k]
