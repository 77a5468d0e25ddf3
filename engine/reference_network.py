"""NumPy references for the layered networks (rnn, lstm and its variants, gru, cec),
independent of the kernels.

- :func:`network_reference`: one case, plain NumPy, the equations written out again from
  PyTorch's documentation and Greff et al. (2017). Its step Jacobians are not derived by
  hand: they come from the complex-step method, ``J[:, j] = Im f(s + i h e_j) / h`` with
  h = 1e-30 (exact to rounding for analytic steps, no subtraction, so no cancellation), and
  the norms from ``np.linalg.norm(., 2)`` (an SVD). The kernels propagate hand-written
  forward-mode derivatives and take norms from a Gram matrix, so the two share nothing but
  the equations.
- :func:`lstm_numpy_vectorised`: the fastest NumPy we could write for the LSTM with exact
  gradient norms, vectorised across cases (batched BLAS products); the benchmark baseline.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lstm_numpy_vectorised", "mlp_reference", "network_reference"]

_H_STEP = 1e-30


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _act(name, z):
    if name in ("identity", "linear"):
        return z
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        # the complex step goes through the branch taken by the real part
        return np.where(np.real(z) > 0, z, 0.0 * z)
    raise ValueError(name)


def complex_step(f, n: int) -> np.ndarray:
    """The Jacobian of ``f`` at 0 of its n-vector argument, by the complex step
    ``J[:, j] = Im f(i h e_j) / h``, every column at once (``f`` maps rows of arguments to
    rows of values)."""
    return np.imag(f(1j * _H_STEP * np.eye(n))).T / _H_STEP


def _rows(cell: str, variant: str, H: int) -> int:
    if cell != "lstm":
        return H
    return 5 * H if variant == "FGR" else 2 * H


def _step(cell, layers, activation, variant, peep, s, x, e):
    """One network step on the flat state ``s`` (S,), or on each row of ``s`` (m, S); ``e``
    is added to layer 0's input term."""
    H = layers[0]["weight_hh"].shape[1]
    R = _rows(cell, variant, H)
    out = np.zeros_like(s)
    gates = []
    below = None
    for l, w in enumerate(layers):
        sp = s[..., l * R : (l + 1) * R]
        hp = sp[..., :H]
        xin = (x if l == 0 else below) @ w["weight_ih"].T
        if l == 0:
            xin = xin + e
        gx = xin + w.get("bias_ih", 0.0)
        gh = hp @ w["weight_hh"].T + w.get("bias_hh", 0.0)
        if cell == "rnn":
            h = _act(activation, gx + gh)
            new = h
        elif cell == "cec":
            h = hp + _act(activation, gx)
            new = h
        elif cell == "gru":
            r = _sigmoid(gx[..., :H] + gh[..., :H])
            z = _sigmoid(gx[..., H : 2 * H] + gh[..., H : 2 * H])
            n = np.tanh(gx[..., 2 * H :] + r * gh[..., 2 * H :])
            h = (1 - z) * n + z * hp
            new = h
            gates.append((r, z))
        else:
            cp = sp[..., H : 2 * H]
            a = gx + gh
            zi, zf, zg, zo = (a[..., k * H : (k + 1) * H] for k in range(4))
            if peep:
                p = w["weight_peephole"]
                zi = zi + p[0] * cp
                zf = zf + p[1] * cp
            if variant == "FGR":
                rg = sp[..., 2 * H : 5 * H] @ w["weight_gate"].T
                zi = zi + rg[..., :H]
                zf = zf + rg[..., H : 2 * H]
                zo = zo + rg[..., 2 * H :]
            i = np.ones_like(zi) if variant == "NIG" else _sigmoid(zi)
            if variant == "NFG":
                f = np.ones_like(zf)
            elif variant == "CIFG":
                f = 1 - i
            else:
                f = _sigmoid(zf)
            g = zg if variant == "NIAF" else np.tanh(zg)
            c = f * cp + i * g
            if peep:
                zo = zo + w["weight_peephole"][2] * c
            o = np.ones_like(zo) if variant == "NOG" else _sigmoid(zo)
            h = o * (c if variant == "NOAF" else np.tanh(c))
            parts = [h, c] + ([i, f, o] if variant == "FGR" else [])
            new = np.concatenate(parts, axis=-1)
            gates.append((i, f, o))
        out[..., l * R : (l + 1) * R] = new
        below = h
    return out, gates


def network_reference(
    cell: str,
    layers,
    x: np.ndarray,
    *,
    activation: str = "tanh",
    variant: str = "vanilla",
    u=None,
    loss_step: int | None = None,
    exponents: int | None = None,
) -> dict[str, np.ndarray]:
    """One case of :func:`rnnlab.engine.simulate_network`, every step recorded.

    Parameters
    ----------
    cell, layers, activation, variant :
        As in :func:`simulate_network` (no case axis on the weights).
    x : array_like
        The input signal s(t), shape (steps,).
    u : array_like, optional
        Input direction (unit length); default [1].
    loss_step : int, optional
        Step T of the loss sum(h_top(T)) / sqrt(H) for ``log10_input_weight_grad``.
    exponents : int, optional
        k: the k largest Lyapunov exponents (``lyapunov_exponents``, sorted), by Householder
        QR (``np.linalg.qr``) of the complex-step Jacobians applied to the k vectors after
        every step, from the kernel's starting vectors, averaged over the steps after
        (steps - 1) // 2.

    Returns
    -------
    dict
        ``state_norm``, ``response``, ``log10_gradient_norm``, and as the cell has them
        ``cell_norm``, ``log10_cell_gradient_norm``, ``log10_carousel_gain``, the gate means and
        ``log10_input_weight_grad``, each of shape (steps,).
    """
    layers = [{k: np.asarray(v, dtype=np.float64) for k, v in w.items()} for w in layers]
    if cell == "cec":
        for w in layers:
            w["weight_hh"] = np.zeros_like(w["weight_hh"])
            w["bias_hh"] = np.zeros(w["weight_hh"].shape[0])
    x = np.asarray(x, dtype=np.float64)
    steps = x.shape[0]
    L = len(layers)
    H = layers[0]["weight_hh"].shape[1]
    G = layers[0]["weight_hh"].shape[0] // H
    R = _rows(cell, variant, H)
    S = L * R
    uu = np.ones(1) if u is None else np.asarray(u, dtype=np.float64)
    peep = cell == "lstm" and "weight_peephole" in layers[0] and variant != "NP"
    hrows = np.concatenate([np.arange(l * R, l * R + H) for l in range(L)])
    crows = hrows + H

    def step(s, xt, e):
        return _step(cell, layers, activation, variant, peep, s, xt * uu, e)

    s = np.zeros(S)
    sb = np.zeros(S)
    e0 = np.zeros(G * H)
    M = np.eye(S)
    states, Js, Bs = [], [], []
    out = {k: np.full(steps, np.nan) for k in ("state_norm", "response", "log10_gradient_norm")}
    if cell == "lstm":
        for k in ("cell_norm", "log10_cell_gradient_norm", "log10_carousel_gain"):
            out[k] = np.full(steps, np.nan)
    ln_f = np.zeros(L * H)  # the carousel: sum over s = 1..t of ln f(s), per unit
    gnames = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}.get(cell, ())
    for g in gnames:
        out[f"{g}_gate_mean"] = np.full(steps, np.nan)
    for t in range(steps):
        prev = s
        s, gates = step(prev, x[t], e0)
        sb, _ = step(sb, 0.0 if t == 0 else x[t], e0)
        rows = np.broadcast_to(prev, (G * H, S)) + 0j  # one copy per input-term direction
        J = complex_step(lambda d, p=prev, xt=x[t]: step(p + d, xt, e0)[0], S)
        B = complex_step(lambda d, p=rows, xt=x[t]: step(p, xt, d)[0], G * H)
        Js.append(J)
        Bs.append(B)
        states.append(s)
        if t > 0:
            M = J @ M
        out["state_norm"][t] = np.linalg.norm(s[hrows])
        out["response"][t] = np.linalg.norm(s[hrows] - sb[hrows])
        out["log10_gradient_norm"][t] = np.log10(np.linalg.norm(M[np.ix_(hrows, hrows)], 2))
        if cell == "lstm":
            out["cell_norm"][t] = np.linalg.norm(s[crows])
            cc = M[np.ix_(crows, crows)]
            out["log10_cell_gradient_norm"][t] = np.log10(np.linalg.norm(cc, 2))
            if t > 0:
                ln_f += np.log(np.concatenate([gs[1] for gs in gates]))
            out["log10_carousel_gain"][t] = ln_f.max() / np.log(10)
        for gi, g in enumerate(gnames):
            out[f"{g}_gate_mean"][t] = np.mean(np.concatenate([gs[gi] for gs in gates]))
    if loss_step is not None:
        lam = np.zeros(S)
        lam[(L - 1) * R : (L - 1) * R + H] = 1.0 / np.sqrt(H)
        iwg = np.full(steps, np.nan)
        for k in range(loss_step, -1, -1):
            delta = Bs[k].T @ lam
            iwg[k] = np.log10(np.linalg.norm(np.outer(delta, x[k] * uu)))
            lam = Js[k].T @ lam
        out["log10_input_weight_grad"] = iwg
    if exponents is not None:
        out["lyapunov_exponents"] = _spectrum(Js, exponents)
    return out


def _spectrum(Js, k: int) -> np.ndarray:
    """The k largest Lyapunov exponents of the step Jacobians Js[1:], sorted."""
    from .lyapunov import starting_vectors  # the initial frame only

    steps = len(Js)
    half = (steps - 1) // 2
    Q = starting_vectors(Js[0].shape[0], k)
    total = np.zeros(k)
    for t in range(1, steps):
        Q, R = np.linalg.qr(Js[t] @ Q)
        if t > half:
            with np.errstate(divide="ignore"):  # an exactly collapsed direction: -inf
                total += np.log(np.abs(np.diag(R)))
    return np.sort(total / (steps - 1 - half))[::-1]


def mlp_reference(W, scale: float, bias, x, activation: str = "tanh") -> dict[str, np.ndarray]:
    """One deep feed-forward network h(t) = f(s W_t h(t-1) + b), h(-1) = x, every layer.

    Layer Jacobians by the complex step, products and SVD norms in plain NumPy. The weight
    gradients of the loss L = u . h(T-1) (u = ones / sqrt(n), T the depth): backwards,
    lambda(T-1) = u, delta_t = dL/dz_t = Im f(z_t + i h) / h * lambda(t) (the complex step of
    f), g_t = outer(delta_t, h(t-1)) = dL/dA_t, lambda(t-1) = J_t^T lambda(t); nothing is
    renormalised (short nets only).
    """
    W = np.asarray(W, dtype=np.float64)
    depth, n, _ = W.shape
    b = np.broadcast_to(np.asarray(bias, dtype=np.float64), (n,))
    h = np.asarray(x, dtype=np.float64)
    hb = np.zeros(n)
    M = np.eye(n)
    out = {k: np.empty(depth) for k in ("state_norm", "response", "log10_gradient_norm")}
    inputs, slopes, Js = [], [], []
    for t in range(depth):
        J = np.imag(_act(activation, scale * W[t] @ (h[:, None] + 1j * _H_STEP * np.eye(n)) +
                         b[:, None])) / _H_STEP  # fmt: skip
        z = scale * W[t] @ h + b
        inputs.append(h)
        slopes.append(np.imag(_act(activation, z + 1j * _H_STEP)) / _H_STEP)  # f'(z)
        Js.append(J)
        h = _act(activation, z)
        hb = _act(activation, scale * W[t] @ hb + b)
        if t > 0:
            M = J @ M
        out["state_norm"][t] = np.linalg.norm(h)
        out["response"][t] = np.linalg.norm(h - hb)
        out["log10_gradient_norm"][t] = np.log10(np.linalg.norm(M, 2))
    lam = np.full(n, 1.0 / np.sqrt(n))
    lwg, pwg = np.empty(depth), np.empty(depth)
    for t in range(depth - 1, -1, -1):
        g = np.outer(slopes[t] * lam, inputs[t])
        lwg[t] = np.log10(np.linalg.norm(g))
        pwg[t] = np.sum(g**2) ** 2 / (g.size * np.sum(g**4))
        lam = Js[t].T @ lam
    out["log10_layer_weight_grad"] = lwg
    out["layer_weight_grad_participation"] = pwg
    return out


def lstm_numpy_vectorised(
    weight_ih, weight_hh, bias, steps: int, rec: np.ndarray, amplitude: float = 1.0
) -> dict[str, np.ndarray]:
    """Single-layer LSTMs (no peepholes), vectorised across cases: the benchmark baseline.

    The same computation as the engine with an impulse input: the run h and the run hbar
    without the input at t = 0, and the exact Jacobian product ds(t)/ds(0) (s = (h, c),
    2H x 2H per case, with the h-columns and the c-columns renormalised separately), its
    hh and cc blocks' spectral norms at the recorded steps.

    Parameters
    ----------
    weight_ih : (cases, 4H) array
        The layer's input weights times the input direction (I = 1).
    weight_hh : (cases, 4H, H) array
    bias : (cases, 4H) array
        b_ih + b_hh.
    steps : int
    rec : array of int
        Recorded steps (increasing).

    Returns
    -------
    dict
        ``state_norm``, ``response``, ``log10_gradient_norm``, ``log10_cell_gradient_norm``,
        each (cases, len(rec)).
    """
    B, _, H = weight_hh.shape
    WhT = np.ascontiguousarray(np.swapaxes(weight_hh, 1, 2))  # (B, H, 4H)
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    hb = np.zeros((B, H))
    cb = np.zeros((B, H))
    Mh = np.zeros((B, H, 2 * H))  # rows: dh, columns: (h0, c0)
    Mc = np.zeros((B, H, 2 * H))
    Mh[:, :, :H] = np.eye(H)
    Mc[:, :, H:] = np.eye(H)
    lsh = np.zeros(B)
    lsc = np.zeros(B)
    rec = np.asarray(rec)
    names = ("state_norm", "response", "log10_gradient_norm", "log10_cell_gradient_norm")
    out = {k: np.full((B, rec.size), np.nan) for k in names}
    j = 0
    for t in range(steps):
        x = amplitude if t == 0 else 0.0
        states = []
        for hh, cc, xx in ((h, c, x), (hb, cb, 0.0)):
            a = np.matmul(hh[:, None, :], WhT)[:, 0] + weight_ih * xx + bias
            i = 1 / (1 + np.exp(-a[:, :H]))
            f = 1 / (1 + np.exp(-a[:, H : 2 * H]))
            g = np.tanh(a[:, 2 * H : 3 * H])
            o = 1 / (1 + np.exp(-a[:, 3 * H :]))
            cn = f * cc + i * g
            tc = np.tanh(cn)
            states.append((o * tc, cn, i, f, g, o, tc, cc))
        hn, cn, i, f, g, o, tc, cp = states[0]
        if t > 0:
            dA = np.matmul(weight_hh, Mh)  # (B, 4H, 2H)
            di = (i * (1 - i))[:, :, None] * dA[:, :H]
            df = (f * (1 - f))[:, :, None] * dA[:, H : 2 * H]
            dg = (1 - g * g)[:, :, None] * dA[:, 2 * H : 3 * H]
            do = (o * (1 - o))[:, :, None] * dA[:, 3 * H :]
            dc = df * cp[:, :, None] + f[:, :, None] * Mc + di * g[:, :, None] + i[:, :, None] * dg
            Mh = do * tc[:, :, None] + (o * (1 - tc * tc))[:, :, None] * dc
            Mc = dc
            for lo, hi, ls in ((0, H, lsh), (H, 2 * H, lsc)):
                sq = (Mh[:, :, lo:hi] ** 2).sum((1, 2)) + (Mc[:, :, lo:hi] ** 2).sum((1, 2))
                fro = np.sqrt(sq)
                Mh[:, :, lo:hi] /= fro[:, None, None]
                Mc[:, :, lo:hi] /= fro[:, None, None]
                ls += np.log(fro)
        h, c = hn, cn
        hb, cb = states[1][0], states[1][1]
        if j < rec.size and rec[j] == t:
            out["state_norm"][:, j] = np.linalg.norm(h, axis=1)
            out["response"][:, j] = np.linalg.norm(h - hb, axis=1)
            sh = np.linalg.norm(Mh[:, :, :H], ord=2, axis=(1, 2))
            sc = np.linalg.norm(Mc[:, :, H:], ord=2, axis=(1, 2))
            out["log10_gradient_norm"][:, j] = (lsh + np.log(sh)) / np.log(10)
            out["log10_cell_gradient_norm"][:, j] = (lsc + np.log(sc)) / np.log(10)
            j += 1
    return out
