"""rnnlab.engine: Numba kernels for recurrent-network stability, memory and gradients.

Pure kernels over arrays (NumPy and Numba only; no I/O, no Dask, no xarray). The public
functions return plain NumPy arrays keyed by the store schema's names;
:func:`rnnlab.jobs.schema.to_dataset` turns a result into an ``xarray.Dataset``.
"""

from .activations import ACTIVATIONS, Activation, get_activation
from .rnn import (
    INPUT_KINDS,
    PER_STEP_VARIABLES,
    SUMMARY_VARIABLES,
    RnnResult,
    noise_keys,
    record_steps,
    simulate_rnn,
)
from .weights import (
    WEIGHT_KINDS,
    base_matrix,
    case_rng,
    impulse_direction,
    recurrent_matrix,
    remove_dominant_component,
    scale_matrix,
)

__all__ = [
    "ACTIVATIONS",
    "INPUT_KINDS",
    "PER_STEP_VARIABLES",
    "SUMMARY_VARIABLES",
    "WEIGHT_KINDS",
    "Activation",
    "RnnResult",
    "base_matrix",
    "case_rng",
    "get_activation",
    "impulse_direction",
    "noise_keys",
    "record_steps",
    "recurrent_matrix",
    "remove_dominant_component",
    "scale_matrix",
    "simulate_rnn",
]
