"""The ``rnn`` model family: h(t) = f(W h(t-1) + C x(t) + b), h(-1) = 0.

The public entry point is :func:`simulate_rnn`, which runs a batch of cases from explicit
arrays and returns an :class:`RnnResult` of NumPy arrays keyed by the store schema's names.
It validates and allocates; the arithmetic is in :mod:`rnnlab.engine._scalar` (n = 1, one
case per SIMD lane) and in the layered kernel (n > 1, :func:`rnnlab.engine.network.run_layers`
with one ``rnn`` layer).
"""

from __future__ import annotations

import numpy as np

from . import _lanes
from . import _tracking as K
from ._linear import exact_response
from ._parallel import run_chunks, threads_for
from ._scalar import LANES, make_kernel
from ._validate import (
    INPUT_KINDS,
    as_cases,
    check_choice,
    check_int,
    check_memory,
    finite_numbers,
    input_arrays,
    noise_keys,
    record_steps,
    run_settings,
)
from .activations import ACTIVATIONS, F32, get_activation
from .cells import lstm
from .lyapunov import LYAPUNOV_OUTPUTS
from .network import (
    CAPACITY_OUTPUTS,
    FEWER_RECORDS,
    OPT_IN,
    OUTPUT_HINTS,
    Layers,
    capacity_delays,
    run_layers,
    without_capacity,
)
from .results import RnnResult
from .weights import case_rng, dominant_complement, impulse_direction

__all__ = [
    "INPUT_KINDS",
    "PER_STEP_VARIABLES",
    "SUMMARY_VARIABLES",
    "RnnResult",
    "noise_keys",
    "record_steps",
    "rnn_outputs",
    "simulate_rnn",
]

#: Per-step variables, dims (case, time). ``state`` only for n = 1.
PER_STEP_VARIABLES = ("state", "state_norm", "response", "log10_gradient_norm")
#: Per-case summaries, dims (case,). ``fixed_point`` only for n = 1.
SUMMARY_VARIABLES = (
    *K.SUMMARIES,
    "fixed_point",
    "fixed_point_norm",
    "spectral_radius",
    "max_singular_value",
    "second_eigenvalue_modulus",
)

#: The scalar kernel of each (activation code, precision), compiled on first call (then
#: loaded from the cache); a float32 kernel evaluates its activation in float32.
KERNELS = {
    (a.code, np.dtype(dt)): make_kernel(a.code + (F32 if dt == "float32" else 0))
    for a in ACTIVATIONS.values()
    for dt in ("float64", "float32")
}


def rnn_outputs(n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(available, default) outputs of :func:`simulate_rnn` for n units.

    The default is every available variable except the per-step vector ``hidden_state``
    and the Lyapunov spectrum (n > 1), which are asked for by name.
    """
    if n == 1:
        available = PER_STEP_VARIABLES + SUMMARY_VARIABLES
    else:
        steps = ("state_norm", "hidden_state", "response", "log10_gradient_norm")
        available = steps + tuple(v for v in SUMMARY_VARIABLES if v != "fixed_point")
        available += LYAPUNOV_OUTPUTS + CAPACITY_OUTPUTS
    return available, tuple(v for v in available if v not in OPT_IN)


def _recurrent(W):
    """W as (cases,) for scalar recursions or (cases, n, n); returns (W, ncase, n)."""
    Wa = finite_numbers("W", W, "a number or an array of numbers")
    if Wa.ndim <= 1:
        Wa = np.atleast_1d(Wa)
        n = 1
    elif Wa.ndim in (2, 3):
        if Wa.ndim == 2:
            Wa = Wa[None]
        if Wa.shape[1] != Wa.shape[2]:
            raise ValueError(f"W must be square, got shape {Wa.shape[1:]}")
        n = Wa.shape[1]
        if n == 1:
            Wa = Wa[:, 0, 0]
    else:
        raise ValueError(f"W must have 0 to 3 dimensions, got shape {Wa.shape}")
    if Wa.shape[0] < 1 or n < 1:
        raise ValueError("W holds no case")
    return Wa, Wa.shape[0], n


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
    outputs=None,
    num_exponents: int = 16,
    num_delays: int | None = None,
    parallel: bool | int = True,
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
    remove_dominant : bool or array_like of bool
        n > 1: remove from each case's input direction C (per case if an array) its component
        along the dominant eigenvector(s) of its W (see
        :func:`rnnlab.engine.remove_dominant_component`), so that the response grows like
        ``|lambda_2|^t`` instead of ``|lambda_1|^t``. For the identity activation the
        response is then measured with that component projected out every step (rounding
        would bring it back within a few hundred steps), exactly for any length.
    record : {"all", "log", "none"} or array_like of int
        Which steps the per-step variables keep (see :func:`record_steps`). Log-spaced and
        summaries-only runs allocate nothing per step, whatever ``steps`` is.
    num_records : int
        Number of log-spaced records.
    dtype : {"float64", "float32"}
        Precision of the state and of the weights. For n = 1, float32 runs in float32 end to
        end (float32 activations, trackers and Jacobian product; docs/engine.md, "What
        float32 loses"); for n > 1 the activations are evaluated in float64 and rounded to
        ``dtype``, and the Jacobian product is kept in ``dtype``.
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
        Compute the ``spectral_radius``, ``max_singular_value`` and
        ``second_eigenvalue_modulus`` of every W (NaN if False).
    outputs : None, "all", str or list of str
        The variables to compute and return (see :func:`rnn_outputs`; docs/engine.md says
        which trackers each needs). Only what they need is computed: ``outputs=["state"]``
        costs one activation per case and step. Default: every variable listed under
        Returns (``hidden_state``, the state vector of n > 1 recursions at the recorded
        steps, (cases, time, n), the Lyapunov spectrum and the memory capacity are asked
        for by name).
    num_exponents : int
        k, the number of Lyapunov exponents in ``lyapunov_exponents`` (default 16; those
        beyond the state's dimension read NaN), when one of :data:`LYAPUNOV_OUTPUTS` is
        asked for (see :mod:`rnnlab.engine.lyapunov`).
    num_delays : int
        K, the delays 0 ... K - 1 of the input read out by ``memory_capacity`` (at most
        (steps - 1) // 2; default 100, or (steps - 1) // 2 if smaller), when it is asked
        for (see :mod:`rnnlab.engine._capacity`).
    parallel : bool or int
        Run chunks of cases on all CPUs (True), one thread (False) or this many threads.
        The sweep runner calls the engine with False from its own worker threads.

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
    check_choice("gradient", gradient, ("auto", "exact", "estimate", "none"))
    settings = run_settings(steps, dtype, record, num_records, memory_rtol, saturation_tol, bound)
    fdt = settings.dtype
    Wa, ncase, n = _recurrent(W)
    scalar = n == 1
    available, default = rnn_outputs(n)
    outputs = without_capacity(outputs, available, input, steps)
    plan = K.plan_outputs(outputs, available, default, hints=OUTPUT_HINTS)
    if gradient == "none":
        plan = plan.without("gradient")
    if not weight_norms:
        plan = plan.without("weights")
    check_memory(
        ncase * (n * n + 4 * n) * 8 + ncase * settings.nrec * 8 * (plan.nrows + 1),
        "give fewer cases per call, or record fewer steps (record='log', num_records=...)",
    )
    trailing = () if scalar else (n,)
    if C is None:
        C = 1.0 if scalar else impulse_direction(n, seed=0)
    Ca = as_cases(C, ncase, trailing, "C", fdt)
    removed = np.broadcast_to(np.asarray(remove_dominant, dtype=bool), (ncase,))
    removed = removed & (not scalar)
    # the projectors off W's dominant eigenspace: for C here, for the response below
    projectors = {int(i): dominant_complement(Wa[i]) for i in np.flatnonzero(removed)}
    for i, Q in projectors.items():
        Ca[i] = Q @ Ca[i].astype(np.float64)
    Ba = as_cases(0.0 if b is None else b, ncase, trailing, "b", fdt)
    kind, xs, keys, input_name = input_arrays(input, ncase, settings.steps, noise_seed, n)
    amp = as_cases(amplitude, ncase, (), "amplitude", np.float64)
    inputs = (kind, xs, keys, amp)
    threads = threads_for(parallel)
    extra = {}
    if plan.needs("weights"):
        names = ("spectral_radius", "max_singular_value", "second_eigenvalue_modulus")
        extra = dict(zip(names, _weight_norms(Wa, scalar), strict=True))
    if scalar:
        method = "exact"
        w = np.ascontiguousarray(Wa, dtype=fdt)
        rec_out, sums = _run_scalar(act.code, w, Ca, Ba, inputs, settings, plan, threads)
        data = K.collect(plan, rec_out, sums, fdt, steps=settings.steps, signed=True,
                         extra=extra)  # fmt: skip
    else:
        method, probe = _gradient_method(gradient, n, gradient_probes, exact_gradient_max_n)
        if method == "none":
            plan = plan.without("gradient")
        layered = dict(
            exponents=check_int("num_exponents", num_exponents, 1),
            delays=capacity_delays(plan, num_delays, settings, False, kind),
        )
        data = {}
        for sub, (rec_out, vectors, sums) in _run_vector(
            Wa, Ca, Ba, act.code, inputs, settings, plan, probe, threads, layered
        ):
            if act.name == "identity" and sub.needs("response"):
                exact_response(Wa, Ca, inputs, settings, sub, rec_out, sums, projectors)
            data.update(K.collect(sub, rec_out, sums, fdt, steps=settings.steps,
                                  vectors=vectors, extra=extra))  # fmt: skip
        data = {name: data[name] for name in plan.names}
    attrs = dict(
        family="rnn",
        activation=act.name,
        n=n,
        input=input_name,
        remove_dominant=bool(removed.any()),
        gradient_method=method if plan.needs("gradient") else "none",
        outputs=list(plan.names),
        **settings.attrs(),
    )
    return RnnResult(time=settings.rec, data=data, attrs=attrs)


def _run_scalar(code, w, C, b, inputs, settings, plan, threads):
    """The scalar kernel over every case; returns (rec_out, sums)."""
    kind, xs, keys, amp = inputs
    ncase, nrec = w.shape[0], settings.nrec
    rec_out = np.full((ncase, plan.nrows, nrec), np.nan)
    sums = np.empty((ncase, K.N_SUMS))
    iopt, fopt = settings.options(plan, kind)
    args = (w, C, b, amp, keys, xs, rec_out, sums, settings.rec, plan.slots, iopt, fopt)
    sliced = [True] * 8 + [False] * 4
    run_chunks(KERNELS[code, w.dtype], args, sliced, ncase, threads, align=LANES)
    return rec_out, sums


def split_kernels(plan, n: int, tangents: int) -> tuple[list[str], list[str]]:
    """The outputs of a vector run that the lanes run, and those the layered kernel runs.

    The lanes (:mod:`rnnlab.engine._lanes`) run n <= ``MAX_N``, except the Lyapunov spectrum
    and the memory capacity, and the gradient's outputs when its product (n^2 ``tangents``
    multiply-adds a step) is larger than ``MAX_TANGENT``. The weight norms (computed apart)
    go with the lanes unless only the layered kernel runs.
    """
    small = n <= _lanes.MAX_N
    grad_here = small and n * n * tangents <= _lanes.MAX_TANGENT

    def in_lanes(name):
        needs = K.OUTPUTS[name].needs
        if "lyapunov" in needs or "capacity" in needs:
            return False
        return grad_here if "gradient" in needs else small

    apart = [name for name in plan.names if K.OUTPUTS[name].needs == ("weights",)]
    lanes = [name for name in plan.names if name not in apart and in_lanes(name)]
    layered = [name for name in plan.names if name not in apart and not in_lanes(name)]
    if lanes or not layered:
        return lanes + apart, layered
    return lanes, layered + apart


def _run_vector(Wa, Ca, Ba, code, inputs, settings, plan, probe, threads, layered):
    """(plan, the kernel's outputs) of each kernel that runs a part of ``plan``.

    Each output has one kernel whatever else is asked for, so that it is the same to the
    bit alone or with the others: for n <= ``_lanes.MAX_N`` the lanes run every output but
    the Lyapunov spectrum and the memory capacity (and the gradient's when its product is
    larger than ``_lanes.MAX_TANGENT``), which the layered kernel runs, in a run of its own.
    """
    n = Ca.shape[1]
    tangents = (n if probe is None else probe.shape[1]) if plan.needs("gradient") else 0
    names, rest = split_kernels(plan, n, tangents)
    parts = []
    if names:
        sub = plan.subset(names)
        parts.append((sub, _run_lanes(Wa, Ca, Ba, code, inputs, settings, sub, probe, threads)))
    if rest:
        sub = plan.subset(rest)
        net = _single_layer(Wa, Ca, Ba, settings.dtype)
        out = run_layers("rnn", net, settings, sub, activation=code, inputs=inputs,
                         probe=probe, threads=threads, **layered)  # fmt: skip
        parts.append((sub, out))
    return parts


def _run_lanes(Wa, Ca, Ba, code, inputs, settings, plan, probe, threads):
    """The small vector kernel over every case; returns (rec_out, vectors, sums)."""
    kind, xs, keys, amp = inputs
    fdt = settings.dtype
    ncase, n = Ca.shape
    nrec = settings.nrec
    probe = np.eye(n) if probe is None else probe
    probe = np.ascontiguousarray(probe if plan.needs("gradient") else probe[:, :0], dtype=fdt)
    hid = plan.wants("hidden_state")
    check_memory(
        ncase * (8 * (plan.nrows * nrec + K.N_SUMS) + fdt.itemsize * hid * nrec * n),
        FEWER_RECORDS,
    )
    rec_out = np.full((ncase, plan.nrows, nrec), np.nan)
    hid_out = np.full((ncase, nrec, n), np.nan, fdt) if hid else np.zeros((ncase, 0, 0), fdt)
    sums = np.empty((ncase, K.N_SUMS))
    iopt, fopt = settings.options(plan, kind, activation=code)
    W = np.ascontiguousarray(Wa, dtype=fdt)
    args = (W, np.ascontiguousarray(Ca), np.ascontiguousarray(Ba), amp, keys, xs, probe,
            rec_out, hid_out, sums, settings.rec, plan.slots, iopt, fopt)  # fmt: skip
    sliced = [True] * 6 + [False] + [True] * 3 + [False] * 4
    run_chunks(_lanes.run_block, args, sliced, ncase, threads, align=_lanes.LANES)
    vectors = {"hidden_state": hid_out} if hid else {}
    return rec_out, vectors, sums


def _gradient_method(gradient, n, probes, exact_max_n):
    """("exact" | "estimate" | "none", probe columns or None for the identity)."""
    method = gradient
    if gradient == "auto":
        method = "exact" if n <= exact_max_n else "estimate"
    if method != "estimate":
        return method, None
    k = check_int("gradient_probes", probes, 1, n)
    q, _ = np.linalg.qr(case_rng(0, n, "probes").standard_normal((n, k)))
    return method, q


def _single_layer(Wa, Ca, Ba, fdt) -> Layers:
    """One ``rnn`` layer per case: W_hh = W, the input column C, the bias b."""
    ncase, n = Ca.shape
    zeros = np.zeros
    return Layers(
        C=Ca,
        Wih=zeros((ncase, 0, n, n), fdt),
        Whh=np.ascontiguousarray(Wa, dtype=fdt)[:, None],
        bih=zeros((ncase, 1, n), fdt),
        bhh=np.ascontiguousarray(Ba[:, None, :]),
        P=zeros((ncase, 1, 0, 0), fdt),
        Rg=zeros((ncase, 1, 0, 0), fdt),
        gain=np.ones(ncase),
        S0=zeros((ncase, 1, n), fdt),
        flags=zeros(lstm.NFLAGS, np.int64),
    )


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
