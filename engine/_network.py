"""The jitted kernel of the layered families: stacked ``rnn`` cells, ``lstm`` (all variants),
``gru`` and ``cec``. Arithmetic only; :mod:`rnnlab.engine.network` validates and allocates.

One network step (:func:`_net_step`) computes the new state of every layer and, at the same
time, its forward-mode derivative (JVP): given the tangents ``T_prev = ds(t-1)/dtheta`` of
the previous state (any number ``kk`` of columns), it returns ``T_new = ds(t)/dtheta``. The
same step serves three purposes:

- the Jacobian product ``ds(t)/ds(0)``: ``T`` seeded with the identity on the h and c rows
  and propagated step after step (renormalised per column group, so nothing overflows);
- the run without tangents (``kk = 0``), for the input-free run ``hbar``;
- backpropagation through time for ``log10_input_weight_grad``: seeded with the identity on
  the whole state plus the identity on the layer-0 pre-activations, one step gives
  ``[J_k | B_k]`` (the step Jacobian and the derivative with respect to an additive change of
  the input term), and the adjoint goes back ``lambda(k-1) = J_k^T lambda(k)``.

State layout per layer (rows ``0:H`` h, then ``H:2H`` c for the LSTM, then ``2H:5H`` the
previous step's gates i, f, o for the full-gate-recurrence variant FGR). The state of the
network is the concatenation over layers; ``h`` in the outputs is the concatenation of all
layers' h (for one layer, simply h).

Equations (PyTorch's, gate order of the weight rows as in PyTorch):

- rnn:  h = f(W_ih x + b_ih + W_hh h' + b_hh)
- lstm: i, f, g, o rows; i = s(z_i + p_i c'), f = s(z_f + p_f c'), g = tanh(z_g),
  c = f c' + i g, o = s(z_o + p_o c), h = o tanh(c) (peepholes p as in Greff et al. 2017)
- gru:  r, z, n rows; r = s(..), z = s(..), n = tanh(W_in x + b_in + r (W_hn h' + b_hn)),
  h = (1 - z) n + z h'
- cec:  h = h' + f(W_ih x + b_ih) (the constant error carousel: dh(t)/dh(t-1) = I)
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit
from ._kernels import _finish_case, _norm, _spectral_norm, input_at, track
from .activations import activate

CELL_RNN = 0
CELL_LSTM = 1
CELL_GRU = 2
CELL_CEC = 3

# LSTM variant flags (indices into the ``flags`` array).
NO_INPUT_GATE = 0  # NIG: i = 1
NO_FORGET_GATE = 1  # NFG: f = 1
NO_OUTPUT_GATE = 2  # NOG: o = 1
LINEAR_INPUT_ACT = 3  # NIAF: g(z) = z
LINEAR_OUTPUT_ACT = 4  # NOAF: h = o c
PEEPHOLES = 5  # p_i, p_f on c(t-1), p_o on c(t)
COUPLED_GATES = 6  # CIFG: f = 1 - i
GATE_RECURRENCE = 7  # FGR: i, f, o also see the previous step's i, f, o
NFLAGS = 8

_SIGMOID = 1
_TANH = 2
_IDENTITY = 0
_LN10 = 2.302585092994046


@jit
def _net_step(
    cell, act, flags, H, C, Wih, Whh, bih, bhh, P, Rg, x,
    S_prev, S_new, kk, T_prev, T_new, inj, use_inj,
    ah, ax, gq, dAh, dAx, dG, gsum,
):  # fmt: skip
    """One step of the whole network: S_new (and T_new if kk > 0) from S_prev (and T_prev).

    ``gsum`` (3,) receives the sums over units of the gates (lstm: i, f, o; gru: r, z).
    """
    L = S_prev.shape[0]
    GHl = ah.shape[0]
    fgr = flags[GATE_RECURRENCE] != 0
    peep = flags[PEEPHOLES] != 0
    gsum[:] = 0.0
    for l in range(L):
        sp = S_prev[l]
        sn = S_new[l]
        hp = sp[0:H]
        if cell != CELL_CEC:
            np.dot(Whh[l], hp, ah)
        if l == 0:
            for j in range(ax.shape[0]):
                ax[j] = C[j] * x
        else:
            np.dot(Wih[l - 1], S_new[l - 1][0:H], ax)
        if fgr:
            np.dot(Rg[l], sp[2 * H : 5 * H], gq)
        has_dx = use_inj or l > 0
        if kk > 0:
            Tp = T_prev[l]
            Tn = T_new[l]
            if cell != CELL_CEC:
                np.dot(Whh[l], Tp[0:H], dAh)
            if l > 0:
                np.dot(Wih[l - 1], T_new[l - 1][0:H], dAx)
            elif use_inj:
                dAx[:, :] = inj
            if fgr:
                np.dot(Rg[l], Tp[2 * H : 5 * H], dG)
        if cell == CELL_RNN:
            for u in range(H):
                v, d = activate(act, ax[u] + bih[l, u] + ah[u] + bhh[l, u])
                sn[u] = v
                for q in range(kk):
                    dx = dAx[u, q] if has_dx else 0.0
                    Tn[u, q] = d * (dAh[u, q] + dx)
        elif cell == CELL_CEC:
            for u in range(H):
                v, d = activate(act, ax[u] + bih[l, u])
                sn[u] = sp[u] + v
                for q in range(kk):
                    dx = dAx[u, q] if has_dx else 0.0
                    Tn[u, q] = Tp[u, q] + d * dx
        elif cell == CELL_GRU:
            for u in range(H):
                r, dr_ = activate(_SIGMOID, ax[u] + bih[l, u] + ah[u] + bhh[l, u])
                z, dz_ = activate(_SIGMOID, ax[H + u] + bih[l, H + u] + ah[H + u] + bhh[l, H + u])
                an = ah[2 * H + u] + bhh[l, 2 * H + u]
                n, dn_ = activate(_TANH, ax[2 * H + u] + bih[l, 2 * H + u] + r * an)
                hpu = np.float64(sp[u])
                sn[u] = (1.0 - z) * n + z * hpu
                gsum[0] += r
                gsum[1] += z
                for q in range(kk):
                    dxr = dAx[u, q] if has_dx else 0.0
                    dxz = dAx[H + u, q] if has_dx else 0.0
                    dxn = dAx[2 * H + u, q] if has_dx else 0.0
                    dr = dr_ * (dAh[u, q] + dxr)
                    dz = dz_ * (dAh[H + u, q] + dxz)
                    dn = dn_ * (dxn + dr * an + r * dAh[2 * H + u, q])
                    Tn[u, q] = (hpu - n) * dz + (1.0 - z) * dn + z * Tp[u, q]
        else:  # CELL_LSTM
            if kk > 0 and has_dx:
                for j in range(GHl):
                    for q in range(kk):
                        dAh[j, q] += dAx[j, q]
            if kk > 0 and fgr:
                for j in range(H):
                    for q in range(kk):
                        dAh[j, q] += dG[j, q]
                        dAh[H + j, q] += dG[H + j, q]
                        dAh[3 * H + j, q] += dG[2 * H + j, q]
            no_i = flags[NO_INPUT_GATE] != 0
            no_f = flags[NO_FORGET_GATE] != 0
            no_o = flags[NO_OUTPUT_GATE] != 0
            lin_g = flags[LINEAR_INPUT_ACT] != 0
            lin_h = flags[LINEAR_OUTPUT_ACT] != 0
            cifg = flags[COUPLED_GATES] != 0
            for u in range(H):
                cp = np.float64(sp[H + u])
                zi = ax[u] + bih[l, u] + ah[u] + bhh[l, u]
                zf = ax[H + u] + bih[l, H + u] + ah[H + u] + bhh[l, H + u]
                zg = ax[2 * H + u] + bih[l, 2 * H + u] + ah[2 * H + u] + bhh[l, 2 * H + u]
                zo = ax[3 * H + u] + bih[l, 3 * H + u] + ah[3 * H + u] + bhh[l, 3 * H + u]
                if peep:
                    zi += P[l, 0, u] * cp
                    zf += P[l, 1, u] * cp
                if fgr:
                    zi += gq[u]
                    zf += gq[H + u]
                    zo += gq[2 * H + u]
                if no_i:
                    ig, di_ = 1.0, 0.0
                else:
                    ig, di_ = activate(_SIGMOID, zi)
                if no_f:
                    fg, df_ = 1.0, 0.0
                elif cifg:
                    fg, df_ = 1.0 - ig, 0.0
                else:
                    fg, df_ = activate(_SIGMOID, zf)
                gg, dg_ = activate(_IDENTITY if lin_g else _TANH, zg)
                c = fg * cp + ig * gg
                if peep:
                    zo += P[l, 2, u] * c
                if no_o:
                    og, do_ = 1.0, 0.0
                else:
                    og, do_ = activate(_SIGMOID, zo)
                ac, dac = activate(_IDENTITY if lin_h else _TANH, c)
                sn[u] = og * ac
                sn[H + u] = c
                if fgr:
                    sn[2 * H + u] = ig
                    sn[3 * H + u] = fg
                    sn[4 * H + u] = og
                gsum[0] += ig
                gsum[1] += fg
                gsum[2] += og
                # branch-free tangent loop (it vectorises across the kk columns): disabled
                # parts have zero coefficients, the input and gate terms are already in dAh
                pi = P[l, 0, u] if peep else 0.0
                pf = P[l, 1, u] if peep else 0.0
                po = P[l, 2, u] if peep else 0.0
                kc = -1.0 if cifg else 0.0
                kg = ig * dg_
                koc = og * dac
                for q in range(kk):
                    dcp = np.float64(Tp[H + u, q])
                    di = di_ * (dAh[u, q] + pi * dcp)
                    df = df_ * (dAh[H + u, q] + pf * dcp) + kc * di
                    dc = df * cp + fg * dcp + di * gg + kg * dAh[2 * H + u, q]
                    do = do_ * (dAh[3 * H + u, q] + po * dc)
                    Tn[u, q] = do * ac + koc * dc
                    Tn[H + u, q] = dc
                if fgr:
                    for q in range(kk):  # the same again, to store the gates' tangents
                        dcp = np.float64(Tp[H + u, q])
                        di = di_ * (dAh[u, q] + pi * dcp)
                        df = df_ * (dAh[H + u, q] + pf * dcp) + kc * di
                        dc = Tn[H + u, q]
                        Tn[2 * H + u, q] = di
                        Tn[3 * H + u, q] = df
                        Tn[4 * H + u, q] = do_ * (dAh[3 * H + u, q] + po * dc)


@jit(fastmath={"contract", "reassoc"})
def _sum_squares(T, c0, c1):
    """Sum of squares of columns c0:c1 of T (L, R, k). Reassociation lets LLVM vectorise the
    reduction (the order of a sum of positive terms changes its rounding only)."""
    L, R, _ = T.shape
    s = 0.0
    for l in range(L):
        for r in range(R):
            for q in range(c0, c1):
                v = np.float64(T[l, r, q])
                s += v * v
    return s


@jit
def _renormalise(T, c0, c1):
    """Divide columns c0:c1 of T (L, R, k) by their joint Frobenius norm; return its log."""
    L, R, _ = T.shape
    s = _sum_squares(T, c0, c1)
    if s < 1e300 and s > 1e-300:
        fro = np.sqrt(s)
    else:  # out of the safe range, zero, inf or NaN: find the largest entry first
        big = 0.0
        for l in range(L):
            for r in range(R):
                for q in range(c0, c1):
                    v = abs(np.float64(T[l, r, q]))
                    if v > big or v != v:
                        big = v
        if not (big < np.inf):
            return np.nan
        if big == 0.0:
            return -np.inf
        s = 0.0
        for l in range(L):
            for r in range(R):
                for q in range(c0, c1):
                    v = np.float64(T[l, r, q]) / big
                    s += v * v
        fro = big * np.sqrt(s)
    inv = 1.0 / fro
    if inv < np.inf:
        for l in range(L):
            for r in range(R):
                for q in range(c0, c1):
                    T[l, r, q] *= inv
        return np.log(fro)
    for l in range(L):  # fro subnormal: divide (1 / fro overflows)
        for r in range(R):
            for q in range(c0, c1):
                T[l, r, q] /= fro
    return np.log(fro)


@jit
def _block_norm(T, r0, c0, H, B):
    """Spectral norm of the block of T: rows r0:r0+H of every layer, columns c0:c0+L*H."""
    L = T.shape[0]
    for l in range(L):
        for u in range(H):
            for q in range(L * H):
                B[l * H + u, q] = T[l, r0 + u, c0 + q]
    return _spectral_norm(B)


@jit
def _rows_norm(S, r0, H, buf):
    L = S.shape[0]
    for l in range(L):
        for u in range(H):
            buf[l * H + u] = S[l, r0 + u]
    return _norm(buf)


@jit
def network_block(
    cell, act, flags, C, Wih, Whh, bih, bhh, P, Rg,
    amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
    grad_on, loss_step, uloss,
    out_state, out_resp, out_grad, out_cell, out_cgrad, out_gates, out_iwg,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, s_cgrowth,
):  # fmt: skip
    """Run every case of a block (serially). Shapes: ``C`` (cases, G H), ``Wih`` (cases, L-1,
    G H, H), ``Whh`` (cases, L, G H, H), ``bih``/``bhh`` (cases, L, G H), ``P`` (cases, L, 3,
    H), ``Rg`` (cases, L, 3H, 3H) or (cases, L, 0, 0). Outputs as in :mod:`._kernels`, plus
    ``out_cell``/``out_cgrad`` (LSTM), ``out_gates`` (cases, 3, nrec) gate means and
    ``out_iwg`` (cases, nrec) the input-weight gradient contributions (log10).
    """
    ncase, L, GH, H = Whh.shape
    dt = Whh.dtype
    lstm = cell == CELL_LSTM
    fgr = flags[GATE_RECURRENCE] != 0
    R = H * (5 if fgr else 2) if lstm else H
    nrec = rec.shape[0]
    nh = L * H  # h columns; c columns follow for the LSTM
    k = (2 * nh if lstm else nh) if grad_on else 0
    S = np.zeros((L, R), dt)
    S2 = np.zeros((L, R), dt)
    Sb = np.zeros((L, R), dt)
    Sb2 = np.zeros((L, R), dt)
    T = np.zeros((L, R, k), dt)
    T2 = np.zeros((L, R, k), dt)
    T0 = np.zeros((L, R, 0), dt)
    ah = np.zeros(GH, dt)
    ax = np.zeros(GH, dt)
    gq = np.zeros(3 * H if fgr else 0, dt)
    dAh = np.zeros((GH, k), dt)
    dAx = np.zeros((GH, k), dt)
    dG = np.zeros((3 * H if fgr else 0, k), dt)
    inj0 = np.zeros((GH, 0), dt)
    dAh0 = np.zeros((GH, 0), dt)
    dG0 = np.zeros((3 * H if fgr else 0, 0), dt)
    gsum = np.zeros(3)
    gsumb = np.zeros(3)
    B = np.zeros((nh, nh), dt)
    hbuf = np.zeros(nh)
    dr = np.zeros(nh)
    dc = np.zeros(nh)
    # backpropagation through time, for the loss at step loss_step
    bptt = loss_step >= 0
    nb = loss_step + 1 if bptt else 0
    kb = L * R + GH if bptt else 0
    hist = np.zeros((nb, L, R), dt)
    xhist = np.zeros(nb)
    iwg = np.zeros(nb)
    Tb = np.zeros((L, R, kb), dt)
    Tb2 = np.zeros((L, R, kb), dt)
    injb = np.zeros((GH, kb), dt)
    dAhb = np.zeros((GH, kb), dt)
    dAxb = np.zeros((GH, kb), dt)
    dGb = np.zeros((3 * H if fgr else 0, kb), dt)
    lam = np.zeros(L * R)
    lam2 = np.zeros(L * R)
    Sz = np.zeros((L, R), dt)
    Sjunk = np.zeros((L, R), dt)
    if bptt:
        for l in range(L):
            for r in range(R):
                Tb[l, r, l * R + r] = 1.0
        for j in range(GH):
            injb[j, L * R + j] = 1.0
    for i in range(ncase):
        S[:, :] = 0.0
        Sb[:, :] = 0.0
        T[:, :, :] = 0.0
        if grad_on:
            for l in range(L):
                for u in range(H):
                    T[l, u, l * H + u] = 1.0
                    if lstm:
                        T[l, H + u, nh + l * H + u] = 1.0
        lsh = 0.0
        lsc = 0.0
        blow = -1
        last_mem = -1
        last_change = -1
        r0 = 0.0
        maxn = 0.0
        lg_half = 0.0
        lc_half = 0.0
        lr_half = 0.0
        lg = 0.0
        lc = 0.0
        resp = 0.0
        hn = 0.0
        kk = 0
        for t in range(steps):
            x = input_at(i, t, input_kind, amp, keys, xs)
            xb = 0.0 if t == 0 else x
            tang = grad_on and t > 0
            _net_step(
                cell, act, flags, H, C[i], Wih[i], Whh[i], bih[i], bhh[i], P[i], Rg[i], x,
                S, S2, k if tang else 0, T, T2, inj0, False, ah, ax, gq, dAh, dAx, dG, gsum,
            )  # fmt: skip
            _net_step(
                cell, act, flags, H, C[i], Wih[i], Whh[i], bih[i], bhh[i], P[i], Rg[i], xb,
                Sb, Sb2, 0, T0, T0, inj0, False, ah, ax, gq, dAh0, dAh0, dG0, gsumb,
            )  # fmt: skip
            S, S2 = S2, S
            Sb, Sb2 = Sb2, Sb
            if tang:
                T, T2 = T2, T
                lsh += _renormalise(T, 0, nh)
                if lstm:
                    lsc += _renormalise(T, nh, 2 * nh)
            if t < nb:
                hist[t] = S
                xhist[t] = x
            for l in range(L):
                for u in range(H):
                    dr[l * H + u] = np.float64(S[l, u]) - np.float64(Sb[l, u])
                    dc[l * H + u] = np.float64(S[l, u]) - np.float64(S2[l, u])
            hn = _rows_norm(S, 0, H, hbuf)
            resp = _norm(dr)
            change = _norm(dc)
            if lstm:  # the cell must have settled too
                for l in range(L):
                    for u in range(H):
                        dc[l * H + u] = np.float64(S[l, H + u]) - np.float64(S2[l, H + u])
                change = max(change, _norm(dc))
            r0, last_mem, last_change, maxn, blow = track(
                t, resp, change, hn, r0, last_mem, last_change, maxn, blow, mem_rtol, sat_tol
            )
            is_rec = kk < nrec and rec[kk] == t
            if grad_on and (t == t_half or t == steps - 1 or is_rec):
                lg = lsh + np.log(_block_norm(T, 0, 0, H, B)) if lsh > -np.inf else -np.inf
                if lstm:
                    lc = lsc + np.log(_block_norm(T, H, nh, H, B)) if lsc > -np.inf else -np.inf
            if t == t_half:
                lg_half = lg
                lc_half = lc
                lr_half = np.log(resp)
            if is_rec:
                out_state[i, kk] = hn
                out_resp[i, kk] = resp
                out_grad[i, kk] = lg / _LN10 if grad_on else np.nan
                if lstm:
                    out_cell[i, kk] = _rows_norm(S, H, H, hbuf)
                    out_cgrad[i, kk] = lc / _LN10 if grad_on else np.nan
                for g in range(3):
                    out_gates[i, g, kk] = gsum[g] / nh
                kk += 1
            if blow >= 0:
                break
        if bptt and blow < 0 and steps > loss_step:
            # adjoint of L = uloss . h_top(loss_step), back to step 0
            lam[:] = 0.0
            for u in range(H):
                lam[(L - 1) * R + u] = uloss[u]
            llam = 0.0
            for s in range(loss_step, -1, -1):
                prev = hist[s - 1] if s > 0 else Sz
                _net_step(
                    cell, act, flags, H, C[i], Wih[i], Whh[i], bih[i], bhh[i], P[i], Rg[i],
                    xhist[s], prev, Sjunk, kb, Tb, Tb2, injb, True,
                    ah, ax, gq, dAhb, dAxb, dGb, gsumb,
                )  # fmt: skip
                Tf = Tb2.reshape((L * R, kb))
                dn = 0.0
                for j in range(GH):
                    v = 0.0
                    for r in range(L * R):
                        v += Tf[r, L * R + j] * lam[r]
                    dn += v * v
                iwg[s] = (np.log(np.sqrt(dn) * abs(xhist[s])) + llam) / _LN10
                for c in range(L * R):
                    v = 0.0
                    for r in range(L * R):
                        v += Tf[r, c] * lam[r]
                    lam2[c] = v
                nl = _norm(lam2)
                if nl > 0.0 and nl < np.inf:
                    for c in range(L * R):
                        lam[c] = lam2[c] / nl
                    llam += np.log(nl)
                else:
                    for c in range(L * R):
                        lam[c] = lam2[c]
            for j in range(nrec):
                if rec[j] <= loss_step:
                    out_iwg[i, j] = iwg[rec[j]]
        if not grad_on:
            lg = np.nan
            lg_half = np.nan
        _finish_case(
            i, blow, steps, t_half, last_mem, last_change, r0, lg, lg_half,
            np.log(resp), lr_half, maxn, bound, hn,
            s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm,
        )  # fmt: skip
        span = steps - 1 - t_half
        if lstm and grad_on and blow < 0 and span > 0:
            s_cgrowth[i] = -np.inf if lc == -np.inf else (lc - lc_half) / span
        else:
            s_cgrowth[i] = np.nan


@jit
def network_serial(
    cell, act, flags, C, Wih, Whh, bih, bhh, P, Rg,
    amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
    grad_on, loss_step, uloss,
    out_state, out_resp, out_grad, out_cell, out_cgrad, out_gates, out_iwg,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, s_cgrowth,
):  # fmt: skip
    network_block(
        cell, act, flags, C, Wih, Whh, bih, bhh, P, Rg,
        amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
        grad_on, loss_step, uloss,
        out_state, out_resp, out_grad, out_cell, out_cgrad, out_gates, out_iwg,
        s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, s_cgrowth,
    )  # fmt: skip


@jit(parallel=True)
def network_parallel(
    cell, act, flags, C, Wih, Whh, bih, bhh, P, Rg,
    amp, keys, xs, input_kind, steps, rec, t_half, bound, mem_rtol, sat_tol,
    grad_on, loss_step, uloss,
    out_state, out_resp, out_grad, out_cell, out_cgrad, out_gates, out_iwg,
    s_blow, s_mem, s_sat, s_growth, s_rgrowth, s_bounded, s_final, s_maxnorm, s_cgrowth,
    nchunks,
):  # fmt: skip
    ncase = Whh.shape[0]
    size = (ncase + nchunks - 1) // nchunks
    for ci in prange(nchunks):
        s = min(ci * size, ncase)
        e = min(s + size, ncase)
        if e > s:
            network_block(
                cell, act, flags, C[s:e], Wih[s:e], Whh[s:e], bih[s:e], bhh[s:e], P[s:e],
                Rg[s:e], amp[s:e], keys[s:e], xs[s:e], input_kind, steps, rec, t_half, bound,
                mem_rtol, sat_tol, grad_on, loss_step, uloss,
                out_state[s:e], out_resp[s:e], out_grad[s:e], out_cell[s:e], out_cgrad[s:e],
                out_gates[s:e], out_iwg[s:e],
                s_blow[s:e], s_mem[s:e], s_sat[s:e], s_growth[s:e], s_rgrowth[s:e],
                s_bounded[s:e], s_final[s:e], s_maxnorm[s:e], s_cgrowth[s:e],
            )  # fmt: skip
