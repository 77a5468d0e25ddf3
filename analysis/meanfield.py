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
per layer. Expectations are computed by quadrature for any activation (see
:func:`gaussian_mean`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["chi1", "depth_growth_rate", "gaussian_mean", "length_map", "q_star"]

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
    x, w = np.polynomial.legendre.leggauss(NODES)
    edges = np.linspace(-XI, XI, 97)
    if var > 0:
        kink = -mean / np.sqrt(var)
        steps = np.logspace(-9, 0, 46)
        edges = np.concatenate([edges, kink - steps, kink + steps, [kink]])
    edges = np.unique(np.clip(edges, -XI, XI))
    lo, hi = edges[:-1, None], edges[1:, None]
    xi = (0.5 * (hi - lo) * x + 0.5 * (hi + lo)).ravel()
    weight = (0.5 * (hi - lo) * w).ravel() * np.exp(-0.5 * xi**2) / np.sqrt(2 * np.pi)
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

    grid = np.concatenate([[0.0], np.logspace(-12, 8, 241)])
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
    _, df = _functions(activation)
    q = q_star(activation, sigma_w, sigma_b, bias)
    # q* = 0 is approached, never reached: f' over a vanishing spread (relu: half of the
    # units on, not relu'(0) = 0); unbounded growth: f' over a huge spread
    q = min(max(q, 1e-200), 1e16)
    return sigma_w**2 * gaussian_mean(lambda z: df(z) ** 2, bias, q)


def depth_growth_rate(activation, sigma_w: float, sigma_b: float = 0.0, bias: float = 0.0):
    """The mean-field growth of the log gradient norm per layer, 0.5 ln chi_1 (natural log)."""
    return 0.5 * float(np.log(chi1(activation, sigma_w, sigma_b, bias)))
