"""The ``rnn`` model family: h(t) = f(W h(t-1) + C x(t) + b), h(-1) = 0.

The public entry point is :func:`simulate_rnn`, which runs a batch of cases from explicit
arrays and returns an :class:`RnnResult` of NumPy arrays keyed by the store schema's names.
It validates and allocates; the arithmetic is in :mod:`rnnlab.engine._kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from . import _kernels as K
from .activations import get_activation
from .weights import case_rng, impulse_direction, remove_dominant_component

__all__ = [
    "INPUT_KINDS",
    "PER_STEP_VARIABLES",
    "SUMMARY_VARIABLES",
    "RnnResult",
    "noise_keys",
    "record_steps",
    "simulate_rnn",
]

INPUT_KINDS = {"impulse": K.INPUT_IMPULSE, "step": K.INPUT_STEP, "noise": K.INPUT_NOISE}

#: Per-step variables, dims (case, time). ``state`` only for n = 1.
PER_STEP_VARIABLES = ("state", "state_norm", "response", "log10_gradient_norm")
#: Per-case summaries, dims (case,). ``fixed_point`` only for n = 1.
SUMMARY_VARIABLES = (
    "blowup_step",
    "memory_horizon",
    "saturation_step",
    "growth_rate",
    "response_growth_rate",
    "bounded",
    "max_state_norm",
    "fixed_point",
    "fixed_point_norm",
    "spectral_radius",
    "max_singular_value",
    "second_eigenvalue_modulus",
)


@dataclass
class RnnResult:
    """The outputs of one batch of cases.

    Attributes
    ----------
    time : numpy.ndarray
        int64 (ntime,): the recorded steps (empty when only summaries were asked for).
    data : dict of str to numpy.ndarray
        Per-step variables of shape (cases, ntime) and per-case summaries of shape (cases,),
        keyed by the names of the store schema (see ``PER_STEP_VARIABLES`` and
        ``SUMMARY_VARIABLES``).
    attrs : dict
        The run's settings (activation, steps, n, dtype, input, tolerances, gradient method).

    Examples
    --------
    >>> res = simulate_rnn([0.5, 1.0], activation="identity", steps=10, record="all")
    >>> res["state"].shape
    (2, 10)
    >>> float(res["state"][0, 3])  # w**t c x(0)
    0.125
    """

    time: np.ndarray
    data: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.data[name]
        except KeyError:
            raise KeyError(f"no variable {name!r}; have {', '.join(self.data)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def keys(self):
        """Names of the variables."""
        return self.data.keys()

    @property
    def ncases(self) -> int:
        """Number of cases."""
        return int(self.data["blowup_step"].shape[0])


def record_steps(steps: int, record: str | np.ndarray = "log", num: int = 100) -> np.ndarray:
    """The steps at which per-step variables are recorded.

    Parameters
    ----------
    steps : int
        Number of simulated steps (t = 0 ... steps - 1).
    record : {"all", "log", "none"} or array of int
        ``"all"``: every step. ``"log"``: about ``num`` log-spaced steps, always including 0 and
        the last step. ``"none"``: nothing (summaries only). An array: those steps.
    num : int
        Number of log-spaced records (the result can be smaller: duplicates are dropped).

    Returns
    -------
    numpy.ndarray
        Strictly increasing int64 steps in [0, steps).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if isinstance(record, str):
        if record == "all":
            return np.arange(steps, dtype=np.int64)
        if record == "none":
            return np.zeros(0, dtype=np.int64)
        if record == "log":
            if num < 2:
                raise ValueError(f"num_records must be >= 2 for log-spaced recording, got {num}")
            if steps == 1:
                return np.zeros(1, dtype=np.int64)
            pts = np.geomspace(1, steps - 1, num - 1)
            return np.unique(np.concatenate([[0], np.rint(pts).astype(np.int64), [steps - 1]]))
        raise ValueError(
            f"record must be 'all', 'log', 'none' or an array of steps, got {record!r}"
        )
    rec = np.asarray(record, dtype=np.int64).ravel()
    if rec.size and (rec.min() < 0 or rec.max() >= steps):
        raise ValueError(f"record steps must lie in [0, {steps - 1}]")
    return np.unique(rec)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def noise_keys(seeds, n: int = 1) -> np.ndarray:
    """The noise keys of cases with the given seeds (uint64).

    Cases with the same ``(seed, n)`` get the same noise sequence (common random numbers).
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    if np.any(seeds < 0):
        raise ValueError("noise seeds must be >= 0")
    uniq, inv = np.unique(seeds, return_inverse=True)
    keys = np.array(
        [case_rng(int(s), n, "noise").integers(0, 2**63, dtype=np.int64) for s in uniq],
        dtype=np.int64,
    ).astype(np.uint64)
    return keys[inv].reshape(seeds.shape)


def _as_cases(x, ncase: int, trailing: tuple[int, ...], name: str, dtype) -> np.ndarray:
    """Broadcast ``x`` to (ncase, *trailing), contiguous, with a clear error."""
    arr = np.asarray(x, dtype=dtype)
    try:
        out = np.broadcast_to(arr, (ncase, *trailing))
    except ValueError:
        want = (ncase, *trailing)
        raise ValueError(
            f"{name} has shape {arr.shape}; it must broadcast to {want} (cases, ...)"
        ) from None
    return np.ascontiguousarray(out)


def input_arrays(input, ncase: int, steps: int, noise_seed, n: int):
    """The kernels' input arguments: (kind code, xs, noise keys, input name).

    ``input`` is a kind name (:data:`INPUT_KINDS`) or an array broadcastable to
    (cases, steps); noise keys depend on ``(noise_seed, n)`` (see :func:`noise_keys`).
    """
    if isinstance(input, str):
        if input not in INPUT_KINDS:
            raise ValueError(
                f"input must be one of {', '.join(INPUT_KINDS)} or an array, got {input!r}"
            )
        kind = INPUT_KINDS[input]
        xs = np.zeros((ncase, 0), dtype=np.float64)
        name = input
    else:
        kind = K.INPUT_ARRAY
        xs = _as_cases(input, ncase, (steps,), "input", np.float64)
        name = "array"
    keys = (
        noise_keys(np.broadcast_to(np.asarray(noise_seed), (ncase,)), n)
        if kind == K.INPUT_NOISE
        else np.zeros(ncase, dtype=np.uint64)
    )
    return kind, xs, keys, name


def simulate_rnn(
    W,
    C=None,
    b=None,
    *,
    activation: str = "tanh",
    steps: int = 1000,
    input: str | np.ndarray = "impulse",
    amplitude=1.0,
    noise_seed=0,
    remove_dominant: bool = False,
    record: str | np.ndarray = "log",
    num_records: int = 100,
    dtype: str = "float64",
    gradient: str = "auto",
    gradient_probes: int = 16,
    exact_gradient_max_n: int = 128,
    memory_rtol: float = 1e-3,
    saturation_tol: float | None = None,
    bound: float = 1e6,
    weight_norms: bool = True,
    parallel: bool = True,
) -> RnnResult:
    """Run a batch of recursions h(t) = f(W h(t-1) + C x(t) + b) from explicit arrays.

    Parameters
    ----------
    W : array_like
        Recurrent weights. Scalar recursions: a number or shape (cases,). Vector recursions:
        shape (n, n) for one case or (cases, n, n).
    C : array_like, optional
        Input weights of the scalar input x(t): a number or (cases,) for n = 1 (default 1),
        (n,) or (cases, n) for n > 1 (default: the seeded unit vector
        ``impulse_direction(n, seed=0)`` for every case).
    b : array_like, optional
        Bias: broadcastable to (cases,) or (cases, n). Default 0.
    activation : {"identity", "sigmoid", "tanh", "relu"}
        ``"linear"`` is an alias of ``"identity"``.
    steps : int
        Number of steps simulated, t = 0 ... steps - 1.
    input : {"impulse", "step", "noise"} or array_like
        ``"impulse"``: x(0) = amplitude, 0 after. ``"step"``: x(t) = amplitude for all t.
        ``"noise"``: x(t) i.i.d. uniform in [-amplitude, amplitude] (bounded, for BIBO).
        An array of shape (steps,) or (cases, steps): the input itself.
    amplitude : float or array_like
        The input amplitude a, per case if an array (cases,). Negative values are allowed.
    noise_seed : int or array_like of int
        Seed(s) of the noise input: cases with the same seed share the same noise sequence.
    remove_dominant : bool
        n > 1: remove from each case's input direction C its component along the dominant
        eigenvector(s) of its W (see :func:`rnnlab.engine.remove_dominant_component`), so that
        the response grows like ``|lambda_2|^t`` instead of ``|lambda_1|^t``.
    record : {"all", "log", "none"} or array_like of int
        Which steps the per-step variables keep (see :func:`record_steps`). Log-spaced and
        summaries-only runs allocate nothing per step, whatever ``steps`` is.
    num_records : int
        Number of log-spaced records.
    dtype : {"float64", "float32"}
        Precision of the state and of the weights. The activations are evaluated in float64
        and rounded to ``dtype``; the Jacobian product is kept in ``dtype`` for n > 1.
    gradient : {"auto", "exact", "estimate", "none"}
        How ``log10_gradient_norm = log10 ||dh(t)/dh(0)||_2`` is computed for n > 1.
        ``"exact"``: the full Jacobian product J_t ... J_1 (n x n, renormalised every step),
        its spectral norm from the Gram matrix's top eigenvalue. ``"estimate"``: the product
        applied to ``gradient_probes`` fixed random orthonormal vectors; a lower bound on the
        norm that converges to the exact growth rate (late times) but sits below it by about
        sqrt(probes / n) in level. ``"auto"``: exact for n <= ``exact_gradient_max_n``.
        ``"none"``: not computed (NaN). For n = 1 the gradient is always exact.
    gradient_probes : int
        Number of probe vectors for ``"estimate"``.
    exact_gradient_max_n : int
        Largest n for which ``"auto"`` is exact.
    memory_rtol : float
        ``memory_horizon`` is the first step after which the response stays below
        ``memory_rtol * response(0)`` up to the end of the run (-1 if it never does).
    saturation_tol : float, optional
        ``saturation_step`` is the first step after which ``||h(t) - h(t-1)|| <=
        saturation_tol * max(1, ||h(t)||)`` for every later step (-1 if never). Default:
        1e-12 for float64, 1e-5 for float32.
    bound : float
        ``bounded`` is True when the state stayed finite and ``||h(t)|| <= bound`` over the run
        (an empirical, finite-horizon BIBO check; use ``input="noise"``).
    weight_norms : bool
        Compute the ``spectral_radius`` and ``max_singular_value`` of every W (NaN if False).
    parallel : bool
        Use all of Numba's threads (direct use). The sweep runner calls the serial kernels from
        its own worker threads instead.

    Returns
    -------
    RnnResult
        Per-step variables (cases, ntime): ``state`` (n = 1 only, signed), ``state_norm``,
        ``response`` (``||h(t) - hbar(t)||``, hbar being the same run without the input at
        t = 0), ``log10_gradient_norm``. Per-case summaries: ``blowup_step`` (first step with
        a non-finite state; the case stops there and later records are NaN; -1 if none),
        ``memory_horizon``, ``saturation_step``, ``growth_rate`` (ln ||dh(t)/dh(0)|| per step
        between t = (steps-1)//2 and the last step: the largest Lyapunov exponent),
        ``response_growth_rate`` (same for the response), ``bounded``, ``max_state_norm``,
        ``fixed_point`` (n = 1; the final state when the run saturated, else NaN),
        ``fixed_point_norm``, ``spectral_radius``, ``max_singular_value``,
        ``second_eigenvalue_modulus`` (n > 1: the largest |lambda| below the dominant
        modulus, the growth rate of a response without a dominant component; NaN for n = 1).

    Raises
    ------
    ValueError
        For an unknown name or an array of the wrong shape; the message names the argument.
    """
    act = get_activation(activation)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    fdt = np.dtype(dtype)
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if memory_rtol <= 0:
        raise ValueError(f"memory_rtol must be > 0, got {memory_rtol}")
    if saturation_tol is None:
        saturation_tol = 1e-12 if fdt == np.float64 else 1e-5
    if gradient not in ("auto", "exact", "estimate", "none"):
        raise ValueError(
            f"gradient must be 'auto', 'exact', 'estimate' or 'none', got {gradient!r}"
        )

    Wa = np.asarray(W, dtype=np.float64)
    if Wa.ndim <= 1:
        scalar = True
        Wa = np.atleast_1d(Wa)
        ncase, n = Wa.shape[0], 1
    elif Wa.ndim in (2, 3):
        if Wa.ndim == 2:
            Wa = Wa[None]
        if Wa.shape[1] != Wa.shape[2]:
            raise ValueError(f"W must be square, got shape {Wa.shape[1:]}")
        ncase, n = Wa.shape[0], Wa.shape[1]
        scalar = n == 1
        if scalar:
            Wa = Wa[:, 0, 0]
    else:
        raise ValueError(f"W must have 0 to 3 dimensions, got shape {Wa.shape}")
    if ncase < 1:
        raise ValueError("W holds no case")

    trailing = () if scalar else (n,)
    if C is None:
        C = 1.0 if scalar else impulse_direction(n, seed=0)
    Ca = _as_cases(C, ncase, trailing, "C", fdt)
    if remove_dominant and not scalar:
        Ca = np.stack(
            [remove_dominant_component(Wa[i], Ca[i].astype(np.float64)) for i in range(ncase)]
        ).astype(fdt)
    Ba = _as_cases(0.0 if b is None else b, ncase, trailing, "b", fdt)
    amp = _as_cases(amplitude, ncase, (), "amplitude", np.float64)
    rec = record_steps(steps, record, num_records)
    t_half = (steps - 1) // 2

    kind, xs, keys, input_name = input_arrays(input, ncase, steps, noise_seed, n)

    nrec = rec.shape[0]
    out_state = np.full((ncase, nrec), np.nan, dtype=fdt)
    out_resp = np.full((ncase, nrec), np.nan)
    out_grad = np.full((ncase, nrec), np.nan)
    s_blow = np.empty(ncase, np.int64)
    s_mem = np.empty(ncase, np.int64)
    s_sat = np.empty(ncase, np.int64)
    s_growth = np.empty(ncase)
    s_rgrowth = np.empty(ncase)
    s_bounded = np.empty(ncase, np.bool_)
    s_final = np.empty(ncase)
    s_maxn = np.empty(ncase)
    outs = (out_state, out_resp, out_grad, s_blow, s_mem, s_sat, s_growth, s_rgrowth,
            s_bounded, s_final, s_maxn)  # fmt: skip
    common = (amp, keys, xs, kind, steps, rec, t_half, float(bound), float(memory_rtol),
              float(saturation_tol))  # fmt: skip

    nthreads = numba.get_num_threads() if parallel else 1
    if scalar:
        w = np.ascontiguousarray(Wa, dtype=fdt)
        method = "exact"
        if nthreads > 1 and ncase > K.LANES:
            nchunks = min(-(-ncase // K.LANES), 8 * nthreads)
            K.KERNELS[act.code]["scalar_parallel"](w, Ca, Ba, *common, *outs, nchunks)
        else:
            K.KERNELS[act.code]["scalar_serial"](w, Ca, Ba, *common, *outs)
    else:
        Wc = np.ascontiguousarray(Wa, dtype=fdt)
        method = gradient
        if gradient == "auto":
            method = "exact" if n <= exact_gradient_max_n else "estimate"
        if method == "estimate":
            k = int(gradient_probes)
            if not 1 <= k <= n:
                raise ValueError(f"gradient_probes must be in [1, n={n}], got {k}")
            q, _ = np.linalg.qr(case_rng(0, n, "probes").standard_normal((n, k)))
            probe = np.ascontiguousarray(q, dtype=fdt)
        else:
            probe = np.eye(n, dtype=fdt)
        grad_on = method != "none"
        if nthreads > 1 and ncase > 1:
            nchunks = min(ncase, 4 * nthreads)
            with _single_threaded_blas():
                K.KERNELS[act.code]["vector_parallel"](
                    Wc, Ca, Ba, *common, probe, grad_on, *outs, nchunks
                )
        else:
            K.KERNELS[act.code]["vector_serial"](Wc, Ca, Ba, *common, probe, grad_on, *outs)

    data: dict[str, np.ndarray] = {}
    if scalar:
        data["state"] = out_state
        data["state_norm"] = np.abs(out_state)
    else:
        data["state_norm"] = out_state
    data["response"] = out_resp.astype(fdt, copy=False)
    data["log10_gradient_norm"] = out_grad
    saturated = s_sat >= 0
    data.update(
        blowup_step=s_blow,
        memory_horizon=s_mem,
        saturation_step=s_sat,
        growth_rate=s_growth,
        response_growth_rate=s_rgrowth,
        bounded=s_bounded,
        max_state_norm=s_maxn,
    )
    if scalar:
        data["fixed_point"] = np.where(saturated, s_final, np.nan)
    data["fixed_point_norm"] = np.where(saturated, np.abs(s_final), np.nan)
    nan = np.full(ncase, np.nan)
    rho, smax, second = _weight_norms(Wa, scalar) if weight_norms else (nan, nan, nan)
    data["spectral_radius"] = rho
    data["max_singular_value"] = smax
    data["second_eigenvalue_modulus"] = second
    attrs = dict(
        family="rnn",
        activation=act.name,
        n=n,
        steps=steps,
        dtype=dtype,
        input=input_name,
        remove_dominant=bool(remove_dominant),
        memory_rtol=float(memory_rtol),
        saturation_tol=float(saturation_tol),
        bound=float(bound),
        gradient_method=method,
    )
    return RnnResult(time=rec, data=data, attrs=attrs)


def _weight_norms(Wa: np.ndarray, scalar: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if scalar:
        a = np.abs(Wa)
        return a.copy(), a.copy(), np.full(a.shape, np.nan)
    mod = np.abs(np.linalg.eigvals(Wa))
    rho = mod.max(axis=-1)
    # the dominant group as remove_dominant_component defines it (ties within 1e-9)
    below = np.where(mod < rho[:, None] * (1.0 - 1e-9), mod, -np.inf).max(axis=-1)
    second = np.where(np.isfinite(below), below, np.nan)
    smax = np.linalg.norm(Wa, ord=2, axis=(-2, -1))
    return rho, smax, second


def _single_threaded_blas():
    """Limit BLAS to one thread while Numba's threads each call it (no oversubscription)."""
    return threadpool_limits(1, user_api="blas")
