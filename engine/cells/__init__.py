"""The cells of the layered kernel: one module per cell, one row per cell in :data:`CELLS`.

Each module (:mod:`.rnn`, :mod:`.lstm`, :mod:`.gru`, :mod:`.cec`) holds the cell's forward
step, its tangent (Jacobian-vector) step, its backward (vector-Jacobian) step and its
constants; :mod:`rnnlab.engine._driver` compiles one simulation kernel per cell around them
and :mod:`rnnlab.engine.bptt` one gradient kernel. To add a cell: write its module with the
same parts (see :mod:`.rnn`), add its row here, its equations to the NumPy reference
(:mod:`rnnlab.engine.reference_network`) that the tests compare it with, and its forward
in PyTorch to ``tests/test_bptt.py`` (which checks ``backward`` against autograd).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import cec, gru, lstm, rnn

__all__ = ["CELLS", "Cell", "get_cell"]


@dataclass(frozen=True)
class Cell:
    """One row of the cell table.

    Attributes
    ----------
    name : str
        The cell's name in :func:`rnnlab.engine.simulate_network` and in sweep specs.
    module : module
        Its jitted ``rows``, ``forward``, ``tangent`` and ``backward`` and constants
        ``GATES``, ``CACHE``, ``HAS_CELL`` and ``GATE_MEANS``.
    uses_activation : bool
        Whether the ``activation`` argument applies (rnn, cec); the gated cells use sigmoid
        gates and tanh.
    summary : str
        One line for the documentation.
    """

    name: str
    module: ModuleType
    uses_activation: bool
    summary: str

    @property
    def gates(self) -> int:
        """Gate blocks G in the weight rows: weights are (G H, ...)."""
        return int(self.module.GATES)

    @property
    def gate_means(self) -> tuple[str, ...]:
        return tuple(self.module.GATE_MEANS)

    @property
    def has_cell(self) -> bool:
        return bool(self.module.HAS_CELL)


CELLS: dict[str, Cell] = {
    c.name: c
    for c in (
        Cell("rnn", rnn, True, "h = f(W_ih x + b_ih + W_hh h' + b_hh) (torch.nn.RNN)"),
        Cell("lstm", lstm, False, "torch.nn.LSTM, optional peepholes, Greff's variants"),
        Cell("gru", gru, False, "torch.nn.GRU"),
        Cell("cec", cec, True, "h = h' + f(W_ih x + b_ih), the constant error carousel"),
    )
}


def get_cell(name: str) -> Cell:
    """The cell called ``name``; a ValueError lists the valid names."""
    try:
        return CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}: use one of {', '.join(CELLS)}") from None
