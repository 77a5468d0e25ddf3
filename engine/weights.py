"""Seeded, deterministic recurrent weights and input directions.

Common random numbers: for one ``(seed, n, kind)`` the base matrix is always the same, and the
scalings (spectral radius, largest singular value or gain) only rescale it, so curves vary
smoothly along a swept dimension. Every random draw is keyed by the case's own coordinates
through :func:`case_rng`, never by block size, worker count or order.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = [
    "WEIGHT_KINDS",
    "base_matrix",
    "case_rng",
    "impulse_direction",
    "recurrent_matrix",
    "remove_dominant_component",
    "scale_matrix",
]

#: Kinds of recurrent matrix: gaussian N(0, 1/n) entries, Haar-orthogonal, symmetric
#: (GOE, entries N(0, 1/n)), identity, and diagonal with entries uniform in [-1, 1].
WEIGHT_KINDS = ("gaussian", "orthogonal", "symmetric", "identity", "diagonal")


def _stream_key(name: str) -> int:
    # A stable small integer per stream name (Python's hash() is salted per process).
    return zlib.crc32(name.encode())


def case_rng(seed: int, n: int, stream: str, kind: str = "") -> np.random.Generator:
    """The random generator of one case's stream.

    Parameters
    ----------
    seed, n : int
        The case's seed and size.
    stream : str
        What is drawn: ``"weights"``, ``"direction"``, ``"noise"``, ...
    kind : str
        The weight kind, for the ``"weights"`` stream.

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator whose state depends only on the arguments.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    ss = np.random.SeedSequence([int(seed), int(n), _stream_key(stream), _stream_key(kind)])
    return np.random.default_rng(ss)


def base_matrix(n: int, kind: str, seed: int = 0) -> np.ndarray:
    """The unscaled recurrent matrix of one ``(seed, n, kind)``.

    Parameters
    ----------
    n : int
        Number of hidden units (>= 1).
    kind : {"gaussian", "orthogonal", "symmetric", "identity", "diagonal"}
        ``gaussian``: i.i.d. N(0, 1/n), so that the gain ``g`` gives N(0, g^2/n) and a spectral
        radius near ``g`` for large n (circular law). ``orthogonal``: Haar-distributed (QR of a
        gaussian matrix with the signs of R's diagonal fixed). ``symmetric``: (A + A^T)/sqrt(2n)
        with A i.i.d. N(0, 1), real eigenvalues in about [-2, 2]. ``identity``. ``diagonal``:
        entries uniform in [-1, 1].
    seed : int
        The case's seed.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (n, n).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if kind == "identity":
        return np.eye(n)
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"unknown weight kind {kind!r}: use one of {', '.join(WEIGHT_KINDS)}")
    rng = case_rng(seed, n, "weights", kind)
    if kind == "gaussian":
        return rng.standard_normal((n, n)) / np.sqrt(n)
    if kind == "orthogonal":
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        return q * np.where(np.diag(r) < 0, -1.0, 1.0)
    if kind == "symmetric":
        a = rng.standard_normal((n, n))
        return (a + a.T) / np.sqrt(2.0 * n)
    return np.diag(rng.uniform(-1.0, 1.0, n))  # diagonal


def scale_matrix(
    base: np.ndarray,
    *,
    spectral_radius: float | None = None,
    max_singular_value: float | None = None,
    gain: float | None = None,
) -> np.ndarray:
    """Rescale a base matrix to a target spectral radius, largest singular value or gain.

    Exactly one of the three targets must be given. A zero matrix can only be scaled by gain.

    Raises
    ------
    ValueError
        If not exactly one target is given, or the base matrix is zero.
    """
    given = [x is not None for x in (spectral_radius, max_singular_value, gain)]
    if sum(given) != 1:
        raise ValueError(
            "give exactly one of spectral_radius, max_singular_value or gain to scale the matrix"
        )
    if gain is not None:
        return base * float(gain)
    if spectral_radius is not None:
        current = np.max(np.abs(np.linalg.eigvals(base)))
        target = float(spectral_radius)
        what = "spectral radius"
    else:
        current = np.linalg.norm(base, 2)
        target = float(max_singular_value)
        what = "largest singular value"
    if current == 0:
        raise ValueError(f"cannot scale a matrix whose {what} is 0 to {target}")
    return base * (target / current)


def recurrent_matrix(
    n: int,
    kind: str = "gaussian",
    seed: int = 0,
    *,
    spectral_radius: float | None = None,
    max_singular_value: float | None = None,
    gain: float | None = None,
) -> np.ndarray:
    """A seeded recurrent matrix, scaled: ``scale_matrix(base_matrix(n, kind, seed), ...)``.

    With no target given, the base matrix is returned (gain 1).

    Examples
    --------
    >>> W = recurrent_matrix(64, "gaussian", seed=3, spectral_radius=1.1)
    >>> bool(np.isclose(np.abs(np.linalg.eigvals(W)).max(), 1.1))
    True
    """
    base = base_matrix(n, kind, seed)
    if spectral_radius is None and max_singular_value is None and gain is None:
        return base
    return scale_matrix(
        base, spectral_radius=spectral_radius, max_singular_value=max_singular_value, gain=gain
    )


def impulse_direction(n: int, seed: int = 0) -> np.ndarray:
    """The default unit input direction ``u`` of a case: a seeded uniform random unit vector.

    For ``n == 1`` it is ``[1.0]``, so that the scalar input enters with ``c = 1``.
    """
    if n == 1:
        return np.ones(1)
    v = case_rng(seed, n, "direction").standard_normal(n)
    return v / np.linalg.norm(v)


def remove_dominant_component(W: np.ndarray, u: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Remove from ``u`` its component along the dominant eigenvector(s) of ``W``.

    Writing ``u = sum_i a_i v_i`` in the eigenbasis of ``W``, the terms whose eigenvalue has
    the largest modulus (both members of a complex-conjugate pair, and any ties within
    ``rtol``) are removed (an oblique projection with the left eigenvectors; orthogonal when W
    is symmetric). ``W^t u`` then grows like ``|lambda_2|^t`` instead of ``|lambda_1|^t``, until
    rounding errors of size ``eps |lambda_1|^t`` catch up.

    The result is not renormalised (its norm is at most that of ``u`` for symmetric W).

    Raises
    ------
    ValueError
        If ``W`` is not diagonalisable to working precision.
    """
    lam, V = np.linalg.eig(W)
    if np.linalg.cond(V) > 1e10:
        raise ValueError("W is not diagonalisable to working precision; cannot remove a component")
    Vinv = np.linalg.inv(V)
    mod = np.abs(lam)
    dominant = mod >= mod.max() * (1.0 - rtol)
    coeffs = Vinv @ u
    removed = V[:, dominant] @ coeffs[dominant]
    return np.real(u - removed).astype(u.dtype)
