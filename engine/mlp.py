"""The ``mlp`` family: deep feed-forward networks with untied weights, layer index as time.

The lecture's point: everything said of gradients through time holds through depth. With
h(-1) = x and h(t) = f(s W_t h(t-1) + b), the gradient dh(t)/dh(0) is a product of
diag(f'(z)) s W_t; it vanishes when gamma s sigma_max(W_t) < 1 at every layer.

A deep net is the ``rnn`` cell with untied weights: :func:`simulate_mlp` runs the layered
kernel with W_hh = W_t at step t (shared by the cases), the recurrent gain s, no input, and
the state before t = 0 set to x (the run hbar, from which the response is measured, starts
from 0).
"""

from __future__ import annotations

import numpy as np

from . import _tracking as K
from ._numerics import INPUT_IMPULSE
from ._parallel import threads_for
from ._validate import as_cases, check_choice, check_int, check_memory, run_settings
from .activations import get_activation
from .cells import lstm
from .lyapunov import LYAPUNOV_OUTPUTS
from .network import NETWORK_SUMMARIES, OPT_IN, OUTPUT_HINTS, Layers, run_layers
from .results import RnnResult
from .weights import INITS, case_rng, impulse_direction

__all__ = [
    "MLP_SUMMARIES",
    "WEIGHT_GRAD_OUTPUTS",
    "mlp_biases",
    "mlp_outputs",
    "mlp_weights",
    "simulate_mlp",
]

#: Per-case summaries of :func:`simulate_mlp` (those of the layered networks).
MLP_SUMMARIES = NETWORK_SUMMARIES


#: The per-layer variables of the backward pass (the loss at the last layer).
WEIGHT_GRAD_OUTPUTS = ("log10_layer_weight_grad", "layer_weight_grad_participation")


def mlp_outputs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(available, default) outputs of :func:`simulate_mlp` (by layer instead of step)."""
    steps = ("state_norm", "hidden_state", "response", "log10_gradient_norm")
    steps += WEIGHT_GRAD_OUTPUTS
    available = steps + MLP_SUMMARIES + LYAPUNOV_OUTPUTS
    return available, tuple(v for v in available if v not in OPT_IN)


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
    check_memory(2 * 8.0 * depth * n * n, "choose a smaller width n or depth")  # QR's copy
    rng = case_rng(seed, n, f"mlp/{depth}", init)
    if init == "normal":
        return rng.standard_normal((depth, n, n))
    if init == "uniform":
        return rng.uniform(-1.0, 1.0, (depth, n, n))
    if init == "pytorch":
        return rng.uniform(-1.0, 1.0, (depth, n, n)) / np.sqrt(n)
    q, r = np.linalg.qr(rng.standard_normal((depth, n, n)))
    return q * np.where(np.diagonal(r, axis1=1, axis2=2) < 0, -1.0, 1.0)[:, None, :]


def mlp_biases(n: int, depth: int, seed: int) -> np.ndarray:
    """Standard normal draws (depth, n) for a deep net's per-layer random biases (times
    sigma_b), from the seed's own stream: independent of :func:`mlp_weights`' draws and the
    same along a swept sigma_b (common random numbers)."""
    return case_rng(seed, n, f"mlp-bias/{depth}").standard_normal((depth, n))


def simulate_mlp(
    W,
    scale=1.0,
    bias=0.0,
    *,
    layer_biases=None,
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
    outputs=None,
    num_exponents: int = 16,
    parallel: bool | int = True,
) -> RnnResult:
    """Run deep feed-forward networks h(t) = f(s W_t h(t-1) + b + b_t), h(-1) = a u.

    The layer index t = 0 ... depth - 1 is the time axis of every per-layer variable.

    Parameters
    ----------
    W : array_like
        The weights, (depth, n, n), shared by every case (see :func:`mlp_weights`).
    scale : float or array_like
        s per case (cases,): the weight scale (std of N(0, s^2) for ``init="normal"``).
    bias : float or array_like
        b, broadcastable to (cases, n).
    layer_biases : array_like, optional
        (depth, n): b_t added to ``b`` at layer t, shared by every case (mean-field
        theory's random biases: N(0, sigma_b^2) entries drawn per layer and unit).
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
    outputs : None, "all", str or list of str
        The variables to compute (see :func:`mlp_outputs`); default all but ``hidden_state``
        (the state vector at the recorded layers, (cases, depth, n)). Either of the weight
        gradient variables adds a backward pass over the stored layers (about twice the cost
        of the forward Jacobian product: the layer is recomputed with 2 n tangent columns).
    num_exponents : int
        k, the number of Lyapunov exponents in ``lyapunov_exponents`` (default 16; those
        beyond the state's dimension read NaN), when one of :data:`LYAPUNOV_OUTPUTS` is
        asked for (see :mod:`rnnlab.engine.lyapunov`).
    parallel : bool or int
        Run chunks of cases on all CPUs (True), one thread (False) or this many threads.

    Returns
    -------
    RnnResult
        Per layer (cases, recorded layers): ``state_norm`` (forward norm by depth),
        ``response`` (||h(t) - hbar(t)||, hbar from input 0), ``log10_gradient_norm`` (by
        depth), and the gradient of the loss of the last layer, L = u . h(T - 1) with
        u = (1, ..., 1) / sqrt(n) and T = depth, with respect to each layer's weight matrix
        A_t = s W_t (z_t = A_t h(t-1) + b):

        - ``log10_layer_weight_grad``: log10 ||dL/dA_t||_F = log10(||delta_t|| ||h(t-1)||),
          delta_t = dL/dz_t (the gradient is the outer product delta_t h(t-1)^T), by
          backpropagation with the adjoint renormalised every layer: finite far beyond
          1e+-308 (-inf for an exactly zero gradient: a dead relu layer, an underflowed
          state);
        - ``layer_weight_grad_participation``: the participation ratio of its n^2 entries g
          over their number, (sum g^2)^2 / (n^2 sum g^4) = N_eff(delta_t) N_eff(h(t-1)) / n^2
          with N_eff(v) = (sum v^2)^2 / sum v^4: 1 when the gradient is spread evenly over
          every weight, about 1 / n^2 when one weight carries it; NaN for a zero gradient.

        Both are NaN for a case whose forward pass blew up. Then :data:`MLP_SUMMARIES`.
    """
    act = get_activation(activation)
    check_choice("gradient", gradient, ("auto", "exact", "none"))
    Wa = np.asarray(W, dtype=np.float64)
    if Wa.ndim != 3 or Wa.shape[1] != Wa.shape[2] or Wa.shape[0] < 1 or Wa.shape[1] < 1:
        raise ValueError(f"W must have shape (depth, n, n), got {Wa.shape}")
    depth, n, _ = Wa.shape
    settings = run_settings(depth, dtype, record, num_records, memory_rtol, saturation_tol, bound)
    fdt = settings.dtype
    plan = K.plan_outputs(outputs, *mlp_outputs(), hints=OUTPUT_HINTS)
    if gradient == "none":
        plan = plan.without("gradient")
    sc = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    if sc.ndim != 1:
        raise ValueError(f"scale must be a number or (cases,), got shape {sc.shape}")
    ncase = sc.shape[0]
    b = as_cases(bias, ncase, (n,), "bias", fdt)
    amp = as_cases(amplitude, ncase, (), "amplitude", np.float64)
    u = impulse_direction(n, 0) if input_direction is None else input_direction
    x0 = (as_cases(u, ncase, (n,), "input_direction", np.float64) * amp[:, None]).astype(fdt)
    zeros = np.zeros
    net = Layers(
        C=zeros((ncase, n), fdt),
        Wih=zeros((ncase, 0, n, n), fdt),
        Whh=np.ascontiguousarray(Wa, dtype=fdt)[:, None],
        bih=np.ascontiguousarray(b[:, None, :]),
        bhh=_layer_biases(layer_biases, depth, n, fdt),
        P=zeros((ncase, 1, 0, 0), fdt),
        Rg=zeros((ncase, 1, 0, 0), fdt),
        gain=sc,
        S0=np.ascontiguousarray(x0[:, None, :]),
        flags=zeros(lstm.NFLAGS, np.int64),
        untied=True,
    )
    inputs = (INPUT_IMPULSE, zeros((ncase, 0)), zeros(ncase, np.uint64), zeros(ncase))
    loss_step = depth - 1 if plan.needs("bptt") else -1  # the weight gradients' loss
    rec_out, vectors, sums = run_layers(
        "rnn", net, settings, plan, activation=act.code, inputs=inputs, loss_step=loss_step,
        threads=threads_for(parallel), exponents=check_int("num_exponents", num_exponents, 1),
    )  # fmt: skip
    data = K.collect(plan, rec_out, sums, fdt, steps=settings.steps, vectors=vectors)
    attrs = dict(
        family="mlp",
        activation=act.name,
        n=n,
        depth=depth,
        gradient_method="exact" if plan.needs("gradient") else "none",
        outputs=list(plan.names),
        **settings.attrs(),
    )
    return RnnResult(time=settings.rec, data=data, attrs=attrs)


def _layer_biases(value, depth: int, n: int, fdt) -> np.ndarray:
    """The per-layer biases b_t as the untied kernel takes them, (depth, 1, n)."""
    if value is None:
        return np.zeros((depth, 1, n), fdt)
    b = np.asarray(value, dtype=np.float64)
    if b.shape != (depth, n):
        raise ValueError(f"layer_biases must have shape (depth, n) = ({depth}, {n}), got "
                         f"{b.shape}")  # fmt: skip
    return np.ascontiguousarray(b[:, None, :], dtype=fdt)
