"""Numba options in one place, and the one low-level intrinsic the engine needs.

Every kernel of the engine is compiled through :func:`jit`, so that the options that make
the lane loops vectorise are set once:

- ``error_model="numpy"``: a float division by zero gives inf/NaN instead of raising. Python's
  model inserts a branch before every division, which stops LLVM from vectorising the loop
  (measured: the lane loop of the tanh kernel went from scalar ``xmm`` code to ``zmm`` code).
- ``fastmath={"contract"}``: allow fused multiply-add only. No reassociation, no
  reciprocal approximation: results stay within a few ulp of the NumPy references. (One
  exception, stated where it is: the sum of squares that renormalises the layered networks'
  Jacobian product is reassociated so that it vectorises; it only sets a scale factor.)
- ``nogil=True``: kernels run in threaded Dask workers.
- ``cache=True``: a worker's first call loads machine code from ``__pycache__`` in milliseconds.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

FASTMATH = {"contract"}

_DEFAULTS = {"nogil": True, "cache": True, "fastmath": set(FASTMATH), "error_model": "numpy"}


def jit(func=None, **options):
    """``numba.njit`` with the engine's default options (overridable by keyword)."""
    opts = {**_DEFAULTS, **options}
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


@intrinsic
def int64_bits_as_float64(typingctx, x):
    """Reinterpret the bits of an int64 as a float64 (C++ ``std::bit_cast``).

    Used to build 2**n from its exponent field; LLVM vectorises the bitcast, unlike a call
    to ``ldexp``.
    """
    if not isinstance(x, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen
