"""Mean-field theory of deep random networks (Poole et al. 2016; Schoenholz et al. 2017).

For a deep net h(l) = f(z(l)), z(l) = W_l h(l-1) + b with W_l of i.i.d. entries of variance
sigma_w^2 / n, random biases N(0, sigma_b^2) (and a constant bias ``bias`` on every unit, as
rnnlab's ``mlp`` family has), the pre-activations of a wide layer are Gaussian,
z ~ bias + sqrt(q) xi, and their variance follows the *length map*

    q(l) = sigma_w^2 E[f(bias + sqrt(q(l-1)) xi)^2] + sigma_b^2,       xi ~ N(0, 1),

towards its fixed point q*. Through one layer at q*, the squared norm of a back-propagated
(or forward-propagated) perturbation is multiplied by

    chi_1 = sigma_w^2 E[f'(bias + sqrt(q*) xi)^2],

so the gradient norm grows (chi_1 > 1: chaos) or shrinks (chi_1 < 1: order) by 0.5 ln chi_1
per layer. Two inputs' pre-activations, of correlation c, follow the *correlation map*

    c(l) = (sigma_w^2 E[f(u1) f(u2)] + sigma_b^2) / q*,   (u1, u2) of variance q*, correlation c,

whose fixed point c* is 1 in the ordered phase and below 1 in the chaotic one, approached at
the rate chi_c = sigma_w^2 E[f'(u1) f'(u2)] at c* (chi_c = chi_1 at c* = 1). The depth
scales (Schoenholz et al. 2017) are xi_c = -1 / ln chi_c(c*), over which a correlation
between inputs is forgotten (signal propagation), and xi_grad = -1 / ln chi_1, over which a
gradient vanishes (negative: it grows); both diverge on the order-to-chaos line chi_1 = 1
(:func:`critical_sigma_w`). Expectations are computed by quadrature for any activation (see
:func:`gaussian_mean`, :func:`gaussian_mean2`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "c_star",
    "chi1",
    "chi_c",
    "correlation_map",
    "critical_sigma_w",
    "depth_growth_rate",
    "depth_scales",
    "gaussian_mean",
    "gaussian_mean2",
    "length_map",
    "q_star",
]

#: The quadrature: Gauss-Legendre nodes per panel, panels over xi in [-XI, XI].
NODES, XI = 10, 12.0


def _functions(activation) -> tuple[Callable, Callable]:
    """(f, f') as NumPy functions: a name from the engine's activation table, or a pair."""
    if not isinstance(activation, str):
        f, df = activation
        return f, df
    from rnnlab.engine.activations import get_activation

    act = get_activation(activation)
    deriv = np.vectorize(lambda z: act.func(float(z))[1], otypes=[float])
    return act.numpy, deriv


def gaussian_mean(g: Callable, mean: float, var: float) -> float:
    """E[g(mean + sqrt(var) xi)] for xi ~ N(0, 1).

    Gauss-Hermite quadrature converges slowly once sqrt(var) is large: the integrand then
    changes over 1/sqrt(var) around z = 0 (tanh saturating, relu's kink), between the
    nodes. A composite Gauss-Legendre rule over xi in [-12, 12] (the rest weighs < 1e-32)
    with panels graded towards the point where z = 0 resolves it: 1e-12 against the erf
    closed forms up to var = 1e4 (tested)."""
    xi, weight = _nodes(mean, var)
    return float(np.dot(weight, g(mean + np.sqrt(var) * xi)))


def length_map(activation, q: float, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0):
    """One step of the length map: the variance of the next layer's pre-activations."""
    f, _ = _functions(activation)
    return sigma_w**2 * gaussian_mean(lambda z: f(z) ** 2, bias, q) + sigma_b**2


def q_star(activation, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0) -> float:
    """The stable fixed point q* of the length map (``inf`` when the variance grows without
    bound, as for relu or the identity with sigma_w^2 E[f'^2] > 1).

    The largest root of q -> length_map(q) - q, found by a scan over q in [1e-12, 1e8] and
    Brent's method; 0 when q = 0 is the only fixed point (order, no bias)."""
    from scipy.optimize import brentq

    def gap(q):
        return length_map(activation, q, sigma_w, sigma_b, bias) - q

    grid = np.concatenate([[0.0], np.logspace(-12, 8, 81)])
    gaps = np.array([gap(q) for q in grid])
    if gaps[-1] > 0:
        return float("inf")
    down = np.flatnonzero((gaps[:-1] > 0) & (gaps[1:] <= 0))
    if down.size == 0:
        return 0.0
    i = int(down[-1])
    return float(brentq(gap, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-13))


def chi1(activation, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0) -> float:
    """chi_1 = sigma_w^2 E[f'(bias + sqrt(q*) xi)^2]: the factor by which one layer
    multiplies a perturbation's squared norm, at the length map's fixed point."""
    return _chi1_at(activation, q_star(activation, sigma_w, sigma_b, bias), sigma_w, bias)


def _chi1_at(activation, q: float, sigma_w: float, bias: float) -> float:
    _, df = _functions(activation)
    # q* = 0 is approached, never reached: f' over a vanishing spread (relu: half of the
    # units on, not relu'(0) = 0); unbounded growth: f' over a huge spread
    q = min(max(q, 1e-200), 1e16)
    return sigma_w**2 * gaussian_mean(lambda z: df(z) ** 2, bias, q)


def depth_growth_rate(activation, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0):
    """The mean-field growth of the log gradient norm per layer, 0.5 ln chi_1 (natural log)."""
    return 0.5 * float(np.log(chi1(activation, sigma_w, sigma_b, bias)))


def _nodes(mean: float, var: float) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D rule of :func:`gaussian_mean` as (xi, weights), graded towards the kink."""
    x, w = np.polynomial.legendre.leggauss(NODES)
    edges = np.linspace(-XI, XI, 97)
    if var > 0:
        kink = -mean / np.sqrt(var)
        steps = np.logspace(-9, 0, 46)
        edges = np.concatenate([edges, kink - steps, kink + steps, [kink]])
    edges = np.unique(np.clip(edges, -XI, XI))
    lo, hi = edges[:-1, None], edges[1:, None]
    xi = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
    return xi, (0.5 * (hi - lo) * w).ravel() * np.exp(-0.5 * xi**2) / np.sqrt(2 * np.pi)


#: The rule of each axis of :func:`gaussian_mean2`: Gauss-Legendre nodes per panel, panels.
NODES2, PANELS2 = 8, 48


def _nodes2() -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(NODES2)
    edges = np.linspace(-XI, XI, PANELS2 + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    xi = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
    return xi, (0.5 * (hi - lo) * w).ravel() * np.exp(-0.5 * xi**2) / np.sqrt(2 * np.pi)


def gaussian_mean2(g1: Callable, g2: Callable, mean: float, var: float, c: float) -> float:
    """E[g1(u1) g2(u2)] for (u1, u2) Gaussian of mean ``mean``, variance ``var`` each and
    correlation ``c`` in [-1, 1]: u1 = mean + sqrt(var) z1, u2 = mean + sqrt(var) (c z1 +
    sqrt(1 - c^2) z2), a product of composite Gauss-Legendre rules over z1 and z2 (384
    nodes each; c = 1 is :func:`gaussian_mean` of g1 g2). Against erf's closed forms
    (tested): 1e-7 up to var = 3, 1e-5 at var = 40 (tanh's q* at sigma_w = 5 is about 20);
    at var = 1000 the derivative's peak, 0.03 wide, is not resolved (a 5% error)."""
    c = float(np.clip(c, -1.0, 1.0))
    if c == 1.0:
        return gaussian_mean(lambda z: g1(z) * g2(z), mean, var)
    z, w = _nodes2()
    s = np.sqrt(var)
    u2 = mean + s * (c * z[:, None] + np.sqrt(1 - c * c) * z[None, :])
    return float(np.dot(w, g1(mean + s * z) * (g2(u2) @ w)))


def _finite_q(activation, sigma_w, sigma_b, bias) -> float:
    """q*, or NaN where it is 0 or infinite (no fixed point to expand around)."""
    q = q_star(activation, sigma_w, sigma_b, bias)
    return q if 0 < q < np.inf else float("nan")


def correlation_map(activation, c: float, sigma_w: float, sigma_b: float = 0.0, bias=0.0):
    """One step of the correlation map at the length map's fixed point q*: (sigma_w^2
    E[f(u1) f(u2)] + sigma_b^2) / q*. NaN where q* is 0 or infinite."""
    q = _finite_q(activation, sigma_w, sigma_b, bias)
    return _cmap(_functions(activation)[0], q, c, sigma_w, sigma_b, bias)


def _cmap(f, q, c, sigma_w, sigma_b, bias) -> float:
    if not np.isfinite(q):
        return float("nan")
    return (sigma_w**2 * gaussian_mean2(f, f, bias, q, c) + sigma_b**2) / q


def chi_c(activation, c: float, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0):
    """The slope of the correlation map at c: sigma_w^2 E[f'(u1) f'(u2)] (chi_1 at c = 1)."""
    return _chi_c_at(activation, _finite_q(activation, sigma_w, sigma_b, bias), c, sigma_w, bias)


def _chi_c_at(activation, q: float, c: float, sigma_w: float, bias: float) -> float:
    if not np.isfinite(q):
        return float("nan")
    _, df = _functions(activation)
    return sigma_w**2 * gaussian_mean2(df, df, bias, q, c)


def c_star(activation, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0) -> float:
    """The stable fixed point of the correlation map: 1 in the ordered phase (chi_1 <= 1),
    else its root in [0, 1) (the map is >= 0 at c = 0, and falls below c just under the
    unstable c = 1), by Brent's method; NaN where q* is 0 or infinite."""
    q = _finite_q(activation, sigma_w, sigma_b, bias)
    return _c_star_at(activation, q, sigma_w, sigma_b, bias)


def _c_star_at(activation, q: float, sigma_w: float, sigma_b: float, bias: float) -> float:
    from scipy.optimize import brentq

    if not np.isfinite(q):
        return float("nan")
    if _chi1_at(activation, q, sigma_w, bias) <= 1.0:
        return 1.0
    f = _functions(activation)[0]

    def gap(c):
        return _cmap(f, q, c, sigma_w, sigma_b, bias) - c

    top = 1.0 - 1e-6
    if gap(0.0) <= 0.0:
        return 0.0
    if gap(top) >= 0.0:  # chi_1 just above 1: the root is within 1e-6 of 1
        return top
    return float(brentq(gap, 0.0, top, xtol=1e-13))


def depth_scales(activation, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0) -> dict:
    """The mean-field summaries of one (activation, sigma_w, sigma_b, bias): ``q_star``,
    ``chi_1``, ``signal_depth_scale`` xi_c = -1 / ln chi_c(c*) and ``gradient_depth_scale``
    xi_grad = -1 / ln chi_1 (layers; negative when gradients grow; inf on the critical
    line). The signal depth scale is NaN where q* is 0 or infinite (no correlation to
    expand around)."""
    q = q_star(activation, sigma_w, sigma_b, bias)
    x1 = _chi1_at(activation, q, sigma_w, bias)
    out = dict(q_star=q, chi_1=x1, signal_depth_scale=np.nan, gradient_depth_scale=np.nan)
    if 0 < x1 < np.inf:
        out["gradient_depth_scale"] = float(-1.0 / np.log(x1)) if x1 != 1 else np.inf
    if not 0 < q < np.inf:
        return out
    with np.errstate(divide="ignore"):
        cs = _c_star_at(activation, q, sigma_w, sigma_b, bias)
        slope = _chi_c_at(activation, q, cs, sigma_w, bias)
        out["signal_depth_scale"] = float(-1.0 / np.log(slope)) if slope != 1 else np.inf
    return out


def critical_sigma_w(activation, sigma_b: float = 0.0, bias: float = 0.0, hi: float = 20.0):
    """The order-to-chaos line: the sigma_w at which chi_1 = 1 for this sigma_b (its first
    crossing from below on a scan of [0.1, ``hi``], refined by Brent's method; NaN when
    chi_1 does not cross 1 there)."""
    from scipy.optimize import brentq

    def gap(sw):
        return np.log(chi1(activation, sw, sigma_b, bias))

    grid = np.geomspace(0.1, hi, 12)
    gaps = np.array([gap(g) for g in grid])
    cross = np.flatnonzero((gaps[:-1] < 0) & (gaps[1:] >= 0))
    if cross.size == 0:
        return float("nan")
    i = int(cross[0])
    return float(brentq(gap, grid[i], grid[i + 1], xtol=1e-12))
