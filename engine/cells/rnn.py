"""The ``rnn`` cell: h = f(W_ih x + b_ih + g W_hh h' + b_hh), ``torch.nn.RNN``'s equation.

g is a per-case gain, 1 except in deep feed-forward nets (:func:`rnnlab.engine.simulate_mlp`
runs this cell with untied weights s W_t: g = s). The state of a layer is h (H rows).

Every cell module has the same parts, called by the layered kernel (:mod:`.._driver`) for one
layer and one step:

- ``rows(H, flags)``: the rows of the layer's state;
- ``forward(...)``: the new state ``sn`` from the previous one ``sp`` and the input term
  ``ax = W_ih x`` (the kernel computes it: x of the network for layer 0, the new h of the
  layer below otherwise), adding the gates to ``gsum`` and keeping in ``cache`` what the
  derivatives need;
- ``tangent(...)``: the forward-mode derivative (Jacobian-vector product) of that step for k
  columns at once: ``Tn = ds/ds' Tp + ds/d(ax) dax``, from ``cache``;
- ``backward(...)``: the reverse-mode derivative (vector-Jacobian product) of that step for
  one adjoint vector, the exact adjoint of ``forward``: from ``lam = dL/d(sn)`` and ``cache``
  it writes ``lamp = dL/d(sp)`` (through ``W_hh`` and every direct path), ``dax = dL/d(ax)``
  (which is also ``dL/d(b_ih)``) and ``dah = dL/d(W_hh h')``, and adds ``dL/d(b_hh)`` to
  ``dbh`` and the gradients of the cell's own weights (the LSTM's peepholes ``dP`` and gate
  recurrence ``dRg``; ``gw`` is (3H,) workspace); the caller forms ``dL/dW_hh = sum dah h'^T`` and
  ``dL/dW_ih = sum dax x^T`` as matrix products over steps and samples. Its cost is O(H^2)
  per step, like ``forward``'s. :func:`rnnlab.engine.bptt` runs it; the layered kernel's
  ``log10_input_weight_grad`` still runs ``tangent`` seeded with the identity (see the
  kernel).
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..activations import activate_into
from ._shared import h_rows

#: Gate blocks in the weight rows (PyTorch's layout) and rows of the per-layer cache.
GATES = 1
CACHE = 1  # f'(z)
HAS_CELL = False
#: Names of the gate means (``gsum`` entries) this cell reports.
GATE_MEANS: tuple[str, ...] = ()


#: Rows of a layer's state: h.
rows = h_rows


@jit
def forward(H, flags, act, gain, Whh, bih, bhh, P, Rg, ax, sp, sn, gsum, ah, gq, z, cache):
    """h = f(ax + b_ih + g W_hh h' + b_hh); cache[0] = f'(z)."""
    np.dot(Whh, sp[0:H], ah)
    for u in range(H):
        z[u] = ax[u] + bih[u] + gain * ah[u] + bhh[u]
    activate_into(act, z[0:H], sn[0:H], cache[0])


@jit
def tangent(H, flags, gain, Whh, P, Rg, dax, has_dx, sp, Tp, Tn, dAh, dG, cache):
    """Tn = diag(f'(z)) (g W_hh Tp + dax)."""
    k = Tp.shape[1]
    np.dot(Whh, Tp[0:H], dAh)
    for u in range(H):
        d = cache[0, u]
        if has_dx:
            for q in range(k):
                Tn[u, q] = d * (gain * dAh[u, q] + dax[u, q])
        else:
            for q in range(k):
                Tn[u, q] = d * (gain * dAh[u, q])


@jit
def backward(H, flags, gain, Whh, P, Rg, sp, sn, lam, lamp, dax, dah, dbh, dP, dRg, gw, cache):
    """dz = f'(z) lam; dax = dz, dah = g dz, dbh += dz; lamp = W_hh^T dah."""
    for u in range(H):
        d = cache[0, u] * lam[u]
        dax[u] = d
        dah[u] = gain * d
        dbh[u] += d
    np.dot(Whh.T, dah, lamp[0:H])
