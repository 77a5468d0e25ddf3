"""rnnlab.analysis: query stored sweeps with xarray, derive metrics, draw the summary figures.

- :func:`open_results`: a store as a lazy (Dask-backed) ``xarray.Dataset``; refuses what is
  not an rnnlab store, is incomplete or is damaged (``allow_incomplete=True`` opens it anyway,
  the missing and damaged blocks read as NaN).
- Derived quantities: :func:`memory_horizon`, :func:`gradient_crossing_step`,
  :func:`growth_rate_theory`, :func:`classify`, :func:`phase_boundary`.
- Figures (``rnnlab.analysis.figures``): one function per figure, ``(ds, ax=None) -> Figure``.
- :func:`fixed_points`: the fixed points of a network's step (a trained PyTorch module's or
  one trained by rnnlab) and their linearisation (Sussillo & Barak 2013);
  :func:`stored_fixed_points`: those a ``train`` sweep stored for one case.
- ``ds.rnnlab`` (registered on import): ``ds.rnnlab.classify()``,
  ``ds.rnnlab.plot.<figure>()``, ``ds.rnnlab.spec`` (the stored spec as a dict) and
  ``ds.rnnlab.provenance``, the functional API as methods (:mod:`.accessor`).
- :func:`write_report`: every applicable figure as PNG and SVG with an ``index.html``
  (``rnnlab figures STORE... --out DIR`` on the command line).
"""

from rnnlab.engine import FixedPoints, fixed_points

from .accessor import RnnlabAccessor  # registers ds.rnnlab
from .figures import FIGURES, MissingData
from .metrics import (
    CLASSES,
    classify,
    gradient_crossing_step,
    growth_rate_theory,
    memory_horizon,
    phase_boundary,
)
from .report import Report, ReportError, write_report
from .results import (
    DamagedStoreError,
    IncompleteStoreError,
    NotAStoreError,
    missing_blocks,
    open_results,
    stored_fixed_points,
    trained_network,
)

__all__ = [
    "CLASSES",
    "FIGURES",
    "DamagedStoreError",
    "FixedPoints",
    "IncompleteStoreError",
    "MissingData",
    "NotAStoreError",
    "Report",
    "ReportError",
    "RnnlabAccessor",
    "classify",
    "fixed_points",
    "gradient_crossing_step",
    "growth_rate_theory",
    "memory_horizon",
    "missing_blocks",
    "open_results",
    "phase_boundary",
    "stored_fixed_points",
    "trained_network",
    "write_report",
]
