"""The ``lstm`` cell: ``torch.nn.LSTM``'s equations (gate rows i, f, g, o), the optional
peepholes of Greff et al. (2017) and their eight variants:

    i = s(z_i + p_i c'),  f = s(z_f + p_f c'),  g = tanh(z_g),  c = f c' + i g,
    o = s(z_o + p_o c),   h = o tanh(c),        z_* = W_i* x + b_i* + W_h* h' + b_h*

A layer's state is h (rows 0:H), c (rows H:2H) and, for the full-gate-recurrence variant
FGR, the previous step's gates i, f, o (rows 2H:5H), which enter z_i, z_f, z_o through
``weight_gate``. The variants are switched by ``flags`` (one entry per flag below). The parts
of a cell module are described in :mod:`.rnn`.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..activations import sigmoid, tanh

GATES = 4
CACHE = 11  # i, i', f, f', g, g', o, o', tanh(c), tanh'(c), c'
HAS_CELL = True
GATE_MEANS: tuple[str, ...] = ("input_gate_mean", "forget_gate_mean", "output_gate_mean")

# Variant flags (indices into ``flags``).
NO_INPUT_GATE = 0  # NIG: i = 1
NO_FORGET_GATE = 1  # NFG: f = 1
NO_OUTPUT_GATE = 2  # NOG: o = 1
LINEAR_INPUT_ACT = 3  # NIAF: g(z) = z
LINEAR_OUTPUT_ACT = 4  # NOAF: h = o c
PEEPHOLES = 5  # p_i, p_f on c(t-1), p_o on c(t)
COUPLED_GATES = 6  # CIFG: f = 1 - i
GATE_RECURRENCE = 7  # FGR: i, f, o also see the previous step's i, f, o
NFLAGS = 8

#: The variants of Greff et al. (2017), "LSTM: A search space odyssey", and their flag.
#: ``vanilla`` is the LSTM with peepholes if the weights have them (PyTorch's has none).
VARIANTS = {
    "vanilla": ("the LSTM (peepholes if given)", -1),
    "NIG": ("no input gate (i = 1)", NO_INPUT_GATE),
    "NFG": ("no forget gate (f = 1)", NO_FORGET_GATE),
    "NOG": ("no output gate (o = 1)", NO_OUTPUT_GATE),
    "NIAF": ("no input activation function (g(z) = z)", LINEAR_INPUT_ACT),
    "NOAF": ("no output activation function (h = o c)", LINEAR_OUTPUT_ACT),
    "NP": ("no peepholes", -1),
    "CIFG": ("coupled input and forget gate (f = 1 - i)", COUPLED_GATES),
    "FGR": (
        "full gate recurrence (i, f, o also see the previous step's i, f, o)",
        GATE_RECURRENCE,
    ),
}


@jit
def rows(H, flags):
    """Rows of a layer's state: h, c, and the previous gates for FGR."""
    return 5 * H if flags[GATE_RECURRENCE] else 2 * H


@jit
def forward(H, flags, act, gain, Whh, bih, bhh, P, Rg, ax, sp, sn, gsum, ah, gq, z, cache):
    """One LSTM step; gsum[0:3] += sums of i, f, o.

    One pass over the units per operation, each variant's choice outside the loop, so that
    the units' loops vectorise (the gates' exponentials included; the gate sums stay in
    order, scalar); each unit's arithmetic is the same, term for term, as one loop doing it
    all. ``z`` (4H, float64 in every precision) holds the gates' pre-activations z_i, z_f,
    z_g, z_o, then c in place of z_i.
    """
    fgr = flags[GATE_RECURRENCE] != 0
    peep = flags[PEEPHOLES] != 0
    np.dot(Whh, sp[0:H], ah)
    if fgr:
        np.dot(Rg, sp[2 * H : 5 * H], gq)
    for j in range(4 * H):
        z[j] = ax[j] + bih[j] + ah[j] + bhh[j]
    for u in range(H):
        cache[10, u] = sp[H + u]  # c'
    if peep:
        for u in range(H):
            z[u] += P[0, u] * cache[10, u]
            z[H + u] += P[1, u] * cache[10, u]
    if fgr:
        for u in range(H):
            z[u] += gq[u]
            z[H + u] += gq[H + u]
            z[3 * H + u] += gq[2 * H + u]
    _gates(H, flags, z, cache)
    for u in range(H):
        c = cache[2, u] * cache[10, u] + cache[0, u] * cache[4, u]  # f c' + i g
        z[u] = c
        sn[H + u] = c
    if peep:
        for u in range(H):
            z[3 * H + u] += P[2, u] * z[u]
    _output(H, flags, z, cache)
    for u in range(H):
        sn[u] = cache[6, u] * cache[8, u]  # o tanh(c)
    if fgr:
        for u in range(H):
            sn[2 * H + u] = cache[0, u]
            sn[3 * H + u] = cache[2, u]
            sn[4 * H + u] = cache[6, u]
    for u in range(H):
        gsum[0] += cache[0, u]
    for u in range(H):
        gsum[1] += cache[2, u]
    for u in range(H):
        gsum[2] += cache[6, u]


@jit
def _gates(H, flags, z, cache):
    """i, f, g and their derivatives into cache rows 0:6, from z_i, z_f, z_g."""
    if flags[NO_INPUT_GATE] != 0:
        for u in range(H):
            cache[0, u], cache[1, u] = 1.0, 0.0
    else:
        for u in range(H):
            cache[0, u], cache[1, u] = sigmoid(z[u])
    if flags[NO_FORGET_GATE] != 0:
        for u in range(H):
            cache[2, u], cache[3, u] = 1.0, 0.0
    elif flags[COUPLED_GATES] != 0:
        for u in range(H):
            cache[2, u], cache[3, u] = 1.0 - cache[0, u], 0.0
    else:
        for u in range(H):
            cache[2, u], cache[3, u] = sigmoid(z[H + u])
    if flags[LINEAR_INPUT_ACT] != 0:
        for u in range(H):
            cache[4, u], cache[5, u] = z[2 * H + u], 1.0
    else:
        for u in range(H):
            cache[4, u], cache[5, u] = tanh(z[2 * H + u])


@jit
def _output(H, flags, z, cache):
    """o, tanh(c) and their derivatives into cache rows 6:10, from z_o and c (in z[0:H])."""
    if flags[NO_OUTPUT_GATE] != 0:
        for u in range(H):
            cache[6, u], cache[7, u] = 1.0, 0.0
    else:
        for u in range(H):
            cache[6, u], cache[7, u] = sigmoid(z[3 * H + u])
    if flags[LINEAR_OUTPUT_ACT] != 0:
        for u in range(H):
            cache[8, u], cache[9, u] = z[u], 1.0
    else:
        for u in range(H):
            cache[8, u], cache[9, u] = tanh(z[u])


@jit
def tangent(H, flags, gain, Whh, P, Rg, dax, has_dx, sp, Tp, Tn, dAh, dG, cache):
    """The LSTM step's derivative through every path (carousel, gates, peepholes, FGR)."""
    k = Tp.shape[1]
    fgr = flags[GATE_RECURRENCE] != 0
    peep = flags[PEEPHOLES] != 0
    cifg = flags[COUPLED_GATES] != 0
    np.dot(Whh, Tp[0:H], dAh)
    if has_dx:
        for j in range(4 * H):
            for q in range(k):
                dAh[j, q] += dax[j, q]
    if fgr:
        np.dot(Rg, Tp[2 * H : 5 * H], dG)
        for j in range(H):
            for q in range(k):
                dAh[j, q] += dG[j, q]
                dAh[H + j, q] += dG[H + j, q]
                dAh[3 * H + j, q] += dG[2 * H + j, q]
    for u in range(H):
        ig, di_, fg, df_ = cache[0, u], cache[1, u], cache[2, u], cache[3, u]
        gg, dg_, og, do_ = cache[4, u], cache[5, u], cache[6, u], cache[7, u]
        ac, dac, cp = cache[8, u], cache[9, u], cache[10, u]
        # branch-free (it vectorises across the k columns): disabled parts have zero
        # coefficients, the input and gate-recurrence terms are already in dAh
        pi = P[0, u] if peep else 0.0
        pf = P[1, u] if peep else 0.0
        po = P[2, u] if peep else 0.0
        kc = -1.0 if cifg else 0.0
        kg = ig * dg_
        koc = og * dac
        for q in range(k):
            dcp = np.float64(Tp[H + u, q])
            di = di_ * (dAh[u, q] + pi * dcp)
            df = df_ * (dAh[H + u, q] + pf * dcp) + kc * di
            dc = df * cp + fg * dcp + di * gg + kg * dAh[2 * H + u, q]
            do = do_ * (dAh[3 * H + u, q] + po * dc)
            Tn[u, q] = do * ac + koc * dc
            Tn[H + u, q] = dc
            if fgr:
                Tn[2 * H + u, q] = di
                Tn[3 * H + u, q] = df
                Tn[4 * H + u, q] = do


@jit
def backward(H, flags, gain, Whh, P, Rg, sp, sn, lam, lamp, dax, dah, dbh, dP, dRg, gw, cache):
    """The LSTM step's adjoint through every path (carousel, gates, peepholes, FGR).

    ``lam`` holds dL/dh, dL/dc and (FGR) dL/d(i, f, o) of this step; ``lamp`` gets those of
    the previous step. The gate pre-activations' adjoints D = (dz_i, dz_f, dz_g, dz_o) are
    ``dax`` and ``dah`` alike and are added to ``dbh``; ``dP`` and ``dRg`` get the
    peepholes' and the gate recurrence's gradients.
    """
    fgr = flags[GATE_RECURRENCE] != 0
    peep = flags[PEEPHOLES] != 0
    cifg = flags[COUPLED_GATES] != 0 and flags[NO_FORGET_GATE] == 0
    for u in range(H):
        ig, di_, fg, df_ = cache[0, u], cache[1, u], cache[2, u], cache[3, u]
        gg, dg_, og, do_ = cache[4, u], cache[5, u], cache[6, u], cache[7, u]
        ac, dac, cp = cache[8, u], cache[9, u], cache[10, u]
        lh = np.float64(lam[u])
        dog = lh * ac  # h = o tanh(c)
        dig = 0.0
        dfg = 0.0
        if fgr:  # this step's gates are state rows that the next step's gates see
            dig = np.float64(lam[2 * H + u])
            dfg = np.float64(lam[3 * H + u])
            dog += lam[4 * H + u]
        dzo = do_ * dog
        dc = np.float64(lam[H + u]) + dac * (lh * og)
        if peep:  # z_o sees the new c
            dc += dzo * P[2, u]
            dP[2, u] += dzo * sn[H + u]
        dfg += dc * cp  # c = f c' + i g
        dig += dc * gg
        if cifg:  # f = 1 - i
            dig -= dfg
        dzf = df_ * dfg  # f' = 0 when f is 1 or 1 - i
        dzi = di_ * dig
        dzg = dg_ * (dc * ig)
        dcp = dc * fg
        if peep:  # z_i, z_f see c'
            dcp += dzi * P[0, u] + dzf * P[1, u]
            dP[0, u] += dzi * cp
            dP[1, u] += dzf * cp
        lamp[H + u] = dcp
        dax[u], dax[H + u], dax[2 * H + u], dax[3 * H + u] = dzi, dzf, dzg, dzo
        dah[u], dah[H + u], dah[2 * H + u], dah[3 * H + u] = dzi, dzf, dzg, dzo
        dbh[u] += dzi
        dbh[H + u] += dzf
        dbh[2 * H + u] += dzg
        dbh[3 * H + u] += dzo
        if fgr:
            gw[u] = dzi
            gw[H + u] = dzf
            gw[2 * H + u] = dzo
    np.dot(Whh.T, dah, lamp[0:H])
    if fgr:  # z_(i, f, o) += R_g (i', f', o')
        np.dot(Rg.T, gw, lamp[2 * H : 5 * H])
        for j in range(3 * H):
            gj = np.float64(gw[j])
            for q in range(3 * H):
                dRg[j, q] += gj * sp[2 * H + q]
