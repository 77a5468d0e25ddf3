"""The result of a run of the engine: NumPy arrays keyed by the store schema's names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["RnnResult"]


@dataclass
class RnnResult:
    """The outputs of one batch of cases.

    Attributes
    ----------
    time : numpy.ndarray
        int64 (ntime,): the recorded steps (empty when only summaries were asked for).
    data : dict of str to numpy.ndarray
        The requested variables, keyed by the names of the store schema: per-step variables
        (cases, ntime), per-step vectors (cases, ntime, units) and per-case summaries
        (cases,).
    attrs : dict
        The run's settings (activation, steps, n, dtype, input, tolerances, gradient method,
        outputs).

    Examples
    --------
    >>> from rnnlab.engine import simulate_rnn
    >>> res = simulate_rnn([0.5, 1.0], activation="identity", steps=10, record="all")
    >>> res["state"].shape
    (2, 10)
    >>> float(res["state"][0, 3])  # w**t c x(0)
    0.125
    """

    time: np.ndarray
    data: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.data[name]
        except KeyError:
            raise KeyError(
                f"no variable {name!r} in this result: it has {', '.join(self.data)} "
                "(ask for others with outputs=)"
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def keys(self):
        """Names of the variables."""
        return self.data.keys()

    @property
    def ncases(self) -> int:
        """Number of cases."""
        return int(next(iter(self.data.values())).shape[0])
