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

The float32 versions (``exp32``, ``expm1_32``) do the same in single precision, every
operation and constant float32 (16 lanes per AVX-512 register instead of 8): the Taylor
series to degree 7 (truncation < 1.3e-8 relative), 2**n from the bits of a float32, x
clamped to [-87, 88]. Against float64 ``np.expm1``/``np.exp``: within 2 float32 ulps.
"""

from __future__ import annotations

import numpy as np

from ._jit import (
    float32_bits_as_int32,
    float64_bits_as_int64,
    int32_bits_as_float32,
    int64_bits_as_float64,
    jit,
)

__all__ = [
    "EXP32_MAX_ARG",
    "EXP32_MIN_ARG",
    "EXP_MAX_ARG",
    "EXP_MIN_ARG",
    "exp",
    "exp32",
    "exp_parts",
    "expm1",
    "expm1_32",
]

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


_F = np.float32
_LOG2E_32 = _F(1.442695)
_LN2_HI_32 = _F(0.693359375)  # 8 trailing zero bits: n * _LN2_HI_32 is exact for |n| < 256
_LN2_LO_32 = _F(-2.12194440e-4)
_SHIFT_32 = _F(12582912.0)  # 1.5 * 2**23
_SHIFT_BITS_32 = 0x4B400000
_C32 = tuple(_F(1.0 / k) for k in (5040.0, 720.0, 120.0, 24.0, 6.0, 2.0))

#: Largest and smallest arguments for which 2**n is a normal float32.
EXP32_MAX_ARG = _F(88.0)
EXP32_MIN_ARG = _F(-87.0)


@jit
def exp_parts32(x):
    """:func:`exp_parts` for a float32 x in [-87, 88], in float32."""
    t = x * _LOG2E_32 + _SHIFT_32
    n = t - _SHIFT_32
    r = (x - n * _LN2_HI_32) - n * _LN2_LO_32
    c7, c6, c5, c4, c3, c2 = _C32
    p = c7
    p = p * r + c6
    p = p * r + c5
    p = p * r + c4
    p = p * r + c3
    p = p * r + c2
    p = p * r * r + r
    bits = np.int32((float32_bits_as_int32(t) - (_SHIFT_BITS_32 - 127)) << 23)
    return int32_bits_as_float32(bits), p


@jit
def expm1_32(x):
    """:func:`expm1` of a float32, in float32, for x in [-87, 88] (clamped)."""
    x = min(max(x, EXP32_MIN_ARG), EXP32_MAX_ARG)
    s, p = exp_parts32(x)
    return s * p + (s - _F(1.0))


@jit
def exp32(x):
    """:func:`exp` of a float32, in float32, for x in [-87, 88] (clamped)."""
    x = min(max(x, EXP32_MIN_ARG), EXP32_MAX_ARG)
    s, p = exp_parts32(x)
    return s + s * p
