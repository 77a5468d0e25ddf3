"""The ``gru`` cell, ``torch.nn.GRU``'s equations (gate rows r, z, n):

    r = s(W_ir x + b_ir + W_hr h' + b_hr),  z = s(W_iz x + b_iz + W_hz h' + b_hz),
    n = tanh(W_in x + b_in + r (W_hn h' + b_hn)),  h = (1 - z) n + z h'

The parts of a cell module are described in :mod:`.rnn`.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..activations import sigmoid, tanh
from ._shared import h_rows

GATES = 3
CACHE = 8  # r, r', z, z', n, n', W_hn h' + b_hn, h'
HAS_CELL = False
GATE_MEANS: tuple[str, ...] = ("reset_gate_mean", "update_gate_mean")


#: Rows of a layer's state: h.
rows = h_rows


@jit
def forward(H, flags, act, gain, Whh, bih, bhh, P, Rg, ax, sp, sn, gsum, ah, gq, z, cache):
    """One GRU step; gsum[0] += sum(r), gsum[1] += sum(z).

    One pass over the units per gate, so that the units' loops vectorise (the gates'
    exponentials included; the gate sums stay in order, scalar); each unit's arithmetic is
    the same, term for term, as one loop doing it all. The gates' arguments are float64 (a
    float32 kernel's sums converted, as the LSTM's are): one specialisation of sigmoid for
    both precisions."""
    np.dot(Whh, sp[0:H], ah)
    for u in range(H):
        cache[0, u], cache[1, u] = sigmoid(np.float64(ax[u] + bih[u] + ah[u] + bhh[u]))  # r
    for u in range(H):
        cache[2, u], cache[3, u] = sigmoid(
            np.float64(ax[H + u] + bih[H + u] + ah[H + u] + bhh[H + u])
        )
    for u in range(H):
        an = ah[2 * H + u] + bhh[2 * H + u]
        cache[6, u] = an
        cache[4, u], cache[5, u] = tanh(ax[2 * H + u] + bih[2 * H + u] + cache[0, u] * an)
    for u in range(H):
        hp = np.float64(sp[u])
        cache[7, u] = hp
        sn[u] = (1.0 - cache[2, u]) * cache[4, u] + cache[2, u] * hp
    for u in range(H):
        gsum[0] += cache[0, u]
    for u in range(H):
        gsum[1] += cache[2, u]


@jit
def tangent(H, flags, gain, Whh, P, Rg, dax, has_dx, sp, Tp, Tn, dAh, dG, cache):
    """The GRU step's derivative; the reset gate multiplies W_hn h' + b_hn only."""
    k = Tp.shape[1]
    np.dot(Whh, Tp[0:H], dAh)
    for u in range(H):
        r, dr_, zg, dz_ = cache[0, u], cache[1, u], cache[2, u], cache[3, u]
        n, dn_, an, hp = cache[4, u], cache[5, u], cache[6, u], cache[7, u]
        for q in range(k):
            dxr = dax[u, q] if has_dx else 0.0
            dxz = dax[H + u, q] if has_dx else 0.0
            dxn = dax[2 * H + u, q] if has_dx else 0.0
            dr = dr_ * (dAh[u, q] + dxr)
            dz = dz_ * (dAh[H + u, q] + dxz)
            dn = dn_ * (dxn + dr * an + r * dAh[2 * H + u, q])
            Tn[u, q] = (hp - n) * dz + (1.0 - zg) * dn + zg * Tp[u, q]


@jit
def backward(H, flags, gain, Whh, P, Rg, sp, sn, lam, lamp, dax, dah, dbh, dP, dRg, gw, cache):
    """The GRU step's adjoint: dax = (dz_r, dz_z, dz_n), dah = (dz_r, dz_z, r dz_n) (the reset
    gate multiplies W_hn h' + b_hn), dbh += dah; lamp = W_hh^T dah + z lam."""
    for u in range(H):
        r, dr_, zg, dz_ = cache[0, u], cache[1, u], cache[2, u], cache[3, u]
        n, dn_, an, hp = cache[4, u], cache[5, u], cache[6, u], cache[7, u]
        lh = np.float64(lam[u])
        dzn = dn_ * (lh * (1.0 - zg))  # the pre-activation of n
        dzr = dr_ * (dzn * an)
        dzz = dz_ * (lh * (hp - n))
        dax[u] = dzr
        dax[H + u] = dzz
        dax[2 * H + u] = dzn
        dah[u] = dzr
        dah[H + u] = dzz
        dah[2 * H + u] = r * dzn
        dbh[u] += dzr
        dbh[H + u] += dzz
        dbh[2 * H + u] += r * dzn
    np.dot(Whh.T, dah, lamp[0:H])
    for u in range(H):
        lamp[u] += cache[2, u] * lam[u]
