"""Seeded, deterministic recurrent weights and input directions.

Common random numbers: for one ``(seed, n, kind)`` the base matrix is always the same, and the
scalings (spectral radius, largest singular value or gain) only rescale it, so curves vary
smoothly along a swept dimension. Every random draw is keyed by the case's own coordinates
through :func:`case_rng`, never by block size, worker count or order.
"""

from __future__ import annotations

import zlib

import numpy as np

from ._memory import check_memory
from .cells import CELLS

__all__ = [
    "CELL_GATES",
    "INITS",
    "WEIGHT_KINDS",
    "base_matrix",
    "case_rng",
    "dominant_complement",
    "impulse_direction",
    "init_layers",
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


def base_matrix(n: int, kind: str, seed: int = 0, layer: int = 0) -> np.ndarray:
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
    layer : int
        The layer of a stacked network (each layer draws its own matrix; layer 0 is the
        matrix of a single-layer network).

    Returns
    -------
    numpy.ndarray
        float64 array of shape (n, n).
    """
    from ._validate import check_int

    n = check_int("n", n, 1)
    check_memory(3 * 8 * float(n) ** 2, "choose a smaller n")  # the matrix and QR's copies
    if kind == "identity":
        return np.eye(n)
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"unknown weight kind {kind!r}: use one of {', '.join(WEIGHT_KINDS)}")
    rng = case_rng(seed, n, "weights" if layer == 0 else f"weights/{layer}", kind)
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
    if not target > 0 or not np.isfinite(target):
        raise ValueError(f"the {what} must be a positive finite number, got {target}")
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


def dominant_complement(W: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """The spectral projector onto the complement of W's dominant eigenspace (real).

    The dominant group is every eigenvalue whose modulus is within ``rtol`` of the largest
    (both members of a complex-conjugate pair, any ties); the projector
    ``I - V_D (V^-1)_D`` (an oblique projection with the left eigenvectors, orthogonal when W
    is symmetric) commutes with W.

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
    return np.eye(W.shape[0]) - np.real(V[:, dominant] @ Vinv[dominant, :])


def remove_dominant_component(W: np.ndarray, u: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Remove from ``u`` its component along the dominant eigenvector(s) of ``W``.

    Writing ``u = sum_i a_i v_i`` in the eigenbasis of ``W``, the terms whose eigenvalue has
    the largest modulus (both members of a complex-conjugate pair, and any ties within
    ``rtol``) are removed: ``u`` times :func:`dominant_complement`. ``W^t u`` then grows like
    ``|lambda_2|^t`` instead of ``|lambda_1|^t`` until rounding errors of size
    ``eps |lambda_1|^t`` catch up; :func:`rnnlab.engine.simulate_rnn` projects the response
    of a linear recursion every step, so that they never do.

    The result is not renormalised (its norm is at most that of ``u`` for symmetric W).

    Raises
    ------
    ValueError
        If ``W`` is not diagonalisable to working precision.
    """
    W, u = np.asarray(W, dtype=np.float64), np.asarray(u)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be one square matrix (n, n), got shape {W.shape}")
    if u.shape != (W.shape[0],):
        raise ValueError(f"u must be a vector of length n = {W.shape[0]}, got shape {u.shape}")
    if not (np.isfinite(W).all() and np.isfinite(u).all()):
        raise ValueError("W and u must be finite")
    return (dominant_complement(W, rtol) @ u).astype(u.dtype)


#: Number of gate blocks in the weight rows of each cell (PyTorch's layout: i, f, g, o for
#: the LSTM, r, z, n for the GRU), from the cell table.
CELL_GATES = {name: cell.gates for name, cell in CELLS.items()}

#: Initialisations of :func:`init_layers`.
INITS = ("pytorch", "normal", "uniform", "orthogonal")


def init_layers(
    cell: str,
    n: int,
    layers: int = 1,
    *,
    input_size: int = 1,
    init: str = "pytorch",
    scale: float | None = None,
    forget_bias: float = 0.0,
    peepholes: bool = False,
    gate_recurrence: bool = False,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """Seeded weights of a layered network, in PyTorch's layout.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "cec"}
        The cell; sets the number of gate blocks G (1, 4, 3, 1).
    n : int
        Hidden units per layer (H).
    layers : int
        Number of stacked layers.
    input_size : int
        Size of the input of the first layer.
    init : {"pytorch", "normal", "uniform", "orthogonal"}
        ``"pytorch"``: every weight and bias U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default).
        ``"normal"``: weights N(0, scale^2), biases 0. ``"uniform"``: weights U(-scale, scale),
        biases 0. ``"orthogonal"``: each H x H gate block of ``weight_hh`` an independent
        Haar-orthogonal matrix times ``scale``; ``weight_ih`` and biases as for "pytorch".
    scale : float, optional
        s of N(0, s^2), a of U(-a, a), or the gain of the orthogonal blocks (default 1; not
        used by "pytorch").
    forget_bias : float
        Added to the forget-gate rows of ``bias_ih`` (LSTM only; a common trick to make the
        cell remember by default).
    peepholes : bool
        Add ``weight_peephole`` (3, H): the peephole weights p_i, p_f, p_o (LSTM only).
    gate_recurrence : bool
        Add ``weight_gate`` (3H, 3H): the recurrent weights from the previous step's gates
        i, f, o to the gates i, f, o (LSTM variant FGR).
    seed : int
        Seed; the same ``(seed, cell, n, layers, input_size, init)`` always gives the same
        draws, rescaled by ``scale`` (common random numbers along a swept scale).

    Returns
    -------
    list of dict
        One dict per layer with ``weight_ih`` (G H, input_size or H), ``weight_hh`` (G H, H),
        ``bias_ih`` and ``bias_hh`` (G H,), plus the optional arrays above.
    """
    if cell not in CELL_GATES:
        raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELL_GATES)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)}")
    from ._validate import check_int

    n, layers = check_int("n", n, 1), check_int("layers", layers, 1)
    input_size = check_int("input_size", input_size, 1)
    if init == "pytorch" and scale is not None:
        raise ValueError("init 'pytorch' has no scale: drop scale or choose another init")
    G = CELL_GATES[cell]
    check_memory(
        8.0 * layers * (G * n * (n + max(n, input_size)) + 9 * n * n * gate_recurrence),
        "choose a smaller n or fewer layers",
    )
    s = 1.0 if scale is None else float(scale)
    k = 1.0 / np.sqrt(n)
    out = []
    for layer in range(layers):
        rng = case_rng(seed, n, f"{cell}/{layer}/{input_size}", init)
        nin = input_size if layer == 0 else n
        d: dict[str, np.ndarray] = {}
        if init == "normal":
            d["weight_ih"] = s * rng.standard_normal((G * n, nin))
            d["weight_hh"] = s * rng.standard_normal((G * n, n))
            d["bias_ih"] = np.zeros(G * n)
            d["bias_hh"] = np.zeros(G * n)
        elif init == "uniform":
            d["weight_ih"] = s * rng.uniform(-1.0, 1.0, (G * n, nin))
            d["weight_hh"] = s * rng.uniform(-1.0, 1.0, (G * n, n))
            d["bias_ih"] = np.zeros(G * n)
            d["bias_hh"] = np.zeros(G * n)
        else:
            d["weight_ih"] = k * rng.uniform(-1.0, 1.0, (G * n, nin))
            d["weight_hh"] = k * rng.uniform(-1.0, 1.0, (G * n, n))
            d["bias_ih"] = k * rng.uniform(-1.0, 1.0, G * n)
            d["bias_hh"] = k * rng.uniform(-1.0, 1.0, G * n)
            if init == "orthogonal":
                blocks = []
                for _ in range(G):
                    q, r = np.linalg.qr(rng.standard_normal((n, n)))
                    blocks.append(s * q * np.where(np.diag(r) < 0, -1.0, 1.0))
                d["weight_hh"] = np.concatenate(blocks, axis=0)
        if cell == "lstm":
            d["bias_ih"][n : 2 * n] += forget_bias
            if peepholes:
                prng = case_rng(seed, n, f"lstm/{layer}/peephole", init)
                d["weight_peephole"] = _extra(prng, init, s, k, (3, n))
            if gate_recurrence:
                grng = case_rng(seed, n, f"lstm/{layer}/gates", init)
                d["weight_gate"] = _extra(grng, init, s, k, (3 * n, 3 * n))
        out.append(d)
    return out


def _extra(rng, init, s, k, shape):
    if init == "normal":
        return s * rng.standard_normal(shape)
    if init == "uniform":
        return s * rng.uniform(-1.0, 1.0, shape)
    return k * rng.uniform(-1.0, 1.0, shape)
