"""Published numbers the figures and tests compare with, each with its source (one home).

:data:`TANH_SPECTRA`: D. G. Clark, "Lyapunov spectrum of random neural networks" (2026),
code and data at github.com/davidclark1/rnn-lyapunov, ``data/network/
map_g{g}_delta1_N4096_seed0.json`` ("summaries"): the full Lyapunov spectrum of the discrete
map x(t+1) = J tanh(x(t)), J_ij ~ N(0, g^2 / N) (diagonal kept), N = 4096, QR every step,
4000-6000 averaged steps after a burn-in. Its spectrum is that of h(t+1) = tanh(W h(t)) with
W = J (the two maps' step Jacobians, diag(f') W and W diag(f'), are cyclic rearrangements of
each other). Natural logs per step; the dimension and the entropy per unit.
"""

from __future__ import annotations

__all__ = ["TANH_SPECTRA", "TANH_SPECTRA_SOURCE"]

TANH_SPECTRA_SOURCE = "Clark 2026, N = 4096"

#: g -> (largest exponent, Kaplan-Yorke dimension / N, entropy rate / N).
TANH_SPECTRA = {
    1.5: (0.064947, 0.16511, 0.0027729),
    2.0: (0.154249, 0.25659, 0.0106076),
    2.5: (0.237120, 0.28499, 0.0186437),
    3.0: (0.309583, 0.28717, 0.0251060),
    4.0: (0.431966, 0.26925, 0.0339163),
    5.0: (0.531180, 0.24594, 0.0389117),
}
