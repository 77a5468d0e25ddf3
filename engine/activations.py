"""The activation table: every activation the engine knows, in one place.

Each activation is a jitted function ``f(z) -> (f(z), f'(z))`` that uses only vectorisable
arithmetic (see :mod:`rnnlab.engine.fastexp`), plus the facts the analysis needs: the bound
``gamma = sup |f'|`` of the gradient theory and whether the activation is bounded (BIBO).

The scalar kernel calls :func:`activate` with the activation's integer ``code`` frozen as a
constant, so that it is compiled once per activation with the other branches removed (the
lane loop must vectorise). The vector and layered kernels call :func:`activate_into` once
per layer and step with the code as a run-time argument: the switch sits outside the loop
over units, and those kernels are compiled once for every activation. (Passing the jitted
function itself as an argument would inline too, but Numba's cache then misses in every new
process, so every Dask worker would recompile for seconds.)

To add an activation, in this file only: write its function and its float32 function, add
its :class:`Activation` row to ``ACTIVATIONS`` with the next code, and its branches to
:func:`activate` and :func:`activate_into`. Every kernel, the sweep specs and the analysis
pick it up by name.

Every function propagates NaN (a NaN input gives a NaN value), so that a blow-up is recorded
and never hidden by a clamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._jit import jit
from .fastexp import exp, exp32, expm1, expm1_32

__all__ = [
    "ACTIVATIONS",
    "F32",
    "Activation",
    "activate",
    "activate_into",
    "get_activation",
]

#: Added to an activation's code to select its float32 function (``activate(code + F32, z)``
#: for a float32 ``z``): every operation and constant float32.
F32 = 16

# tanh(z) == copysign(1, z) in float64 for |z| > 19.1; the derivative 4 e^{-2|z|} stays a
# normal float64 up to |z| ~ 354 (1.3e-307) and is 0 beyond (as 1 / cosh(z)^2 is in NumPy):
# held at its value at 354 instead, a huge weight times it gave a false positive growth
# rate. The same for sigmoid' = e^{-|z|} / (1 + e^{-|z|})^2 beyond 709 (1.2e-308).
_TANH_CLAMP = 354.0
_SIGMOID_CLAMP = 709.0
_TANH_SMALL = 2.0**-27


@jit
def identity(z):
    """Identity (the linear recursion): f(z) = z, f'(z) = 1."""
    return z, 1.0


@jit
def relu(z):
    """Rectifier: f(z) = max(z, 0), f'(z) = 1 for z > 0 else 0 (PyTorch's convention at 0)."""
    value = 0.0 if z < 0.0 else z  # NaN is not < 0, so NaN passes through
    deriv = 1.0 if z > 0.0 else 0.0
    return value, deriv


@jit
def tanh(z):
    """Hyperbolic tangent with an accurate derivative.

    ``E = expm1(2|z|)``, ``tanh|z| = E / (E + 2)`` and ``1 - tanh^2 = 4 (E + 1) / (E + 2)^2``:
    the derivative keeps full relative accuracy in saturation, where ``1 - tanh(z)**2`` would
    round to 0 (|z| > 19). Below 2^-27, z and 1 (their rounded values), without evaluating
    the polynomial on z (whose products of a decaying state would be subnormal, which is
    slow); the clamp to 2^-27 and the test after it, rather than :func:`tanh32`'s choice of
    argument, are the form that vectorises in float64 (the other ran 6x-7x slower).
    """
    a = min(abs(z), _TANH_CLAMP)
    e = expm1(2.0 * max(a, _TANH_SMALL))
    q = 1.0 / (e + 2.0)
    value = e * q
    deriv = 4.0 * (e + 1.0) * q * q
    if a < _TANH_SMALL:
        value = a
        deriv = 1.0
    if abs(z) > _TANH_CLAMP:
        deriv = 0.0
    if z < 0.0:
        value = -value
    if z != z:
        value = z
        deriv = z
    return value, deriv


@jit
def sigmoid(z):
    """Logistic sigmoid 1 / (1 + e^-z), with an accurate derivative in both tails.

    With ``P = e^|z|``: sigmoid(|z|) = 1 - 1 / (1 + P), sigmoid(-|z|) = 1 / (1 + P) and
    sigmoid' = P / (1 + P)^2, each with full relative accuracy.
    """
    p = exp(min(abs(z), _SIGMOID_CLAMP))
    q = 1.0 / (1.0 + p)
    # 1 - q (q <= 1/2, so no cancellation) rounds to exactly 1 in saturation, where p * q
    # can land one ulp below: a forget gate at 1 must keep the cell exactly
    high = 1.0 - q
    deriv = high * q
    if abs(z) > _SIGMOID_CLAMP:
        deriv = 0.0
    value = high if z >= 0.0 else q
    if z != z:
        value = z
        deriv = z
    return value, deriv


_F = np.float32
# float32 saturation: tanh(z) == copysign(1, z) for |z| > 9.1; the derivative 4 e^{-2|z|}
# is a normal float32 up to |z| = 43.67 and is 0 beyond 43.6 (5.4e-38 there); sigmoid' =
# e^{-|z|} is normal up to |z| = 87.3 and is 0 beyond 87 (1.6e-38 at 87), where
# sigmoid(-|z|) is held at its value at 87 (float32's subnormal range lies below it).
_TANH32_CLAMP = _F(43.6)
# Below 2^-13, tanh(z) rounds to z and 1 - tanh(z)^2 to 1 in float32: the polynomial is not
# evaluated there, whose products of tiny numbers would be subnormal (a subnormal result is
# slow on x86: a decaying state, tanh(w h) with |w| < 1, made the float32 kernel 3.5x slower)
_TANH32_SMALL = _F(2.0**-13)
_SIGMOID32_CLAMP = _F(87.0)


@jit
def identity32(z):
    """:func:`identity` of a float32, in float32."""
    return z, _F(1.0)


@jit
def relu32(z):
    """:func:`relu` of a float32, in float32."""
    value = _F(0.0) if z < _F(0.0) else z
    deriv = _F(1.0) if z > _F(0.0) else _F(0.0)
    return value, deriv


@jit
def tanh32(z):
    """:func:`tanh` of a float32, in float32 (:func:`rnnlab.engine.fastexp.expm1_32`), with
    ``1 - tanh^2 = 4 q (1 - q)``, ``q = 1 / (E + 2)``: full relative accuracy of the
    derivative down to float32's smallest normal number (|z| = 43.6)."""
    a = min(abs(z), _TANH32_CLAMP)
    small = a < _TANH32_SMALL
    e = expm1_32(_F(2.0) * (_TANH32_SMALL if small else a))
    q = _F(1.0) / (e + _F(2.0))
    value = a if small else e * q
    deriv = _F(1.0) if small else _F(4.0) * q * (_F(1.0) - q)
    if abs(z) > _TANH32_CLAMP:
        deriv = _F(0.0)
    if z < _F(0.0):
        value = -value
    if z != z:
        value = z
        deriv = z
    return value, deriv


@jit
def sigmoid32(z):
    """:func:`sigmoid` of a float32, in float32 (:func:`rnnlab.engine.fastexp.exp32`)."""
    p = exp32(min(abs(z), _SIGMOID32_CLAMP))
    q = _F(1.0) / (_F(1.0) + p)
    high = _F(1.0) - q
    deriv = high * q
    if abs(z) > _SIGMOID32_CLAMP:
        deriv = _F(0.0)
    value = high if z >= _F(0.0) else q
    if z != z:
        value = z
        deriv = z
    return value, deriv


@jit
def activate(code, z):
    """``(f(z), f'(z))`` of the activation with this code (a compile-time literal in kernels);
    ``code + F32`` evaluates a float32 ``z`` in float32."""
    # Every branch is typed for the z at hand (LLVM removes the dead ones): each function
    # takes z in its own precision (z itself in a kernel of that precision), so that a
    # kernel compiles no function in the other precision
    if code == 0:
        return identity(np.float64(z))
    if code == 1:
        return sigmoid(np.float64(z))
    if code == 2:
        return tanh(np.float64(z))
    if code == 3:
        return relu(np.float64(z))
    if code == F32:
        return identity32(np.float32(z))
    if code == F32 + 1:
        return sigmoid32(np.float32(z))
    if code == F32 + 2:
        return tanh32(np.float32(z))
    if code == F32 + 3:
        return relu32(np.float32(z))
    return z * np.nan, z * np.nan  # unreachable: the wrapper validates the name


@jit
def activate_into(code, z, value, deriv):
    """``value[u], deriv[u] = f(z[u]), f'(z[u])`` for every u (1-D arrays), with the switch on
    the activation's ``code`` outside the loop so that each loop vectorises."""
    n = z.shape[0]
    if code == 0:
        for u in range(n):
            value[u], deriv[u] = identity(z[u])
    elif code == 1:
        for u in range(n):
            value[u], deriv[u] = sigmoid(z[u])
    elif code == 2:
        for u in range(n):
            value[u], deriv[u] = tanh(z[u])
    elif code == 3:
        for u in range(n):
            value[u], deriv[u] = relu(z[u])
    else:  # unreachable: the wrapper validates the name
        for u in range(n):
            value[u] = np.nan
            deriv[u] = np.nan


@dataclass(frozen=True)
class Activation:
    """One row of the activation table.

    Attributes
    ----------
    name : str
        The name used in specs and in the store's ``activation`` coordinate.
    code : int
        The literal passed to the kernels (its branch in :func:`activate`).
    func : numba dispatcher
        ``func(z) -> (f(z), f'(z))``, jitted, vectorisable, NaN-propagating.
    func32 : numba dispatcher
        The same in float32 arithmetic, for a float32 ``z`` (``activate(code + F32, z)``).
    gamma : float
        ``sup |f'(z)|``: the factor of the gradient bound
        ``||dh(t)/dh(0)|| <= (gamma * sigma_max(W))**t``.
    bounded : bool
        Whether ``f`` is bounded, so that the recursion is BIBO stable for any weights.
    lower, upper : float
        The range of ``f`` (``-inf``/``inf`` when unbounded).
    numpy : callable
        An independent NumPy implementation ``z -> f(z)`` used by the references.
    """

    name: str
    code: int
    func: Any
    func32: Any
    gamma: float
    bounded: bool
    lower: float
    upper: float
    numpy: Any


def _np_identity(z):
    return z


def _np_relu(z):
    return np.where(z < 0, 0.0, z).astype(z.dtype, copy=False)


def _np_tanh(z):
    return np.tanh(z)


def _np_sigmoid(z):
    from scipy.special import expit  # here: importing scipy.special takes 0.2 s, which every
    # process (each Dask worker, each rnnlab command) paid for an import of the engine

    return expit(z).astype(np.asarray(z).dtype, copy=False)


_INF = float("inf")

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", 0, identity, identity32, 1.0, False, -_INF, _INF, _np_identity),
        Activation("sigmoid", 1, sigmoid, sigmoid32, 0.25, True, 0.0, 1.0, _np_sigmoid),
        Activation("tanh", 2, tanh, tanh32, 1.0, True, -1.0, 1.0, _np_tanh),
        Activation("relu", 3, relu, relu32, 1.0, False, 0.0, _INF, _np_relu),
    )
}


def get_activation(name: str) -> Activation:
    """Look up an activation by name.

    Parameters
    ----------
    name : {"identity", "sigmoid", "tanh", "relu"}
        ``"linear"`` is accepted as an alias of ``"identity"``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    if name == "linear":
        name = "identity"
    try:
        return ACTIVATIONS[name]
    except KeyError:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}: use one of {valid} (or 'linear')") from None
