"""Lyapunov spectra: the starting vectors of the layered kernel's QR method, and the
spectrum's summaries (Kaplan-Yorke dimension, entropy rate).

The kernel (:mod:`._driver`) propagates k tangent vectors with the step's Jacobian and
re-orthonormalises them after every step (QR); the logs of QR's diagonal, summed over the
second half of the run and divided by its length, are the k largest Lyapunov exponents
(Benettin et al. 1980; Eckmann & Ruelle 1985). The vectors start from :func:`starting_vectors`,
a fixed random orthonormal set, so that no exponent is missed for weights whose invariant
directions are the axes (a diagonal W started on e_1 would only ever see |w_11|).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LYAPUNOV_OUTPUTS",
    "entropy_rate",
    "kaplan_yorke_dimension",
    "spectrum_outputs",
    "starting_vectors",
]

#: The variables of the Lyapunov tracker.
LYAPUNOV_OUTPUTS = ("lyapunov_exponents", "kaplan_yorke_dimension", "entropy_rate")


def starting_vectors(dim: int, k: int, seed: int = 0) -> np.ndarray:
    """k orthonormal columns (dim, k) of a seeded Gaussian matrix (k <= dim)."""
    g = np.random.default_rng([seed, dim, k]).standard_normal((dim, k))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))  # the unique Q with a positive diagonal of R


def _sorted(exponents) -> np.ndarray:
    """Descending along the last axis, NaN (exponents beyond the state's dimension) last."""
    return -np.sort(-np.asarray(exponents, dtype=np.float64), axis=-1)


def kaplan_yorke_dimension(exponents, dimension: int | None = None) -> np.ndarray:
    """The Kaplan-Yorke (Lyapunov) dimension of spectra, along the last axis.

    D = j + (lambda_1 + ... + lambda_j) / |lambda_{j+1}|, j the largest index whose partial sum
    is >= 0 (exponents sorted in decreasing order); 0 when lambda_1 < 0.

    Parameters
    ----------
    exponents : array_like
        (..., k) the k largest exponents, in any order; NaN entries (beyond the state's
        dimension) are ignored.
    dimension : int, optional
        The state's dimension. When the k exponents are all of them (k >= dimension), a
        partial sum that never becomes negative gives D = dimension; otherwise it gives NaN
        (ask for more exponents).

    Returns
    -------
    numpy.ndarray
        (...,) float64; NaN for a spectrum with a NaN exponent among its finite ones (a
        blow-up).
    """
    blown = _blown(exponents)
    lam = _sorted(exponents)
    given = np.sum(~np.isnan(lam), axis=-1)
    csum = np.cumsum(np.where(np.isnan(lam), -np.inf, lam), axis=-1)
    j = np.sum(csum >= 0, axis=-1)  # the partial sums fall once negative: a count is an index
    nxt = np.take_along_axis(lam, np.minimum(j, lam.shape[-1] - 1)[..., None], axis=-1)[..., 0]
    prev = np.take_along_axis(csum, np.maximum(j - 1, 0)[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = np.where(j > 0, j + prev / np.abs(nxt), 0.0)
    out = np.where(j < given, inside, np.where(_complete(given, dimension), given, np.nan))
    return np.where(blown, np.nan, out)


def entropy_rate(exponents, dimension: int | None = None) -> np.ndarray:
    """The sum of the positive Lyapunov exponents (nats per step), along the last axis: the
    Kolmogorov-Sinai entropy rate by Pesin's formula (an upper bound in general, equal for
    the attractors of these maps).

    Parameters
    ----------
    exponents, dimension :
        As in :func:`kaplan_yorke_dimension`: NaN when the smallest of an incomplete set
        of exponents is still positive (more may be), or for a blow-up.
    """
    blown = _blown(exponents)
    lam = _sorted(exponents)
    given = np.sum(~np.isnan(lam), axis=-1)
    smallest = np.take_along_axis(lam, np.maximum(given - 1, 0)[..., None], axis=-1)[..., 0]
    h = np.where(lam > 0, lam, 0.0).sum(axis=-1)
    ok = _complete(given, dimension) | (smallest <= 0)
    return np.where(ok & ~blown, h, np.nan)


def _complete(given: np.ndarray, dimension: int | None) -> np.ndarray:
    """Whether the given exponents are the whole spectrum of a state of that dimension."""
    return given >= dimension if dimension else np.zeros(given.shape, dtype=bool)


def _blown(exponents) -> np.ndarray:
    """Spectra (in the kernel's order, before sorting) whose exponents are all NaN, or with
    a NaN before a finite one (a blow-up; NaN padding comes only at the end)."""
    lam = np.asarray(exponents, dtype=np.float64)
    finite_after_nan = np.any(np.isnan(lam[..., :-1]) & ~np.isnan(lam[..., 1:]), axis=-1)
    return np.all(np.isnan(lam), axis=-1) | finite_after_nan


def spectrum_outputs(spectra: np.ndarray, k: int, dimension: int) -> dict[str, np.ndarray]:
    """The tracker's variables from the kernel's exponents (cases, min(k, dimension)), in
    column order: ``lyapunov_exponents`` (cases, k) sorted, NaN beyond the dimension, and
    its two summaries."""
    lam = np.full((spectra.shape[0], k), np.nan)
    lam[:, : spectra.shape[1]] = _sorted(spectra)
    return {
        "lyapunov_exponents": lam,
        "kaplan_yorke_dimension": kaplan_yorke_dimension(lam, dimension),
        "entropy_rate": entropy_rate(lam, dimension),
    }
