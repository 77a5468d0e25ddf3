"""Bifurcations of the scalar map h -> f(w h + b), in closed form, and the phases of a sweep.

A fixed point h* = f(w h* + b) is stable while |w f'(w h* + b)| < 1. For the sigmoid and tanh
the fixed points are best written with h* as the parameter, b = f^-1(h*) - w h*:

- a *saddle-node* (fold) where w f' = 1: two stable fixed points and an unstable one exist
  between its two branches, so the map keeps one bit (which basin the input chose);
- a *flip* (period doubling) where w f' = -1: beyond it the fixed point repels and the state
  oscillates with period 2.

For tanh, f' = 1 - h^2: the fold is w = 1 / (1 - h^2) (w >= 1), the flip w = -1 / (1 - h^2)
(w <= -1). For the sigmoid, f' = h (1 - h): the fold is w = 1 / (h (1 - h)) (w >= 4), the
flip w = -1 / (h (1 - h)) (w <= -4). Identity and relu have no such curves: they are linear
(on each side of 0), and diverge for |w| > 1 (relu: w > 1).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "PHASES",
    "bifurcation_curves",
    "phase_agreement",
    "scalar_phases",
    "theoretical_phase",
]

#: The phases of :func:`scalar_phases`, by code.
PHASES = {
    0: "one fixed point",
    1: "two fixed points (memory)",
    2: "oscillating",
    3: "divergent",
}


def _inverse_and_slope(activation: str):
    """(f^-1(h), f'(as a function of h), the open range of h) of an activation."""
    if activation == "tanh":
        return np.arctanh, lambda h: 1 - h**2, (-1.0, 1.0)
    if activation == "sigmoid":
        return (lambda h: np.log(h / (1 - h))), (lambda h: h * (1 - h)), (0.0, 1.0)
    raise ValueError(f"no bifurcation curves for {activation!r}: use sigmoid or tanh")


def bifurcation_curves(activation: str, num: int = 4001) -> dict[str, tuple[np.ndarray, ...]]:
    """The fold and flip curves of h -> f(w h + b) in the (w, b) plane, in closed form.

    Parameters
    ----------
    activation : {"sigmoid", "tanh"}
    num : int
        Points per curve (h over its open range, its ends left out).

    Returns
    -------
    dict
        ``"fold"`` and ``"flip"``: (w, b) arrays along each curve, ordered by h. Between the
        two branches of the fold (for a given w, b between its two values) the map has two
        stable fixed points; inside the flip curve it oscillates.
    """
    inverse, slope, (lo, hi) = _inverse_and_slope(activation)
    h = np.linspace(lo, hi, num + 2)[1:-1]
    out = {}
    for name, sign in (("fold", 1.0), ("flip", -1.0)):
        w = sign / slope(h)
        out[name] = (w, inverse(h) - w * h)
    return out


def _branches(activation: str, w: np.ndarray, sign: float):
    """b of the two fixed points where w f' = sign (NaN where there are none): the curve's
    two branches at each w."""
    inverse, _, _ = _inverse_and_slope(activation)
    w = np.asarray(w, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if activation == "tanh":  # 1 - h^2 = sign / w
            r = np.sqrt(1 - sign / w)
            h = np.stack([-r, r])
        else:  # h (1 - h) = sign / w
            r = np.sqrt(1 - 4 * sign / w)
            h = np.stack([(1 - r) / 2, (1 + r) / 2])
        b = inverse(h) - w * h
    return np.sort(b, axis=0)


def theoretical_phase(activation: str, w, b) -> np.ndarray:
    """The phase the closed-form curves predict at (w, b) (broadcast): 1 between the fold's
    branches (two stable fixed points), 2 between the flip's (oscillating), else 0."""
    w, b = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(b, dtype=float))
    code = np.zeros(w.shape, dtype=np.int8)
    for value, sign in ((1, 1.0), (2, -1.0)):
        lo, hi = _branches(activation, w, sign)
        code[(b > lo) & (b < hi)] = value
    return code


def scalar_phases(ds: xr.Dataset, tol: float = 1e-3) -> xr.DataArray:
    """The phase of every (activation, w, bias) of a scalar sweep with an amplitude of
    both signs, from its summaries (see :data:`PHASES`).

    Divergent: a case blew up or left the bound, for either input sign. Oscillating: a
    bounded case that never settled. Two fixed points: both signs settled, to fixed points
    more than ``tol`` apart (the input chose the basin: a kept memory). One fixed point:
    otherwise. Needs ``blowup_step``, ``bounded``, ``saturation_step`` and ``fixed_point``
    over an ``amplitude`` dimension.
    """
    need = ("blowup_step", "bounded", "saturation_step", "fixed_point")
    missing = [v for v in need if v not in ds]
    if missing or "amplitude" not in ds.dims:
        raise ValueError(f"scalar_phases needs {', '.join(need)} and an amplitude dimension")
    divergent = ((ds.blowup_step >= 0) | ~ds.bounded.astype(bool)).any("amplitude")
    settled = (ds.saturation_step >= 0).all("amplitude")
    fp = ds.fixed_point
    apart = (fp.max("amplitude") - fp.min("amplitude")) > tol
    code = xr.where(settled & apart, 1, 0)
    code = xr.where(~settled, 2, code)
    code = xr.where(divergent, 3, code).astype(np.int8)
    code.attrs = {
        "long_name": "phase of the scalar map",
        "units": "1",
        "flag_values": np.array(list(PHASES), dtype=np.int8),
        "flag_meanings": " ".join(v.replace(" ", "_") for v in PHASES.values()),
    }
    return code.rename("phase")


def phase_agreement(ds: xr.Dataset, activation: str) -> dict:
    """The simulated phases of one activation against the closed-form prediction.

    Returns
    -------
    dict
        ``cells`` (w x bias cells), ``differ`` (cells whose phases differ), and ``distance``:
        the largest distance of a differing cell to a bifurcation curve, in grid cells (the
        larger of |dw| / step in w and |db| / step in b; 0 if none differ).
    """
    if not {"w", "bias"} <= set(ds.dims):
        raise ValueError("phase_agreement needs w and bias dimensions")
    one = ds.sel(activation=activation) if "activation" in ds.dims else ds
    got = scalar_phases(one).transpose("w", "bias").values
    w, b = one.w.values, one.bias.values
    want = theoretical_phase(activation, w[:, None], b[None, :])
    wrong = np.argwhere(got != want)
    dw, db = w[1] - w[0], b[1] - b[0]
    # the curves' points at a w step of dw / 50 (both branches of each), and along h, which
    # is dense at their tips (where b(w) is vertical)
    fine = np.linspace(w[0] - dw, w[-1] + dw, 50 * w.size)
    along_w = [
        np.stack([fine, branch], axis=1)
        for sign in (1.0, -1.0)
        for branch in _branches(activation, fine, sign)
    ]
    along_h = [np.stack(c, axis=1) for c in bifurcation_curves(activation, 20001).values()]
    curves = np.concatenate(along_w + along_h)
    curves = curves[np.isfinite(curves).all(axis=1)]
    far = 0.0
    for i, j in wrong:
        cell = np.maximum(np.abs(curves[:, 0] - w[i]) / dw, np.abs(curves[:, 1] - b[j]) / db)
        far = max(far, float(cell.min()))
    return {"cells": int(got.size), "differ": len(wrong), "distance": far}
