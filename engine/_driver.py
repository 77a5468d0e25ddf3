"""The layered kernel: vector recursions, stacked cells (rnn, lstm and its variants, gru, cec)
and deep feed-forward nets, one case after the other. Arithmetic only; the public wrappers
(:mod:`.rnn`, :mod:`.network`, :mod:`.mlp`) validate and allocate.

One kernel is compiled per cell (:func:`make_kernel`, around the cell's module in
:mod:`.cells`) and per precision; the activation, the variant flags, the layers, the size and
the requested outputs are run-time arguments, so no other specialisation exists. Per step,
every layer runs its cell's ``forward`` and, when the gradient is asked for, its ``tangent``
(the forward-mode derivative of the step for k columns at once). The same layer loop serves
three purposes:

- the run h itself, and with ``gradient`` the Jacobian product ``ds(t)/ds(0)``: tangents
  seeded with the probe (the identity for exact norms) on the h rows (and again on the c
  rows for the LSTM), renormalised per column group so that nothing overflows;
- with ``response``, the run hbar without the input at t = 0 (forward only);
- with a ``loss_step`` T, backpropagation through time for ``log10_input_weight_grad``: the
  step is recomputed backwards from the stored states with the tangent seeded with the
  identity on the whole state and on the layer-0 input term, which gives ``[J_k | B_k]``
  (the step's Jacobian and its derivative with respect to the input term), and the adjoint
  goes back ``lambda(k-1) = J_k^T lambda(k)``, kept at unit norm with the log of its scale
  carried apart. ``delta_k = B_k^T lambda(k)`` is the adjoint of layer 0's pre-activation:
  with x(k) it gives the input weight's gradient, with layer 0's previous h that of its
  recurrent weight (``log10_layer_weight_grad`` and its participation ratio: for a deep net,
  the gradient of layer k's weight matrix).

Array arguments (``cases`` leading, except ``Whh`` of untied nets): ``C`` (cases, G H) the
input column of layer 0; ``Wih`` (cases, L-1, G H, H); ``Whh`` (cases, L, G H, H), or
(steps, 1, H, H) for untied weights (``iopt[O_UNTIED]``: deep nets, W_t at step t shared by
every case); ``bih`` (cases, L, G H), ``bhh`` (cases, L, G H), or (steps, 1, G H) for untied
nets (b_t of step t, shared by every case); ``P`` (cases, L, 3, H) peepholes; ``Rg``
(cases, L, 3H, 3H) or (cases, L, 0, 0) the FGR gate weights; ``gain`` (cases,) the rnn
cell's recurrent gain; ``S0`` (cases, L, R) the state before t = 0 of the run (the run hbar
starts from 0); ``amp``, ``keys``, ``xs`` the input; outputs ``rec_out`` (cases, rows, nrec),
``hid_out`` and ``cell_out`` (cases, nrec, L H) or (cases, 0, 0), ``sums`` (cases, N_SUMS).
Settings: ``flags`` (the LSTM's variant flags), ``probe`` (L H, kh), ``uloss`` (H,), ``rec``
(nrec,), ``slots`` (N_ROWS,), ``iopt`` and ``fopt`` (see :mod:`._tracking`).
"""

from __future__ import annotations

import numpy as np

from . import _capacity as MC
from . import _tracking as K
from ._jit import borrowed, hold, jit
from ._numerics import input_at, norm, orthonormalise, renormalise, spectral_norm

__all__ = ["make_kernel"]

_LN10 = 2.302585092994046


@jit
def _seed(T, probe, H, has_cell):
    """Tangents of step 0: the probe on the h rows (columns 0:kh) and, for a cell state, on
    the c rows too (columns kh:2kh)."""
    L = T.shape[0]
    kh = probe.shape[1]
    for l in range(L):
        for u in range(H):
            for q in range(kh):
                T[l, u, q] = probe[l * H + u, q]
                if has_cell:
                    T[l, H + u, kh + q] = probe[l * H + u, q]


@jit
def _seed_columns(T, lprobe, c0):
    """Columns c0:c0+k of the tangents = the columns of lprobe (L R, k) on every state row
    (h, and c for the LSTM): the starting Lyapunov vectors."""
    L, R, _ = T.shape
    for l in range(L):
        for r in range(R):
            for q in range(lprobe.shape[1]):
                T[l, r, c0 + q] = lprobe[l * R + r, q]


@jit
def _exponents(out, lsum, span, finite):
    """The Lyapunov exponents of a case: the logs of QR's diagonal summed over the second
    half of the run, per step; NaN after a blow-up or without a second half."""
    for q in range(out.shape[0]):
        out[q] = lsum[q] / span if finite and span > 0 else np.nan


@jit
def _rows_into(S, r0, H, out):
    """out[l H + u] = S[l, r0 + u]: rows r0:r0+H of every layer, as one vector."""
    for l in range(S.shape[0]):
        for u in range(H):
            out[l * H + u] = S[l, r0 + u]


@jit
def _rows_diff(S, Sq, r0, H, out):
    """out = the rows r0:r0+H of S - Sq, every layer, as one vector."""
    for l in range(S.shape[0]):
        for u in range(H):
            out[l * H + u] = np.float64(S[l, r0 + u]) - np.float64(Sq[l, r0 + u])


@jit
def _block_log_norm(T, r0, c0, H, B, log_scale):
    """ln of the spectral norm of the block (rows r0:r0+H of every layer, columns c0:c0+kh) of
    the renormalised product, plus the log of the factors taken out of it."""
    if not log_scale > -np.inf:
        return log_scale  # the product became exactly 0 (or NaN after a blow-up)
    L = T.shape[0]
    kh = B.shape[1]
    for l in range(L):
        for u in range(H):
            for q in range(kh):
                B[l * H + u, q] = T[l, r0 + u, c0 + q]
    return log_scale + np.log(spectral_norm(B))


@jit
def _copy_state(src, dst):
    for l in range(src.shape[0]):
        for r in range(src.shape[1]):
            dst[l, r] = src[l, r]


@jit
def _input_term(l, x, C, Wih, Snew, H, ax, xrow):
    """ax = W_ih x of layer l: for layer 0 the step's projected input vector ``xrow`` (W_ih
    x(t), when the inputs are vectors) or x C (a scalar signal along a direction), W_ih of
    layer l times the new h of layer l-1 above."""
    if l == 0:
        if xrow.shape[0] > 0:
            for j in range(ax.shape[0]):
                ax[j] = xrow[j]
        else:
            for j in range(ax.shape[0]):
                ax[j] = C[j] * x
    else:
        np.dot(Wih[l - 1], Snew[l - 1][0:H], ax)


@jit
def _input_tangent(l, Tnew, Wih, H, inj, use_inj, dax):
    """The tangent of layer l's input term; returns whether there is one."""
    if l > 0:
        np.dot(Wih[l - 1], Tnew[l - 1][0:H], dax)
        return True
    if use_inj:
        for j in range(dax.shape[0]):
            for q in range(dax.shape[1]):
                dax[j, q] = inj[j, q]
        return True
    return False


@jit
def _adjoint_step(Tb, lam, lam2, delta, LR, GH):
    """From the tangent ``Tb`` = [J_k | B_k] of one step (layers x rows x columns) and the
    adjoint ``lam`` of its output: lam2 = J_k^T lam, delta = B_k^T lam (the adjoint of layer
    0's pre-activation), and ||delta||^2 (returned)."""
    L, R, _ = Tb.shape
    dn = 0.0
    for j in range(GH):
        v = 0.0
        for l in range(L):
            for r in range(R):
                v += Tb[l, r, LR + j] * lam[l * R + r]
        delta[j] = v
        dn += v * v
    for c in range(LR):
        v = 0.0
        for l in range(L):
            for r in range(R):
                v += Tb[l, r, c] * lam[l * R + r]
        lam2[c] = v
    return dn


@jit
def _log_norm_and_spread(v, n):
    """(ln ||v||, N_eff(v) = (sum v^2)^2 / sum v^4) of v[0:n], both from v scaled by its
    largest entry, so that neither sum under- or overflows (v^4 would leave the float64 range
    for entries beyond 1e77 or below 1e-77); (-inf, NaN) for v = 0, (inf, NaN) with an
    infinite entry, (NaN, NaN) with a NaN one."""
    m = 0.0
    for j in range(n):
        a = abs(np.float64(v[j]))
        if a > m:
            m = a
        elif not a <= m:  # NaN
            return np.nan, np.nan
    if not (m > 0.0 and m < np.inf):
        return (-np.inf if m == 0.0 else np.inf), np.nan
    s2, s4 = 0.0, 0.0
    for j in range(n):
        r = np.float64(v[j]) / m
        s2 += r * r
        s4 += r * r * r * r
    return np.log(m) + 0.5 * np.log(s2), s2 * s2 / s4


@jit
def _weight_grad(delta, hprev, H, llam):
    """The gradient delta h'^T of a step's recurrent weight (of layer 0), from delta (its
    pre-activation's adjoint, normalised by e^llam) and h' = hprev[0:H]: (log10 of its
    Frobenius norm ||delta|| ||h'||, its entries' participation ratio over their number,
    N_eff(delta) N_eff(h') / (len(delta) H); NaN for a zero gradient)."""
    ld, pd = _log_norm_and_spread(delta, delta.shape[0])
    lh, ph = _log_norm_and_spread(hprev, H)
    return (ld + lh + llam) / _LN10, pd * ph / (delta.shape[0] * H)


@jit
def _record_backward(rec_out, i, slot, rec, loss_step, values):
    """Case i's per-step values of the backward pass into its row ``slot`` (if kept), at the
    recorded steps up to the loss step (later steps stay NaN)."""
    if slot < 0:
        return
    for j in range(rec.shape[0]):
        if rec[j] <= loss_step:
            rec_out[i, slot, j] = values[rec[j]]


@jit
def _carousel(cache, clog, H):
    """Add this step's ln f of every unit (the LSTM cache's row 2) to clog."""
    for l in range(cache.shape[0]):
        for u in range(H):
            clog[l * H + u] += np.log(cache[l, 2, u])


@jit
def _record(i, kk, S, H, trk, resp, hn, gsum, nh, slots, rec_out, hid_out, cell_out, hbuf, clog):
    """Write case i's recorded quantities of this step (column kk)."""
    if slots[K.R_CAROUSEL] >= 0:
        rec_out[i, slots[K.R_CAROUSEL], kk] = np.max(clog) / _LN10
    if slots[K.R_STATE] >= 0:
        rec_out[i, slots[K.R_STATE], kk] = hn
    if slots[K.R_RESPONSE] >= 0:
        rec_out[i, slots[K.R_RESPONSE], kk] = resp
    if slots[K.R_GRADIENT] >= 0:
        rec_out[i, slots[K.R_GRADIENT], kk] = trk[K.K_LOG_GRAD] / _LN10
    if slots[K.R_CELL_GRADIENT] >= 0:
        rec_out[i, slots[K.R_CELL_GRADIENT], kk] = trk[K.K_LOG_CELL] / _LN10
    if slots[K.R_CELL] >= 0:
        _rows_into(S, H, H, hbuf)
        rec_out[i, slots[K.R_CELL], kk] = norm(hbuf)
    for g in range(3):
        if slots[K.R_GATE + g] >= 0:
            rec_out[i, slots[K.R_GATE + g], kk] = gsum[g] / nh
    if hid_out.shape[1] > 0:
        for l in range(S.shape[0]):
            for u in range(H):
                hid_out[i, kk, l * H + u] = S[l, u]
    if cell_out.shape[1] > 0:
        for l in range(S.shape[0]):
            for u in range(H):
                cell_out[i, kk, l * H + u] = S[l, H + u]


def make_kernel(cell):
    """The kernel of one cell (its module in :mod:`.cells`), compiled on first call.

    Only the module is captured: it pickles by name, so that Numba's cache finds the kernel
    in every new process (a captured function would pickle with a fresh id each time).
    """
    has_cell = bool(cell.HAS_CELL)

    @jit
    def run_block(
        C, Wih, Whh, bih, bhh, P, Rg, gain, S0, amp, keys, xs, XV, rec_out, hid_out, cell_out,
        sums, spec_out, mc_out, flags, probe, lprobe, uloss, rec, slots, iopt, fopt,
    ):  # fmt: skip
        # no reference counts in the loops (see _jit.borrowed): the arguments borrowed
        C, Wih, Whh, bih = borrowed(C), borrowed(Wih), borrowed(Whh), borrowed(bih)
        bhh, P, Rg, gain = borrowed(bhh), borrowed(P), borrowed(Rg), borrowed(gain)
        S0, amp, keys, xs = borrowed(S0), borrowed(amp), borrowed(keys), borrowed(xs)
        XV, rec_out, hid_out = borrowed(XV), borrowed(rec_out), borrowed(hid_out)
        cell_out, sums, spec_out = borrowed(cell_out), borrowed(sums), borrowed(spec_out)
        mc_out, flags, probe = borrowed(mc_out), borrowed(flags), borrowed(probe)
        lprobe, uloss, rec = borrowed(lprobe), borrowed(uloss), borrowed(rec)
        slots, iopt, fopt = borrowed(slots), borrowed(iopt), borrowed(fopt)
        ncase = C.shape[0]
        L, GH, H = Whh.shape[1], Whh.shape[2], Whh.shape[3]
        dt = Whh.dtype
        steps, t_half, kind, resp_on, grad_on, sat_on = K.switches(iopt)
        loss_step = iopt[K.O_LOSS_STEP]
        untied = iopt[K.O_UNTIED] != 0
        act = iopt[K.O_ACTIVATION]
        R = cell.rows(H, flags)
        nh = L * H
        kh = probe.shape[1] if grad_on else 0
        k = 2 * kh if has_cell else kh
        kl = lprobe.shape[1]  # Lyapunov vectors: columns k:kt of the tangents
        lyap_on = kl > 0
        kt = k + kl
        nrec = rec.shape[0]
        S, S2 = np.zeros((L, R), dt), np.zeros((L, R), dt)
        Sb, Sb2 = np.zeros((L, R), dt), np.zeros((L, R), dt)
        T, T2 = np.zeros((L, R, kt), dt), np.zeros((L, R, kt), dt)
        V, rlog, lsum = np.zeros((L * R, kl), dt), np.zeros(kl), np.zeros(kl)
        nd = mc_out.shape[1]  # memory capacity: delays 0 ... nd - 1 of the input
        cap_on = nd > 0
        ring, mcbuf = np.zeros(max(nd, 1)), np.zeros(nd)
        nc = nh if cap_on else 0
        npt = MC.NPARTS
        cM, cS = np.zeros((npt, nc)), np.zeros((npt, nc, nc))
        cP, cU = np.zeros((npt, nc, nd)), np.zeros((npt, 2, nd))
        ccnt, cref = np.zeros(npt), np.zeros(nc + 1)
        window = steps - 1 - t_half  # steps t_half + 1 ... steps - 1, cut into NPARTS parts
        cache = np.zeros((L, cell.CACHE, H))
        ah, ax, gq = np.zeros(GH, dt), np.zeros(GH, dt), np.zeros(3 * H, dt)
        z = np.zeros(GH)
        dAh, dax, dG = np.zeros((GH, kt), dt), np.zeros((GH, kt), dt), np.zeros((3 * H, kt), dt)
        gsum, gsumb = np.zeros(3), np.zeros(3)
        B = np.zeros((nh, kh), dt)
        hbuf, dbuf = np.zeros(nh), np.zeros(nh)
        clog = np.zeros(nh)  # ln prod f(s) per unit: the direct cell path
        car_on = has_cell and slots[K.R_CAROUSEL] >= 0
        trk = np.zeros(K.N_TRK)
        # backpropagation through time, for the loss at loss_step
        bptt = loss_step >= 0
        nb = loss_step + 1 if bptt else 0
        LR = L * R
        kb = LR + GH if bptt else 0
        hist = np.zeros((nb, L, R), dt)
        xhist = np.zeros(nb)
        iwg = np.zeros(nb)
        wg_on = bptt and (slots[K.R_WEIGHT_GRAD] >= 0 or slots[K.R_WEIGHT_GRAD_PR] >= 0)
        lwg, pwg = np.full(nb, np.nan), np.full(nb, np.nan)  # dL/dA of each step's weight
        delta = np.zeros(GH)
        Tb, Tb2 = np.zeros((L, R, kb), dt), np.zeros((L, R, kb), dt)
        injb = np.zeros((GH, kb), dt)
        dAhb, daxb = np.zeros((GH, kb), dt), np.zeros((GH, kb), dt)
        dGb = np.zeros((3 * H, kb), dt)
        lam, lam2 = np.zeros(LR), np.zeros(LR)
        Sjunk = np.zeros((L, R), dt)
        if bptt:
            for l in range(L):
                for r in range(R):
                    Tb[l, r, l * R + r] = 1.0
            for j in range(GH):
                injb[j, LR + j] = 1.0
        no_inj = np.zeros((GH, 0), dt)
        no, yes = np.bool_(False), np.bool_(True)  # not literals: one specialisation each
        zero = 0 * H  # an int64, not a literal 0 (which would compile helpers once more)

        vec = XV.shape[2] > 0  # vector inputs: XV[i, t] = W_ih x(t), xs[i, t] = ||x(t)||
        zrow = np.zeros(XV.shape[2], dt)
        # the work arrays borrowed too, held by ``owners`` to the end of the call
        owners = (S, S2, Sb, Sb2, T, T2, V, rlog, lsum, ring, mcbuf, cM, cS, cP, cU, ccnt, cref,
                  cache, ah, ax, gq, z, dAh, dax, dG, gsum, gsumb, B, hbuf, dbuf, clog, trk, hist,
                  xhist, iwg, lwg, pwg, delta, Tb, Tb2, injb, dAhb, daxb, dGb, lam, lam2, Sjunk,
                  no_inj, zrow)  # fmt: skip
        S, S2, Sb, Sb2, T = borrowed(S), borrowed(S2), borrowed(Sb), borrowed(Sb2), borrowed(T)
        T2, V, rlog, lsum = borrowed(T2), borrowed(V), borrowed(rlog), borrowed(lsum)
        ring, mcbuf, cM, cS = borrowed(ring), borrowed(mcbuf), borrowed(cM), borrowed(cS)
        cP, cU, ccnt, cref = borrowed(cP), borrowed(cU), borrowed(ccnt), borrowed(cref)
        cache, ah, ax, gq = borrowed(cache), borrowed(ah), borrowed(ax), borrowed(gq)
        z, dAh, dax, dG = borrowed(z), borrowed(dAh), borrowed(dax), borrowed(dG)
        gsum, gsumb, B, hbuf = borrowed(gsum), borrowed(gsumb), borrowed(B), borrowed(hbuf)
        dbuf, clog, trk, hist = borrowed(dbuf), borrowed(clog), borrowed(trk), borrowed(hist)
        xhist, iwg, lwg, pwg = borrowed(xhist), borrowed(iwg), borrowed(lwg), borrowed(pwg)
        delta, Tb, Tb2, injb = borrowed(delta), borrowed(Tb), borrowed(Tb2), borrowed(injb)
        dAhb, daxb, dGb, lam = borrowed(dAhb), borrowed(daxb), borrowed(dGb), borrowed(lam)
        lam2, Sjunk, no_inj = borrowed(lam2), borrowed(Sjunk), borrowed(no_inj)
        zrow = borrowed(zrow)

        def layers_step(i, Wc, Bc, x, xrow, Sp, Sn, kk, Tp, Tn, inj, use_inj, dA, dX, dGg, gs):
            """Every layer of one step: Sn (and Tn if kk > 0) from Sp (and Tp); Wc, Bc the
            step's W_hh and b_hh rows (the case's, or the step's for untied nets)."""
            gs[:] = 0.0
            for l in range(L):
                _input_term(l, x, C[i], Wih[i], Sn, H, ax, xrow)
                cell.forward(
                    H, flags, act, gain[i], Wc[l], bih[i, l], Bc[l], P[i, l], Rg[i, l],
                    ax, Sp[l], Sn[l], gs, ah, gq, z, cache[l],
                )  # fmt: skip
                if kk > 0:
                    has_dx = _input_tangent(l, Tn, Wih[i], H, inj, use_inj, dX)
                    cell.tangent(
                        H, flags, gain[i], Wc[l], P[i, l], Rg[i, l], dX, has_dx, Sp[l],
                        Tp[l], Tn[l], dA, dGg, cache[l],
                    )  # fmt: skip

        for i in range(ncase):
            K.reset(trk)
            _copy_state(S0[i], S)
            Sb[:, :] = 0.0
            clog[:] = 0.0
            T[:, :, :] = 0.0
            if grad_on:
                _seed(T, probe, H, np.bool_(has_cell))
            if lyap_on:
                _seed_columns(T, lprobe, k)
                lsum[:] = 0.0
            if cap_on:
                MC.reset(cM, cS, cP, cU, ccnt, cref)
                ring[:] = 0.0
            resp = np.nan
            hn = 0.0
            kk = zero
            for t in range(steps):
                x = input_at(i, t, kind, amp, keys, xs)
                xrow = XV[i, t] if vec else zrow
                Wc = Whh[t] if untied else Whh[i]
                Bc = bhh[t] if untied else bhh[i]
                tang = (grad_on or lyap_on) and t > 0
                layers_step(
                    i, Wc, Bc, x, xrow, S, S2, kt if tang else 0, T, T2, no_inj, no, dAh, dax,
                    dG, gsum,
                )  # fmt: skip
                S, S2 = S2, S
                if car_on and t > 0:  # before the run without the input reuses the cache
                    _carousel(cache, clog, H)
                if tang:
                    T, T2 = T2, T
                    if grad_on:
                        trk[K.K_SCALE_H] += renormalise(T, zero, kh)
                        if has_cell:
                            trk[K.K_SCALE_C] += renormalise(T, kh, k)
                    if lyap_on:
                        orthonormalise(T, k, V, rlog)
                        if t > t_half:
                            lsum += rlog
                if resp_on:
                    xb = 0.0 if t == 0 else x
                    xrb = zrow if t == 0 else xrow
                    layers_step(
                        i, Wc, Bc, xb, xrb, Sb, Sb2, zero, T, T2, no_inj, no, dAh, dax, dG, gsumb
                    )
                    Sb, Sb2 = Sb2, Sb
                    _rows_diff(S, Sb, zero, H, dbuf)
                    resp = norm(dbuf)
                if t < nb:
                    _copy_state(S, hist[t])
                    xhist[t] = x
                _rows_into(S, zero, H, hbuf)
                hn = norm(hbuf)
                if cap_on:
                    ring[t % nd] = x
                    if t > t_half:
                        part = min((t - t_half - 1) * npt // window, npt - 1)
                        MC.accumulate(part, hbuf, ring, t, cM, cS, cP, cU, ccnt, cref)
                change = np.nan
                if sat_on:
                    _rows_diff(S, S2, zero, H, dbuf)
                    change = norm(dbuf)
                    if has_cell:  # the cell must have settled too
                        _rows_diff(S, S2, H, H, dbuf)
                        change = max(change, norm(dbuf))
                K.track(trk, t, resp, change, hn, fopt)
                is_rec = kk < nrec and rec[kk] == t
                if grad_on and (t == t_half or t == steps - 1 or is_rec):
                    trk[K.K_LOG_GRAD] = _block_log_norm(T, zero, zero, H, B, trk[K.K_SCALE_H])
                    if has_cell:
                        trk[K.K_LOG_CELL] = _block_log_norm(T, H, kh, H, B, trk[K.K_SCALE_C])
                if t == t_half:
                    trk[K.K_LOG_GRAD_HALF] = trk[K.K_LOG_GRAD]
                    trk[K.K_LOG_CELL_HALF] = trk[K.K_LOG_CELL]
                    trk[K.K_LOG_RESP_HALF] = np.log(resp)
                if is_rec:
                    _record(
                        i, kk, S, H, trk, resp, hn, gsum, nh, slots, rec_out, hid_out,
                        cell_out, hbuf, clog,
                    )  # fmt: skip
                    kk += 1
                if trk[K.K_BLOWUP] >= 0:
                    break
            trk[K.K_LOG_RESP] = np.log(resp)
            if lyap_on:
                _exponents(spec_out[i], lsum, steps - 1 - t_half, trk[K.K_BLOWUP] < 0)
            if cap_on:
                MC.finish(cM, cS, cP, cU, ccnt, mcbuf)
                for d in range(nd):
                    mc_out[i, d] = mcbuf[d] if trk[K.K_BLOWUP] < 0 else np.nan
            if not has_cell:
                trk[K.K_LOG_CELL] = np.nan
                trk[K.K_LOG_CELL_HALF] = np.nan
            if bptt and trk[K.K_BLOWUP] < 0 and steps > loss_step:
                # the adjoint of L = uloss . h_top(loss_step), back to step 0
                lam[:] = 0.0
                for u in range(H):
                    lam[(L - 1) * R + u] = uloss[u]
                llam = 0.0
                for s in range(loss_step, -1, -1):
                    prev = hist[s - 1] if s > 0 else S0[i]
                    Wc = Whh[s] if untied else Whh[i]
                    Bc = bhh[s] if untied else bhh[i]
                    layers_step(
                        i, Wc, Bc, xhist[s], XV[i, s] if vec else zrow, prev, Sjunk, kb, Tb, Tb2,
                        injb, yes, dAhb, daxb, dGb, gsumb,
                    )  # fmt: skip
                    dn = _adjoint_step(Tb2, lam, lam2, delta, LR, GH)
                    iwg[s] = (np.log(np.sqrt(dn) * abs(xhist[s])) + llam) / _LN10
                    if wg_on:  # layer 0's weight meets h'(layer 0): h(s - 1) of a deep net
                        lwg[s], pwg[s] = _weight_grad(delta, prev[0], H, llam)
                    nl = norm(lam2)
                    if nl > 0.0 and nl < np.inf:
                        for c in range(LR):
                            lam[c] = lam2[c] / nl
                        llam += np.log(nl)
                    else:
                        for c in range(LR):
                            lam[c] = lam2[c]
                _record_backward(rec_out, i, slots[K.R_INPUT_GRAD], rec, loss_step, iwg)
                _record_backward(rec_out, i, slots[K.R_WEIGHT_GRAD], rec, loss_step, lwg)
                _record_backward(rec_out, i, slots[K.R_WEIGHT_GRAD_PR], rec, loss_step, pwg)
            K.finish_case(sums, i, trk, hn, iopt, fopt)
        hold(owners)

    return run_block
