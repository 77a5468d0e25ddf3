"""Derived quantities of a stored sweep, as functions of an ``xarray.Dataset``.

Every function works on any selection of a store (lazily where the store is Dask-backed) and
returns DataArrays over the grid dimensions that remain, with ``long_name``, ``units`` and
``description`` attributes like the stored variables.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "CLASSES",
    "classify",
    "crossings",
    "gamma",
    "gradient_crossing_step",
    "growth_rate_theory",
    "memory_horizon",
    "phase_boundary",
]

#: The classes of :func:`classify`, by code.
CLASSES = {
    -1: "undetermined",
    0: "vanishing",
    1: "stable memory",
    2: "saturating",
    3: "chaotic",
    4: "exploding",
}


def gamma(activation: str) -> float:
    """sup |f'| of an activation, from the engine's activation table (one place to add one)."""
    from rnnlab.engine.activations import get_activation

    return get_activation(str(activation)).gamma


def _bounded_activation(activation: str) -> bool:
    from rnnlab.engine.activations import get_activation

    return get_activation(str(activation)).bounded


def _first_index(mask: np.ndarray) -> np.ndarray:
    """Index of the first True along the last axis, -1 where there is none."""
    has = mask.any(axis=-1)
    return np.where(has, mask.argmax(axis=-1), -1)


def memory_horizon(ds: xr.Dataset, rtol: float = 1e-3) -> xr.DataArray:
    """The first recorded step after which the response stays below ``rtol * response(0)``.

    Parameters
    ----------
    ds : xarray.Dataset
        A store (or a selection) with ``response`` recorded from t = 0.
    rtol : float
        The tolerance, relative to the response at t = 0.

    Returns
    -------
    xarray.DataArray
        int: the step (a recorded one: with log-spaced records, the exact horizon lies between
        the previous record and this one), 0 if the response at t = 0 is 0, -1 if the response
        never falls and stays below the tolerance (or the run blew up: NaN records). The
        stored ``memory_horizon`` is exact to the step, at the run's ``memory_rtol``.
    """
    if "response" not in ds:
        raise ValueError("memory_horizon needs the per-step variable 'response'")
    if int(ds.time.values[0]) != 0:
        raise ValueError("memory_horizon needs the response at t = 0 (time[0] must be 0)")
    time = ds.time.values

    def horizon(r):
        r0 = r[..., :1]
        above = ~(r <= rtol * r0)  # NaN (after a blow-up) counts as not forgotten
        last = r.shape[-1] - 1 - _first_index(above[..., ::-1])
        last = np.where(above.any(axis=-1), last, -1)  # index of the last record above
        out = np.where(last + 1 < r.shape[-1], time[np.minimum(last + 1, r.shape[-1] - 1)], -1)
        out = np.where(last < 0, 0, out)
        return np.where(r0[..., 0] == 0, 0, out).astype(np.int64)

    out = xr.apply_ufunc(
        horizon,
        ds.response,
        input_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[np.int64],
    )
    out.attrs = {
        "long_name": "memory horizon",
        "units": "1",
        "description": f"First recorded step after which response < {rtol:g} response(0) "
        "until the end of the run; -1 if never.",
    }
    return out.rename("memory_horizon")


def gradient_crossing_step(
    ds: xr.Dataset,
    threshold: float = 1e-6,
    *,
    kind: str = "below",
    variable: str = "log10_gradient_norm",
) -> xr.DataArray:
    """The first recorded step (sequence length) at which a gradient norm crosses a threshold.

    Parameters
    ----------
    ds : xarray.Dataset
        A store with the per-step gradient variable.
    threshold : float
        The gradient norm (not its log), e.g. 1e-6 for "vanished", 1e6 for "exploded".
    kind : {"below", "above"}
        Falls below (vanishing) or exceeds (exploding) the threshold.
    variable : str
        ``log10_gradient_norm`` (default) or ``log10_cell_gradient_norm``.

    Returns
    -------
    xarray.DataArray
        int: the step, -1 if it never happens within the run.
    """
    if kind not in ("below", "above"):
        raise ValueError(f"kind must be 'below' or 'above', got {kind!r}")
    if variable not in ds:
        raise ValueError(f"gradient_crossing_step needs the per-step variable {variable!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    level = np.log10(threshold)
    time = ds.time.values

    def crossing(g):
        mask = g < level if kind == "below" else g > level
        i = _first_index(mask)
        return np.where(i >= 0, time[np.maximum(i, 0)], -1).astype(np.int64)

    out = xr.apply_ufunc(
        crossing, ds[variable], input_core_dims=[["time"]], dask="parallelized",
        output_dtypes=[np.int64],
    )  # fmt: skip
    out.attrs = {
        "long_name": f"step at which the gradient norm goes {kind} {threshold:g}",
        "units": "1",
        "description": f"First recorded step with {variable} {'<' if kind == 'below' else '>'} "
        f"log10({threshold:g}); -1 if never.",
    }
    return out.rename("gradient_crossing_step")


def _param(ds: xr.Dataset, name: str):
    """A model parameter: a coordinate, a variable, or the store's fixed ``model_*`` value."""
    if name in ds.coords or name in ds.data_vars:
        return ds[name]
    value = ds.attrs.get(f"model_{name}")
    if value is None or value == "none":
        return None
    return xr.DataArray(value)


def _activation(ds: xr.Dataset):
    act = _param(ds, "activation")
    if act is None:
        family = ds.attrs.get("family", "rnn")
        act = xr.DataArray("tanh" if family in ("rnn", "cec", "mlp") else family)
    return act


def is_stacked(ds: xr.Dataset) -> bool:
    """Whether a store has stacked recurrent layers (a layers dimension or model.layers > 1)."""
    return "layers" in ds.dims or int(ds.attrs.get("model_layers", 1) or 1) > 1


def growth_rate_theory(ds: xr.Dataset) -> xr.Dataset:
    """The measured gradient growth rate beside the theory, for ``rnn`` stores.

    Linear recursions (``activation = identity``): the rate is exactly ln|lambda_max|
    (``spectral_radius``, or |w| for n = 1). Nonlinear ones: ln(gamma sigma_max) is an upper
    bound (gamma = sup|f'|: 1/4 sigmoid, 1 tanh and relu; sigma_max = ``max_singular_value``,
    or |w|).

    Returns
    -------
    xarray.Dataset
        ``measured`` (the stored ``growth_rate``), ``theory`` and ``is_exact`` (True where
        the theory is the exact rate rather than a bound), over the grid.
    """
    if ds.attrs.get("family", "rnn") != "rnn" or "growth_rate" not in ds:
        raise ValueError("growth_rate_theory needs an rnn store with growth_rate")
    if is_stacked(ds):
        raise ValueError("growth_rate_theory is per layer: stacked layers couple through W_ih")
    act = _activation(ds)
    w = _param(ds, "w")
    rho = _param(ds, "spectral_radius")
    smax = _param(ds, "max_singular_value")
    if w is not None:
        rho = smax = abs(w)
    if rho is None or smax is None:
        raise ValueError("growth_rate_theory needs spectral_radius and max_singular_value (or w)")
    gam = xr.apply_ufunc(np.vectorize(gamma, otypes=[float]), act)
    linear = xr.apply_ufunc(np.vectorize(lambda a: str(a) in ("identity", "linear")), act)
    with np.errstate(divide="ignore"):
        theory = xr.where(linear, np.log(rho), np.log(gam * smax))
    theory.attrs = {
        "long_name": "theoretical growth rate",
        "units": "1/step",
        "description": "ln|lambda_max| (linear, exact) or ln(gamma sigma_max) (nonlinear, an "
        "upper bound on the growth of ||dh(t)/dh(0)||).",
    }
    out = xr.Dataset({"measured": ds.growth_rate, "theory": theory, "is_exact": linear})
    return out


def _bounded_state(ds: xr.Dataset) -> xr.DataArray:
    family = ds.attrs.get("family", "rnn")
    if family in ("lstm", "gru"):
        return xr.DataArray(True)
    act = _activation(ds)
    return xr.apply_ufunc(np.vectorize(_bounded_activation, otypes=[bool]), act)


def classify(ds: xr.Dataset, tol: float = 1e-3, fixed_point_tol: float = 1e-8) -> xr.DataArray:
    """A class per case, from the stored summaries.

    In order of precedence:

    - ``exploding`` (4): the run blew up, or the gradient grows (``growth_rate > tol``) and
      the state is unbounded (identity or relu activation, cec);
    - ``chaotic`` (3): the gradient grows but the state is bounded (sigmoid, tanh, gated
      cells): a positive largest Lyapunov exponent;
    - ``stable memory`` (1): the response to the input at t = 0 never fades below the
      tolerance within the run (``memory_horizon == -1``: a marginal linear recursion, the
      carousel, or a bistable tanh unit that keeps the sign of x(0));
    - ``saturating`` (2): the state converged to a nonzero fixed point and the input is
      forgotten (the fixed point does not depend on it: sigmoid);
    - ``vanishing`` (0): the gradient decays, ``growth_rate < -tol``;
    - ``stable memory`` (1) also when ``|growth_rate| <= tol``;
    - ``undetermined`` (-1): no growth rate (a run too short to measure one).

    Parameters
    ----------
    ds : xarray.Dataset
        A store with ``growth_rate``, ``blowup_step``, ``saturation_step`` and
        ``fixed_point_norm``.
    tol : float
        Rates within ``tol`` (per step) of 0 count as marginal.
    fixed_point_tol : float
        A fixed point with a norm above this is "nonzero".

    Returns
    -------
    xarray.DataArray
        int8 codes with CF ``flag_values`` and ``flag_meanings`` attributes (see
        :data:`CLASSES`).
    """
    need = ("growth_rate", "blowup_step", "saturation_step", "fixed_point_norm", "memory_horizon")
    missing = [v for v in need if v not in ds]
    if missing:
        raise ValueError(f"classify needs the summaries {', '.join(missing)}")
    g = ds.growth_rate
    bounded = _bounded_state(ds)
    code = xr.full_like(g, -1, dtype=np.int8)
    code = xr.where(np.abs(g) <= tol, 1, code)
    code = xr.where(g < -tol, 0, code)
    converged = (ds.saturation_step >= 0) & (ds.fixed_point_norm > fixed_point_tol)
    code = xr.where(converged & (ds.memory_horizon >= 0), 2, code)
    code = xr.where(ds.memory_horizon < 0, 1, code)
    code = xr.where((g > tol) & bounded, 3, code)
    code = xr.where(((g > tol) & ~bounded) | (ds.blowup_step >= 0), 4, code)
    code = code.astype(np.int8)
    code.attrs = {
        "long_name": "dynamical class",
        "units": "1",
        "flag_values": np.array(list(CLASSES), dtype=np.int8),
        "flag_meanings": " ".join(v.replace(" ", "_") for v in CLASSES.values()),
        "description": f"classify(ds, tol={tol:g}): vanishing, stable memory, saturating, "
        "chaotic or exploding.",
    }
    return code.rename("dynamical_class")


def crossings(xs: np.ndarray, values: np.ndarray, rising: bool = False) -> list[float]:
    """Every x at which ``values`` (over the sorted ``xs``) changes sign, by linear
    interpolation between the two grid values around it (a zero on the grid counts once);
    with ``rising``, only where they go up through 0."""
    out = []
    s = np.sign(values)
    ok = np.isfinite(values[:-1]) & np.isfinite(values[1:])
    if rising:
        ok &= values[:-1] < values[1:]
    for i in np.flatnonzero((s[:-1] * s[1:] <= 0) & ok):
        a, b = values[i], values[i + 1]
        x = xs[i] if a == b else xs[i] + (xs[i + 1] - xs[i]) * a / (a - b)
        if not out or x != out[-1]:
            out.append(float(x))
    return out


def phase_boundary(
    ds: xr.Dataset,
    x: str,
    y: str,
    *,
    variable: str = "growth_rate",
    level: float = 0.0,
    reduce_dims: tuple[str, ...] = ("seed",),
) -> xr.DataArray:
    """Where ``variable`` crosses ``level`` along grid dimension ``x``, for each value of ``y``.

    With the default ``growth_rate`` and level 0, this is the boundary between vanishing
    (below) and exploding or chaotic (above) gradients.

    Parameters
    ----------
    ds : xarray.Dataset
        A store; dimensions other than ``x``, ``y`` and ``reduce_dims`` must be selected
        first (``ds.sel(activation="tanh")``).
    x : str
        A numeric grid dimension, searched for the crossing (linear interpolation between
        the two grid values around the first sign change).
    y : str
        A grid dimension: one boundary value per coordinate value.
    variable : str
        A per-case summary (default ``growth_rate``).
    level : float
        The crossing level.
    reduce_dims : tuple of str
        Dimensions reduced by the median first (seeds).

    Returns
    -------
    xarray.DataArray
        The ``x`` value of the crossing for each ``y`` (NaN where there is none).
    """
    for d in (x, y):
        if d not in ds.dims:
            raise ValueError(f"{d!r} is not a grid dimension: use one of {', '.join(ds.dims)}")
    v = ds[variable]
    red = [d for d in reduce_dims if d in v.dims]
    if red:
        v = v.median(red)
    extra = [d for d in v.dims if d not in (x, y)]
    if extra:
        raise ValueError(
            f"select the dimensions {', '.join(extra)} first (e.g. ds.isel({extra[0]}=0))"
        )
    v = v.sortby(x).transpose(y, x)
    xs = v[x].values.astype(float)
    vals = np.asarray(v.values, dtype=float) - level
    out = np.full(vals.shape[0], np.nan)
    for j, row in enumerate(vals):
        found = crossings(xs, row)
        if found:
            out[j] = found[0]
    da = xr.DataArray(out, coords={y: v[y].values}, dims=(y,), name=f"{x}_boundary")
    da.attrs = {
        "long_name": f"{x} at which {variable} = {level:g}",
        "units": ds[x].attrs.get("units", "1"),
        "description": f"Linear interpolation of the first sign change of {variable} - "
        f"{level:g} along {x}.",
    }
    return da
