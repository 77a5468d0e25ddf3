"""NumPy implementations of the ``rnn`` family, independent of the kernels.

- :func:`rnn_reference`: slow and plain, one case at a time, full trajectories, explicit
  Jacobian products and ``np.linalg.norm(., 2)``; the summaries are computed afterwards from
  the stored trajectories. The tests compare the kernels against it.
- :func:`rnn_numpy_vectorised`: the fastest NumPy we could write for the same computation
  (vectorised across cases, summaries only or recorded steps); the benchmarks compare the
  kernels against it and print the ratio.

Neither shares code with the kernels, except the activation table's NumPy functions
(``np.tanh``, ``scipy.special.expit``, ...), which are themselves independent of the engine's
polynomial exp.
"""

from __future__ import annotations

import numpy as np

from .activations import get_activation

__all__ = [
    "input_sequence",
    "linear_memory_capacity",
    "noise_uniform",
    "rnn_numpy_vectorised",
    "rnn_reference",
]

_M64 = (1 << 64) - 1


def noise_uniform(key: int, t: np.ndarray) -> np.ndarray:
    """splitmix64 uniforms in [0, 1), with Python integers (exact 64-bit arithmetic)."""
    out = np.empty(len(t))
    for i, ti in enumerate(np.asarray(t, dtype=np.int64)):
        z = (int(key) + (int(ti) + 1) * 0x9E3779B97F4A7C15) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z = z ^ (z >> 31)
        out[i] = (z >> 11) * 2.0**-53
    return out


def input_sequence(kind: str, steps: int, amplitude: float = 1.0, key: int = 0) -> np.ndarray:
    """x(t), t = 0 ... steps - 1, for one case: ``"impulse"``, ``"step"`` or ``"noise"``."""
    if kind == "impulse":
        x = np.zeros(steps)
        x[0] = amplitude
        return x
    if kind == "step":
        return np.full(steps, float(amplitude))
    if kind == "noise":
        return amplitude * (2.0 * noise_uniform(key, np.arange(steps)) - 1.0)
    raise ValueError(f"unknown input kind {kind!r}")


def _derivative(name: str, z: np.ndarray) -> np.ndarray:
    """f'(z) from closed forms written with NumPy's own functions."""
    if name == "identity":
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "tanh":
        return 1.0 / np.cosh(z) ** 2
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return e / (1.0 + e) ** 2
    raise ValueError(name)


def _row_norms(a: np.ndarray) -> np.ndarray:
    """The norm of each row, scaled by its largest entry first: a row's squares overflow
    from 1e154 (``np.linalg.norm``'s plain sum of squares would read inf there)."""
    with np.errstate(all="ignore"):
        big = np.abs(a).max(axis=1)
        scale = np.where((big > 0) & np.isfinite(big), big, 1.0)
        return np.where(np.isfinite(big), scale * np.sqrt(((a / scale[:, None]) ** 2).sum(axis=1)),
                        big)  # fmt: skip


def rnn_reference(
    W: np.ndarray,
    C: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    activation: str,
    dtype: str = "float64",
    memory_rtol: float = 1e-3,
    saturation_tol: float = 1e-12,
    bound: float = 1e6,
) -> dict[str, np.ndarray]:
    """One case of h(t) = f(W h(t-1) + C x(t) + b), every step, in plain NumPy.

    Parameters
    ----------
    W : (n, n) array; C, b : (n,) arrays; x : (steps,) array.

    Returns
    -------
    dict
        ``h`` and ``hbar`` (steps, n), ``state_norm``, ``response``,
        ``log10_gradient_norm`` (steps,), and the summaries ``blowup_step``,
        ``memory_horizon``, ``saturation_step``, ``growth_rate``, ``response_growth_rate``,
        ``bounded``, ``max_state_norm``, ``final``.
    """
    act = get_activation(activation)
    fdt = np.dtype(dtype)
    W = np.asarray(W, fdt)
    C = np.asarray(C, fdt)
    b = np.asarray(b, fdt)
    n = W.shape[0]
    steps = len(x)
    h = np.zeros((steps, n), fdt)
    hb = np.zeros((steps, n), fdt)
    lg = np.zeros(steps)
    prev = np.zeros(n, fdt)
    prevb = np.zeros(n, fdt)
    M = np.eye(n)
    log_scale = 0.0  # M is kept at a largest entry of 1: W^t itself overflows with h
    with np.errstate(all="ignore"):
        for t in range(steps):
            xb = 0.0 if t == 0 else x[t]
            z = W @ prev + C * fdt.type(x[t]) + b
            zb = W @ prevb + C * fdt.type(xb) + b
            h[t] = act.numpy(z.astype(np.float64)).astype(fdt)
            hb[t] = act.numpy(zb.astype(np.float64)).astype(fdt)
            if t > 0:
                J = _derivative(act.name, z.astype(np.float64))[:, None] * W.astype(np.float64)
                M = J @ M
                big = np.abs(M).max()
                if 0.0 < big < np.inf:
                    M = M / big
                    log_scale += np.log10(big)
            lg[t] = np.log10(np.linalg.norm(M, 2)) + log_scale if np.isfinite(M).all() else np.nan
            prev, prevb = h[t], hb[t]
        norm = _row_norms(h.astype(np.float64))
        resp = _row_norms(h.astype(np.float64) - hb)
    out = {"h": h, "hbar": hb, "state_norm": norm, "response": resp, "log10_gradient_norm": lg}
    bad = np.flatnonzero(~np.isfinite(norm))
    blow = int(bad[0]) if bad.size else -1
    out["blowup_step"] = blow
    last = steps - 1
    half = last // 2
    if blow >= 0:
        out.update(memory_horizon=-1, saturation_step=-1, growth_rate=np.nan,
                   response_growth_rate=np.nan, bounded=False)  # fmt: skip
        return out
    above = np.flatnonzero(resp > memory_rtol * resp[0])
    if resp[0] == 0:
        out["memory_horizon"] = 0
    else:
        out["memory_horizon"] = -1 if above[-1] == last else int(above[-1]) + 1
    diffs = np.linalg.norm(np.diff(np.vstack([np.zeros(n), h.astype(np.float64)]), axis=0), axis=1)
    moving = np.flatnonzero(diffs > saturation_tol * np.maximum(1.0, norm))
    last_move = int(moving[-1]) if moving.size else -1
    out["saturation_step"] = -1 if last_move == last else last_move + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        ln10 = np.log(10.0)
        span = last - half
        out["growth_rate"] = (lg[last] - lg[half]) * ln10 / span if span else np.nan
        out["response_growth_rate"] = (
            (np.log(resp[last]) - np.log(resp[half])) / span if span else np.nan
        )
    out["bounded"] = bool(norm.max() <= bound)
    out["max_state_norm"] = float(norm.max())
    out["final"] = h[last].astype(np.float64)
    return out


def rnn_numpy_vectorised(
    W: np.ndarray,
    C: np.ndarray,
    b: np.ndarray,
    activation: str,
    steps: int,
    amplitude: float | np.ndarray = 1.0,
    record: np.ndarray | None = None,
    gradient: bool = True,
    memory_rtol: float = 1e-3,
    saturation_tol: float = 1e-12,
) -> dict[str, np.ndarray]:
    """The same computation as the kernels for an impulse input, vectorised across cases.

    This is the NumPy baseline of the benchmarks: per step, a handful of whole-array
    operations over all cases, with the summaries tracked the same way as the kernels
    (response, the product of w f'(z) renormalised exactly by ``np.frexp`` every step when
    n = 1 and the Jacobian product with Frobenius renormalisation when n > 1, memory,
    saturation, blow-up).

    Parameters
    ----------
    W : (cases,) for n = 1 or (cases, n, n)
    C, b : (cases,) or (cases, n)
    record : steps to record (default: none, summaries only)

    Returns
    -------
    dict
        ``state_norm``, ``response``, ``log10_gradient_norm`` at the recorded steps
        (cases, nrec), and ``growth_rate``, ``memory_horizon``, ``saturation_step``,
        ``blowup_step``, ``final_norm`` (cases,).
    """
    act = get_activation(activation)
    f = act.numpy
    scalar = np.ndim(W) == 1
    ncase = W.shape[0]
    record = np.zeros(0, np.int64) if record is None else np.asarray(record)
    nrec = len(record)
    rec_norm = np.full((ncase, nrec), np.nan)
    rec_resp = np.full((ncase, nrec), np.nan)
    rec_grad = np.full((ncase, nrec), np.nan)
    amp = np.broadcast_to(np.asarray(amplitude, float), (ncase,))
    last = steps - 1
    half = last // 2
    if scalar:
        h = np.zeros(ncase)
        hb = np.zeros(ncase)
        g = np.ones(ncase)  # gradient mantissa, renormalised by frexp every step (exact)
        ge = np.zeros(ncase)  # and its base-2 exponent
    else:
        n = W.shape[1]
        h = np.zeros((ncase, n))
        hb = np.zeros((ncase, n))
        M = np.broadcast_to(np.eye(n), (ncase, n, n)).copy()
        lscale = np.zeros(ncase)
    r0 = None
    last_mem = np.full(ncase, -1)
    last_change = np.full(ncase, -1)
    blow = np.full(ncase, -1)
    lg_half = lg_end = None
    k = 0
    with np.errstate(all="ignore"):
        for t in range(steps):
            xa = amp if t == 0 else 0.0
            if scalar:
                z = W * h + C * xa + b
                hn_new = f(z)
                hb = f(W * hb + b)
                if t > 0:
                    g, e = np.frexp(g * (W * _derivative(act.name, z)))
                    ge += e
                change = np.abs(hn_new - h)
                h = hn_new
                norm = np.abs(h)
                resp = np.abs(h - hb)
                lg = None
                if t in (half, last) or (k < nrec and record[k] == t):
                    lg = (np.log2(np.abs(g)) + ge) * np.log10(2.0)
            else:
                z = (
                    np.einsum("cij,cj->ci", W, h) + C * xa[:, None] + b
                    if t == 0
                    else (np.einsum("cij,cj->ci", W, h) + b)
                )
                hn_new = f(z)
                hb = f(np.einsum("cij,cj->ci", W, hb) + b)
                if gradient and t > 0:
                    M = _derivative(act.name, z)[:, :, None] * np.matmul(W, M)
                    fro = np.sqrt(np.einsum("cij,cij->c", M, M))
                    M /= fro[:, None, None]
                    lscale += np.log(fro)
                change = np.linalg.norm(hn_new - h, axis=1)
                h = hn_new
                norm = np.linalg.norm(h, axis=1)
                resp = np.linalg.norm(h - hb, axis=1)
                lg = None
                if gradient and (t in (half, last) or (k < nrec and record[k] == t)):
                    lg = (lscale + np.log(np.linalg.norm(M, 2, axis=(1, 2)))) / np.log(10.0)
            if t == 0:
                r0 = resp.copy()
            last_mem = np.where(resp > memory_rtol * r0, t, last_mem)
            last_change = np.where(change > saturation_tol * np.maximum(1.0, norm), t, last_change)
            blow = np.where((blow < 0) & ~np.isfinite(norm), t, blow)
            if t == half:
                lg_half = lg
            if t == last:
                lg_end = lg
            if k < nrec and record[k] == t:
                rec_norm[:, k] = norm
                rec_resp[:, k] = resp
                if lg is not None:
                    rec_grad[:, k] = lg
                k += 1
    span = last - half
    growth = (lg_end - lg_half) * np.log(10.0) / span if (span and lg_end is not None) else None
    return {
        "state_norm": rec_norm,
        "response": rec_resp,
        "log10_gradient_norm": rec_grad,
        "growth_rate": growth,
        "memory_horizon": np.where(last_mem < last, last_mem + 1, -1),
        "saturation_step": np.where(last_change < last, last_change + 1, -1),
        "blowup_step": blow,
        "final_norm": norm,
    }


def linear_memory_capacity(W, C, delays: int, tail: float = 1e-300) -> np.ndarray:
    """Each delay's memory capacity of h(t) = W h(t-1) + C u(t) under i.i.d. input, exactly:
    h(t) = K u with K = [C, W C, W^2 C, ...] and u = (u(t), u(t-1), ...), so the best linear
    readout of u(t-k) has r^2 = e_k^T K^T (K K^T)^-1 K e_k, the leverage of row k of K^T:
    ||Q[k]||^2 for K^T = Q R (Householder QR; no Gram matrix, whose conditioning would lose
    the small directions). K is carried out until its columns fall below ``tail``; the
    capacities of every delay sum to the rank of the Krylov matrix (Jaeger 2001), n for a
    reachable input (directions of K below 1e-13 of its largest are dropped: float64
    cannot tell them apart, so for a small spectral radius the sum is below n: 14 of 50 at
    rho = 0.1). For k = 0 ... delays - 1; spectral radius below 1 only."""
    W = np.asarray(W, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64).ravel()
    if not np.abs(np.linalg.eigvals(W)).max() < 1:
        raise ValueError("linear_memory_capacity: W must have spectral radius below 1")
    cols, v = [], C / np.linalg.norm(C)
    while len(cols) < max(delays, W.shape[0]) or (np.linalg.norm(v) > tail and len(cols) < 10**5):
        cols.append(v)
        v = W @ v
    q, r = np.linalg.qr(np.array(cols))  # (M, n): row k is (W^k C)^T
    keep = np.abs(np.diag(r)) > 1e-13 * np.abs(np.diag(r)).max()  # float64's resolution
    return np.sum(q[:delays, keep] ** 2, axis=1)
