"""Model families as the sweep runner sees them: parameters, validation, cost, and a run.

The runner's core (grid, blocks, store, scheduling) knows nothing of any model: it asks the
family for its parameters, the variables it writes (``run.outputs``, or the family's
default), the cost of a case, and to run a batch of cases given as flat arrays of parameter
values. A new family is a new :class:`Family` subclass in a module of its own here,
registered in :data:`FAMILIES`.
"""

from __future__ import annotations

from .base import OUTPUT_HINTS, Family, Param, run_grouped
from .cliff import CliffFamily
from .layered import CecFamily, GruFamily, LayeredFamily, LstmFamily
from .mlp import MlpFamily
from .rnn import BASE_CACHE_BYTES, RnnFamily
from .train import TrainFamily

__all__ = [
    "BASE_CACHE_BYTES",
    "FAMILIES",
    "OUTPUT_HINTS",
    "CecFamily",
    "CliffFamily",
    "Family",
    "GruFamily",
    "LayeredFamily",
    "LstmFamily",
    "MlpFamily",
    "Param",
    "RnnFamily",
    "TrainFamily",
    "get_family",
    "run_grouped",
]


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        RnnFamily(),
        LstmFamily(),
        GruFamily(),
        CecFamily(),
        MlpFamily(),
        CliffFamily(),
        TrainFamily(),
    )
}


def get_family(name: str, problems: list[str] | None = None) -> Family | None:
    """The family called ``name``; an unknown name is a problem (or a ValueError)."""
    if name in FAMILIES:
        return FAMILIES[name]
    msg = f"model.family: unknown family {name!r}: use one of {', '.join(FAMILIES)}"
    if not name:
        msg = f"model.family: missing: set family to one of {', '.join(FAMILIES)}"
    if problems is None:
        raise ValueError(msg)
    problems.append(msg)
    return None
