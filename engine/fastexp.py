"""A vectorisable exp/expm1 for the kernels' lane loops.

Numba compiles ``math.exp`` and ``math.tanh`` to scalar libm calls, which stop LLVM from
vectorising a loop over cases (see DESIGN.md, measured 5-10x slower than NumPy's SIMD
``np.tanh``). These functions use only multiply, add and a bitcast, so a loop over a block of
cases compiles to AVX-512/AVX2 code.

Method (classic Cody-Waite): ``x = n ln2 + r`` with ``|r| <= ln2/2``, ``expm1(r)`` by its
Taylor series to degree 13 (truncation error < 2e-17 relative), and ``2**n`` built from the
exponent bits. ``expm1(x) = 2**n expm1(r) + (2**n - 1)`` keeps full relative accuracy near 0,
which the accurate tanh and sigmoid derivatives rely on. Measured against ``np.expm1`` and
``np.exp``: max relative error 4.5e-16 on [-708, 709] (see ``tests/test_fastexp.py``).
"""

from __future__ import annotations

from ._jit import float64_bits_as_int64, int64_bits_as_float64, jit

__all__ = ["EXP_MAX_ARG", "EXP_MIN_ARG", "exp", "exp_parts", "expm1"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to the nearest integer
#: The bits of _SHIFT: t = x log2(e) + _SHIFT lies in [2**52, 2**53), where the ulp is 1, so
#: bits(t) - bits(_SHIFT) is n as an int64 (no float -> int conversion, which AVX2 lacks).
_SHIFT_BITS = 0x4338000000000000

#: Largest and smallest arguments for which 2**n is a normal float64.
EXP_MAX_ARG = 709.0
EXP_MIN_ARG = -708.0


@jit
def exp_parts(x):
    """Return ``(s, p)`` with ``exp(x) = s * (1 + p)``, ``s = 2**n``, for x in [-708, 709].

    The caller clamps x; outside the range the bit pattern of ``s`` is meaningless.
    """
    t = x * _LOG2E + _SHIFT
    n = t - _SHIFT
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r * r + r
    s = int64_bits_as_float64((float64_bits_as_int64(t) - _SHIFT_BITS + 1023) << 52)
    return s, p


@jit
def expm1(x):
    """``exp(x) - 1`` with full relative accuracy, for x in [-708, 709] (clamped)."""
    x = min(max(x, EXP_MIN_ARG), EXP_MAX_ARG)
    s, p = exp_parts(x)
    return s * p + (s - 1.0)


@jit
def exp(x):
    """``exp(x)`` for x in [-708, 709] (clamped), vectorisable."""
    x = min(max(x, EXP_MIN_ARG), EXP_MAX_ARG)
    s, p = exp_parts(x)
    return s + s * p
