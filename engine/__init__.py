"""rnnlab.engine: Numba kernels for recurrent-network stability, memory and gradients.

Pure kernels over arrays (NumPy and Numba only; no I/O, no Dask, no xarray). The public
functions return plain NumPy arrays keyed by the store schema's names;
:func:`rnnlab.jobs.schema.to_dataset` turns a result into an ``xarray.Dataset``.
"""

from ._tracking import OUTPUTS, TRACKERS
from .activations import ACTIVATIONS, Activation, get_activation
from .bptt import bptt
from .cells import CELLS
from .fixedpoints import FIXED_POINT_KINDS, FixedPoints, fixed_points
from .lyapunov import LYAPUNOV_OUTPUTS, entropy_rate, kaplan_yorke_dimension
from .mlp import mlp_biases, mlp_outputs, mlp_weights, simulate_mlp
from .network import (
    CAPACITY_OUTPUTS,
    LSTM_VARIANTS,
    network_outputs,
    simulate_network,
    simulate_state_dict,
    state_dict_layers,
)
from .results import RnnResult
from .rnn import (
    INPUT_KINDS,
    PER_STEP_VARIABLES,
    SUMMARY_VARIABLES,
    noise_keys,
    record_steps,
    rnn_outputs,
    simulate_rnn,
)
from .weights import (
    CELL_GATES,
    INITS,
    WEIGHT_KINDS,
    base_matrix,
    case_rng,
    impulse_direction,
    init_layers,
    recurrent_matrix,
    remove_dominant_component,
    scale_matrix,
)

__all__ = [
    "ACTIVATIONS",
    "CAPACITY_OUTPUTS",
    "CELLS",
    "CELL_GATES",
    "FIXED_POINT_KINDS",
    "INITS",
    "INPUT_KINDS",
    "LSTM_VARIANTS",
    "LYAPUNOV_OUTPUTS",
    "OUTPUTS",
    "PER_STEP_VARIABLES",
    "SUMMARY_VARIABLES",
    "TRACKERS",
    "WEIGHT_KINDS",
    "Activation",
    "FixedPoints",
    "RnnResult",
    "base_matrix",
    "bptt",
    "case_rng",
    "entropy_rate",
    "fixed_points",
    "get_activation",
    "impulse_direction",
    "init_layers",
    "kaplan_yorke_dimension",
    "mlp_biases",
    "mlp_outputs",
    "mlp_weights",
    "network_outputs",
    "noise_keys",
    "record_steps",
    "recurrent_matrix",
    "remove_dominant_component",
    "rnn_outputs",
    "scale_matrix",
    "simulate_mlp",
    "simulate_network",
    "simulate_rnn",
    "simulate_state_dict",
    "state_dict_layers",
]
