"""Jitted numerics shared by every kernel: the input signal, the counter-based noise, norms
that neither overflow nor underflow, and the renormalisation of Jacobian products.

Each function is compiled once per argument types and called (LLVM inlines the small ones)
by the scalar kernel (:mod:`._scalar`) and the layered kernel (:mod:`._driver`).
"""

from __future__ import annotations

import numpy as np

from ._jit import int64_bits_as_float64, jit

__all__ = [
    "INPUT_ARRAY",
    "INPUT_IMPULSE",
    "INPUT_NOISE",
    "INPUT_STEP",
    "input_at",
    "log_slope",
    "noise_uniform",
    "norm",
    "orthonormalise",
    "renormalise",
    "spectral_norm",
]

# Input kinds (the wrappers map names to these codes).
INPUT_IMPULSE = 0  # x(0) = a, x(t > 0) = 0
INPUT_STEP = 1  # x(t) = a for all t >= 0
INPUT_NOISE = 2  # x(t) i.i.d. uniform in [-a, a]
INPUT_ARRAY = 3  # x(t) = xs[case, t], given by the user

# splitmix64 constants (Steele, Lea & Flood 2014), as uint64 so numba stays in integer math.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53
_LOW21 = np.uint64((1 << 21) - 1)
_S21 = np.uint64(21)
_TWO_52_BITS = np.uint64(0x4330000000000000)  # the bits of 2**52
_TWO_52 = 2.0**52


@jit
def noise_uniform(key, t):
    """Counter-based uniform in [0, 1): splitmix64 of ``key + (t + 1) * golden``.

    A case's noise is a pure function of its key and the step, so no per-step noise array is
    ever allocated (10^6 steps x 10^6 cases would not fit) and the result does not depend on
    blocking. ``rnnlab.engine.reference.noise_uniform`` is an independent NumPy version.
    """
    z = key + (np.uint64(t) + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return _exact_float(z >> _S11) * _TWO_M53


@jit(inline="always")
def _exact_float(a):
    """float64(a) of a uint64 a < 2**53, exactly, by bits: 2**52 + v for v < 2**52 is the
    bits of 2**52 with v in the mantissa, for its top 32 and its low 21 bits (AVX2 has no
    vector uint64 -> float64 conversion; AVX-512DQ's ``vcvtuqq2pd`` does the same)."""
    hi = int64_bits_as_float64(_TWO_52_BITS | (a >> _S21)) - _TWO_52
    lo = int64_bits_as_float64(_TWO_52_BITS | (a & _LOW21)) - _TWO_52
    return hi * 2097152.0 + lo  # exact: an integer below 2**53


@jit
def input_at(i, t, input_kind, amp, keys, xs):
    """x(t) of case i."""
    if input_kind == INPUT_NOISE:
        return amp[i] * (2.0 * noise_uniform(keys[i], t) - 1.0)
    if input_kind == INPUT_ARRAY:
        return xs[i, t]
    return amp[i] if (t == 0 or input_kind == INPUT_STEP) else 0.0


@jit
def norm(x):
    """Euclidean norm of a 1-D array without overflow or underflow of the squares.

    The plain sum of squares is used when it is safely inside float64's range (almost always);
    otherwise the sum is recomputed on x / max|x| (LAPACK's dnrm2 does the same in one pass).
    """
    s = 0.0
    big = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        s += v * v
        big = max(big, abs(v))
    if s < 1e300 and s > 1e-300:
        return np.sqrt(s)
    if s != s:  # a NaN entry (max() above may have skipped it: big can read 0)
        return np.nan
    if big == 0.0 or not (big < np.inf):
        return big if big == big else np.nan  # 0, inf, or NaN
    s = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i]) / big  # a division: 1 / big overflows for a subnormal big
        s += v * v
    return big * np.sqrt(s)


@jit
def spectral_norm(M):
    """Largest singular value of M (n, k): sqrt of the top eigenvalue of the smaller Gram matrix.

    The largest singular value is well conditioned (relative error ~ eps), so going through
    the Gram matrix loses nothing for it (it only loses the small singular values).
    """
    n, k = M.shape
    A = M.astype(np.float64)
    G = np.dot(A.T, A) if k <= n else np.dot(A, A.T)
    ev = np.linalg.eigvalsh(G)
    return np.sqrt(max(ev[-1], 0.0))


@jit(fastmath={"contract", "reassoc"})
def _sum_squares(T, c0, c1):
    """Sum of squares of columns c0:c1 of T (L, R, k). Reassociation lets LLVM vectorise the
    reduction (the order of a sum of positive terms changes its rounding only)."""
    L, R, _ = T.shape
    s = 0.0
    for l in range(L):
        for r in range(R):
            for q in range(c0, c1):
                v = np.float64(T[l, r, q])
                s += v * v
    return s


@jit
def _largest(T, c0, c1):
    """max |T[:, :, c0:c1]| (NaN if any entry is NaN)."""
    L, R, _ = T.shape
    big = 0.0
    for l in range(L):
        for r in range(R):
            for q in range(c0, c1):
                v = abs(np.float64(T[l, r, q]))
                if v > big or v != v:
                    big = v
    return big


@jit
def _multiply_columns(T, c0, c1, factor):
    L, R, _ = T.shape
    for l in range(L):
        for r in range(R):
            for q in range(c0, c1):
                T[l, r, q] *= factor


@jit
def _divide_columns(T, c0, c1, divisor):
    L, R, _ = T.shape
    for l in range(L):
        for r in range(R):
            for q in range(c0, c1):
                T[l, r, q] /= divisor


@jit
def renormalise(T, c0, c1):
    """Divide columns c0:c1 of T (L, R, k) by their joint Frobenius norm; return its log.

    -inf for a product that became exactly zero, NaN for a non-finite one (the case blew up).
    """
    s = _sum_squares(T, c0, c1)
    if s < 1e300 and s > 1e-300:
        fro = np.sqrt(s)
        inv = 1.0 / fro
        if inv < np.inf:
            _multiply_columns(T, c0, c1, inv)
        else:  # fro subnormal: 1 / fro overflows, divide instead
            _divide_columns(T, c0, c1, fro)
        return np.log(fro)
    # out of the safe range, zero, inf or NaN: scale by the largest entry first
    big = _largest(T, c0, c1)
    if not (big < np.inf):
        return np.nan
    if big == 0.0:
        return -np.inf
    _divide_columns(T, c0, c1, big)
    rel = np.sqrt(_sum_squares(T, c0, c1))  # in [1, sqrt(entries)]
    _multiply_columns(T, c0, c1, 1.0 / rel)
    return np.log(big) + np.log(rel)


@jit
def log_slope(end, start, span):
    """Per-step growth between two logs; a quantity that reached exactly 0 decays at -inf."""
    if end == -np.inf:
        return -np.inf
    return (end - start) / span


@jit
def orthonormalise(T, c0, A, rlog):
    """Replace the columns c0:c0+k of T (L, R, >= c0 + k), read as vectors of L R entries,
    by the orthonormal Q of their Householder QR (LAPACK, always orthonormal to rounding,
    also for columns that are numerically dependent: a direction the step collapsed);
    rlog[q] = ln |r_qq|, the growth of column q beyond the span of the columns before it.
    A (L R, k) is workspace. A non-finite column gives NaN for every column (the case blew
    up)."""
    L, R, _ = T.shape
    k = A.shape[1]
    finite = True
    for l in range(L):
        for r in range(R):
            for q in range(k):
                v = T[l, r, c0 + q]
                A[l * R + r, q] = v
                if not (abs(v) < np.inf):
                    finite = False
    if not finite:
        rlog[:] = np.nan
        return
    Q, Rm = np.linalg.qr(A)
    for q in range(k):
        rlog[q] = np.log(abs(np.float64(Rm[q, q])))
    for l in range(L):
        for r in range(R):
            for q in range(k):
                T[l, r, c0 + q] = Q[l * R + r, q]
