"""The ``mlp`` family: deep feed-forward networks with untied weights, layer index as time.

The lecture's point: everything said of gradients through time holds through depth. With
h(-1) = x and h(t) = f(s W_t h(t-1) + b), the gradient dh(t)/dh(0) is a product of
diag(f'(z)) s W_t; it vanishes when gamma s sigma_max(W_t) < 1 at every layer.
"""

from __future__ import annotations

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from . import _mlp as K
from .activations import get_activation
from .rnn import RnnResult, _as_cases, record_steps
from .weights import INITS, case_rng, impulse_direction

__all__ = ["MLP_SUMMARIES", "mlp_weights", "simulate_mlp"]

#: Per-case summaries of :func:`simulate_mlp`.
MLP_SUMMARIES = (
    "blowup_step",
    "memory_horizon",
    "saturation_step",
    "growth_rate",
    "response_growth_rate",
    "bounded",
    "max_state_norm",
    "fixed_point_norm",
)


def mlp_weights(n: int, depth: int, init: str = "normal", seed: int = 0) -> np.ndarray:
    """Seeded unscaled weights of a deep network: (depth, n, n), layer after layer.

    Parameters
    ----------
    n : int
        Width.
    depth : int
        Number of layers.
    init : {"normal", "uniform", "orthogonal", "pytorch"}
        ``normal``: N(0, 1) entries (scale s gives N(0, s^2)). ``uniform``: U(-1, 1) (scale a
        gives U(-a, a)). ``orthogonal``: Haar-orthogonal (scale = gain). ``pytorch``:
        U(-1/sqrt(n), 1/sqrt(n)) (nn.Linear's default; use scale 1).
    seed : int
        Seed: the same ``(seed, n, depth, init)`` always gives the same stack (common random
        numbers along a swept scale or activation).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)}")
    rng = case_rng(seed, n, f"mlp/{depth}", init)
    if init == "normal":
        return rng.standard_normal((depth, n, n))
    if init == "uniform":
        return rng.uniform(-1.0, 1.0, (depth, n, n))
    if init == "pytorch":
        return rng.uniform(-1.0, 1.0, (depth, n, n)) / np.sqrt(n)
    q, r = np.linalg.qr(rng.standard_normal((depth, n, n)))
    return q * np.where(np.diagonal(r, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]


def simulate_mlp(
    W,
    scale=1.0,
    bias=0.0,
    *,
    activation: str = "tanh",
    amplitude=1.0,
    input_direction=None,
    record: str | np.ndarray = "all",
    num_records: int = 100,
    dtype: str = "float64",
    gradient: str = "auto",
    memory_rtol: float = 1e-3,
    saturation_tol: float | None = None,
    bound: float = 1e6,
    parallel: bool = True,
) -> RnnResult:
    """Run deep feed-forward networks h(t) = f(s W_t h(t-1) + b), h(-1) = a u.

    Parameters
    ----------
    W : array_like
        The weights, (depth, n, n), shared by every case (see :func:`mlp_weights`).
    scale : float or array_like
        s per case (cases,): the weight scale (std of N(0, s^2) for ``init="normal"``).
    bias : float or array_like
        b, broadcastable to (cases, n).
    activation : {"identity", "sigmoid", "tanh", "relu"}
    amplitude : float or array_like
        a per case: the input is x = a u.
    input_direction : array_like, optional
        u (n,) or (cases, n); default the seeded unit vector ``impulse_direction(n, 0)``.
    record : {"all", "log", "none"} or array_like of int
        Which layers the per-layer variables keep.
    dtype : {"float64", "float32"}
    gradient : {"auto", "exact", "none"}
        ``log10_gradient_norm`` = log10 ||dh(t)/dh(0)||_2 (exact, renormalised) or not.
    memory_rtol, saturation_tol, bound :
        As in :func:`rnnlab.engine.simulate_rnn`, with layers for steps.
    parallel : bool
        Use Numba's threads.

    Returns
    -------
    RnnResult
        ``state_norm`` (forward norm by depth), ``response`` (||h(t) - hbar(t)||, hbar from
        input 0), ``log10_gradient_norm`` (by depth), and :data:`MLP_SUMMARIES`.
    """
    act = get_activation(activation)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if gradient not in ("auto", "exact", "none"):
        raise ValueError(f"gradient must be 'auto', 'exact' or 'none', got {gradient!r}")
    fdt = np.dtype(dtype)
    Wa = np.asarray(W, dtype=np.float64)
    if Wa.ndim != 3 or Wa.shape[1] != Wa.shape[2] or Wa.shape[0] < 1:
        raise ValueError(f"W must have shape (depth, n, n), got {Wa.shape}")
    depth, n, _ = Wa.shape
    sc = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    if sc.ndim != 1:
        raise ValueError(f"scale must be a number or (cases,), got shape {sc.shape}")
    ncase = sc.shape[0]
    b = _as_cases(bias, ncase, (n,), "bias", fdt)
    amp = _as_cases(amplitude, ncase, (), "amplitude", np.float64)
    u = impulse_direction(n, 0) if input_direction is None else input_direction
    x0 = (_as_cases(u, ncase, (n,), "input_direction", np.float64) * amp[:, None]).astype(fdt)
    rec = record_steps(depth, record, num_records)
    if saturation_tol is None:
        saturation_tol = 1e-12 if fdt == np.float64 else 1e-5
    nrec = rec.shape[0]
    outs = (np.full((ncase, nrec), np.nan), np.full((ncase, nrec), np.nan),
            np.full((ncase, nrec), np.nan), np.empty(ncase, np.int64),
            np.empty(ncase, np.int64), np.empty(ncase, np.int64), np.empty(ncase),
            np.empty(ncase), np.empty(ncase, np.bool_), np.empty(ncase),
            np.empty(ncase))  # fmt: skip
    args = (act.code, np.ascontiguousarray(Wa, dtype=fdt), sc, b, x0, depth, rec,
            (depth - 1) // 2, float(bound), float(memory_rtol), float(saturation_tol),
            gradient != "none")  # fmt: skip
    nthreads = numba.get_num_threads() if parallel else 1
    with threadpool_limits(1, user_api="blas"):  # small products: one BLAS thread each
        if nthreads > 1 and ncase > 1:
            K.mlp_parallel(*args, *outs, min(ncase, 4 * nthreads))
        else:
            K.mlp_block(*args, *outs)
    o_state, o_resp, o_grad, blow, mem, sat, growth, rgrowth, bounded, final, maxn = outs
    data = {
        "state_norm": o_state.astype(fdt),
        "response": o_resp.astype(fdt),
        "log10_gradient_norm": o_grad,
        "blowup_step": blow,
        "memory_horizon": mem,
        "saturation_step": sat,
        "growth_rate": growth,
        "response_growth_rate": rgrowth,
        "bounded": bounded,
        "max_state_norm": maxn,
        "fixed_point_norm": np.where(sat >= 0, final, np.nan),
    }
    attrs = dict(
        family="mlp",
        activation=act.name,
        n=n,
        depth=depth,
        steps=depth,
        dtype=dtype,
        gradient_method="none" if gradient == "none" else "exact",
        memory_rtol=float(memory_rtol),
        saturation_tol=float(saturation_tol),
        bound=float(bound),
    )
    return RnnResult(time=rec, data=data, attrs=attrs)
