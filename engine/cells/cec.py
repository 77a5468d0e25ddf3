"""The ``cec`` cell, the constant error carousel: h = h' + f(W_ih x + b_ih), so that
dh(t)/dh(t-1) = I (``weight_hh`` and ``bias_hh`` are not used). The parts of a cell module
are described in :mod:`.rnn`."""

from __future__ import annotations

from .._jit import jit
from ..activations import activate_into
from ._shared import h_rows

GATES = 1
CACHE = 2  # f'(z), f(z)
HAS_CELL = False
GATE_MEANS: tuple[str, ...] = ()


#: Rows of a layer's state: h.
rows = h_rows


@jit
def forward(H, flags, act, gain, Whh, bih, bhh, P, Rg, ax, sp, sn, gsum, ah, gq, z, cache):
    """h = h' + f(ax + b_ih); cache[0] = f'(z)."""
    for u in range(H):
        z[u] = ax[u] + bih[u]
    activate_into(act, z[0:H], cache[1], cache[0])
    for u in range(H):
        sn[u] = sp[u] + cache[1, u]


@jit
def tangent(H, flags, gain, Whh, P, Rg, dax, has_dx, sp, Tp, Tn, dAh, dG, cache):
    """Tn = Tp + diag(f'(z)) dax."""
    k = Tp.shape[1]
    for u in range(H):
        d = cache[0, u]
        if has_dx:
            for q in range(k):
                Tn[u, q] = Tp[u, q] + d * dax[u, q]
        else:
            for q in range(k):
                Tn[u, q] = Tp[u, q]


@jit
def backward(H, flags, gain, Whh, P, Rg, sp, sn, lam, lamp, dax, dah, dbh, dP, dRg, gw, cache):
    """lamp = lam (the carousel), dax = f'(z) lam; W_hh and b_hh are not used (dah = 0)."""
    for u in range(H):
        lamp[u] = lam[u]
        dax[u] = cache[0, u] * lam[u]
        dah[u] = 0.0
