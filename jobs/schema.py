"""The result schema: variable names, their attributes, and the engine-result -> Dataset step.

This module is the contract between the engine, the store and the analysis (see DESIGN.md):
every variable the engine returns has an entry in :data:`VARIABLES` with ``long_name``,
``units`` ("1" for dimensionless) and ``description``.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

__all__ = [
    "COMPONENT_DIM",
    "DELAY_DIM",
    "EIGENVALUE_DIM",
    "EXPONENT_DIM",
    "KIND_DIMS",
    "PARAMETER_DIM",
    "POINT_DIM",
    "TIME_DIM",
    "UNIT_DIM",
    "VARIABLES",
    "provenance",
    "to_dataset",
]

TIME_DIM = "time"
#: The dimension of per-unit variables (``hidden_state``, ``cell_state``).
UNIT_DIM = "unit"
#: The dimension of a network's flattened weights (rnnlab.engine.train.network_vector).
PARAMETER_DIM = "parameter"
#: The dimension of a Lyapunov spectrum (the i-th largest exponent).
EXPONENT_DIM = "exponent"
#: The dimension of a variable per delay of the input (the memory capacity's).
DELAY_DIM = "delay"
#: The dimensions of stored fixed points: which point, which entry of the flat state, which
#: eigenvalue of the step's Jacobian there.
POINT_DIM, COMPONENT_DIM, EIGENVALUE_DIM = "point", "component", "eigenvalue"
#: The dimensions after the case's of each kind of variable (rnnlab.engine's Output.kind).
KIND_DIMS = {
    "summary": (),
    "step": (TIME_DIM,),
    "vector": (TIME_DIM, UNIT_DIM),
    "weights": (PARAMETER_DIM,),
    "spectrum": (EXPONENT_DIM,),
    "delays": (DELAY_DIM,),
    "points": (POINT_DIM,),
    "point_states": (POINT_DIM, COMPONENT_DIM),
    "point_eigenvalues": (POINT_DIM, EIGENVALUE_DIM),
}

#: name -> (long_name, units, description)
VARIABLES: dict[str, tuple[str, str, str]] = {
    "time": ("time step", "1", "Step index t of the recursion, starting at 0."),
    "unit": (
        "unit",
        "1",
        "Index of a hidden unit: layer l's unit u is l * n + u (layers stacked in order).",
    ),
    "state": (
        "hidden state",
        "1",
        "Signed hidden state h(t) of a scalar (n = 1) recursion.",
    ),
    "state_norm": ("norm of the hidden state", "1", "Euclidean norm ||h(t)||."),
    "response": (
        "response to the input at t = 0",
        "1",
        "||h(t) - hbar(t)||, hbar being the same run without the input at t = 0: the memory "
        "of that input. Equals ||W^t C x(0)|| for linear recursions.",
    ),
    "log10_gradient_norm": (
        "log10 of the gradient norm",
        "1",
        "log10 of the spectral norm of dh(t)/dh(0) = J_t ... J_1, J_s = diag(f'(z_s)) W, "
        "computed with renormalisation so that exploding products never overflow.",
    ),
    "blowup_step": (
        "blow-up step",
        "1",
        "First step at which the state is not finite (the case stops there; later steps are "
        "NaN); -1 if it never happens.",
    ),
    "memory_horizon": (
        "memory horizon",
        "1",
        "First step after which the response stays below memory_rtol * response(0) until the "
        "end of the run; -1 if it never does (or the run blew up).",
    ),
    "memory_class": (
        "memory class",
        "1",
        "What became of the memory of the input at t = 0: 0 forgets (the memory horizon was "
        "reached), 1 keeps (never forgotten within the run, not growing), 2 grows (never "
        "forgotten and the response more than doubled over the second half of the run), 3 "
        "blows up (a non-finite state); -1 undetermined.",
    ),
    "saturation_step": (
        "saturation step",
        "1",
        "First step after which ||h(t) - h(t-1)|| <= saturation_tol * max(1, ||h(t)||) for "
        "every later step (the run has converged); -1 if it never does.",
    ),
    "growth_rate": (
        "gradient growth rate",
        "1/step",
        "ln ||dh(t)/dh(0)|| per step between t = (steps - 1) // 2 and the last step: the "
        "largest Lyapunov exponent. log|lambda_max| for linear recursions.",
    ),
    "response_growth_rate": (
        "response growth rate",
        "1/step",
        "ln(response) per step between t = (steps - 1) // 2 and the last step.",
    ),
    "bounded": (
        "bounded state",
        "1",
        "True when the state stayed finite and ||h(t)|| <= bound over the whole run (an "
        "empirical, finite-horizon BIBO check).",
    ),
    "max_state_norm": ("largest state norm", "1", "max over t of ||h(t)||."),
    "fixed_point": (
        "fixed point",
        "1",
        "Final state of a scalar recursion when the run saturated (converged), else NaN.",
    ),
    "fixed_point_norm": (
        "norm of the fixed point",
        "1",
        "||h|| at the end of the run when it saturated (converged), else NaN.",
    ),
    "second_eigenvalue_modulus": (
        "second eigenvalue modulus of W",
        "1",
        "Largest |lambda| of W below the dominant modulus |lambda_1| (n > 1): the growth of a "
        "response whose input has no component along the dominant eigenvector(s).",
    ),
    "hidden_state": (
        "hidden state vector",
        "1",
        "h(t), every unit of every layer (dimension unit), at the recorded steps.",
    ),
    "cell_state": (
        "LSTM cell state vector",
        "1",
        "c(t), every unit of every layer (dimension unit), at the recorded steps.",
    ),
    "cell_norm": ("norm of the LSTM cell state", "1", "Euclidean norm ||c(t)|| (all layers)."),
    "log10_carousel_gain": (
        "log10 of the constant error carousel's gain",
        "1",
        "log10 of the direct path of the LSTM cell from c(0) to c(t), holding the gates fixed: "
        "max over units (and layers) of prod_{s=1..t} f(s). 0 (a gain of 1) without a forget "
        "gate; the all-path dc(t)/dc(0) is log10_cell_gradient_norm.",
    ),
    "log10_cell_gradient_norm": (
        "log10 of the cell gradient norm",
        "1",
        "log10 of the spectral norm of dc(t)/dc(0) through all paths (the constant error "
        "carousel and the gates), computed with renormalisation.",
    ),
    "cell_growth_rate": (
        "cell gradient growth rate",
        "1/step",
        "ln ||dc(t)/dc(0)|| per step between t = (steps - 1) // 2 and the last step.",
    ),
    "input_gate_mean": ("mean input gate", "1", "Mean of the LSTM input gate i(t) over units."),
    "forget_gate_mean": (
        "mean forget gate",
        "1",
        "Mean of the LSTM forget gate f(t) over units: the cell gradient is multiplied by f.",
    ),
    "output_gate_mean": ("mean output gate", "1", "Mean of the LSTM output gate o(t) over units."),
    "reset_gate_mean": ("mean reset gate", "1", "Mean of the GRU reset gate r(t) over units."),
    "update_gate_mean": (
        "mean update gate",
        "1",
        "Mean of the GRU update gate z(t) over units (the weight of the old state).",
    ),
    "log10_input_weight_grad": (
        "log10 of a step's input-weight gradient",
        "1",
        "log10 of the Frobenius norm of step t's contribution delta_t x(t)^T to dL/dW_ih (first "
        "layer), for the loss L = sum(h_top(T)) / sqrt(H) at step T = loss_step only, "
        "backpropagated through time; NaN after T.",
    ),
    "log10_layer_weight_grad": (
        "log10 of a layer's weight gradient",
        "1",
        "Deep nets (family mlp): log10 of the Frobenius norm of dL/dA_t, the gradient of the "
        "loss of the last layer L = u . h(T-1) (u = (1, ..., 1) / sqrt(n), T the depth) with "
        "respect to layer t's weight matrix A_t = s W_t (z_t = A_t h(t-1) + b): "
        "||delta_t|| ||h(t-1)||, delta_t = dL/dz_t. Backpropagated with renormalisation, so "
        "that it never over- or underflows; -inf for a zero gradient.",
    ),
    "layer_weight_grad_participation": (
        "participation ratio of a layer's weight gradient",
        "1",
        "Deep nets (family mlp): the participation ratio of the n^2 entries g of dL/dA_t over "
        "their number, (sum g^2)^2 / (n^2 sum g^4) = N_eff(delta_t) N_eff(h(t-1)) / n^2 with "
        "N_eff(v) = (sum v^2)^2 / sum v^4. In (0, 1]: 1 when the gradient is spread evenly "
        "over every weight of the layer, 1 / n^2 when one weight carries all of it; NaN for "
        "a zero gradient.",
    ),
    "spectral_radius": (
        "spectral radius of W",
        "1",
        "Largest eigenvalue modulus |lambda_max| of the recurrent matrix.",
    ),
    "max_singular_value": (
        "largest singular value of W",
        "1",
        "sigma_max(W) = ||W||_2; with gamma = sup|f'| the gradient is bounded by "
        "(gamma sigma_max)^t.",
    ),
    # the cliff family (rnnlab.jobs.families.cliff): gradient descents on Pascanu et al.'s
    # one-unit network x(t) = w sigmoid(x(t-1)) + b, loss (sigmoid(x(T)) - target)^2
    "update": ("update", "1", "Update index k of gradient descent: values before update k."),
    "loss": ("loss", "1", "(sigmoid(x(T)) - target)^2 at the parameters before update k."),
    "grad_norm": ("gradient norm", "1", "||(dL/dw, dL/db)|| before update k (exact)."),
    "w_path": ("w along the descent", "1", "The recurrent weight w before update k."),
    "bias_path": ("b along the descent", "1", "The bias b before update k."),
    "final_loss": (
        "final loss",
        "1",
        "cliff: the loss after the last update (before an overflow); train: the trained "
        "network's loss on fresh sequences of the trained length.",
    ),
    "clipped_fraction": (
        "fraction of clipped updates",
        "1",
        "Share of the updates whose gradient was clipped (its norm above the threshold, or, "
        "clipping by value, any element beyond it).",
    ),
    "max_step": (
        "longest step",
        "1",
        "The largest parameter step of the descent, the norm over every parameter "
        "(cliff: ||delta (w, b)||; NaN: none finite).",
    ),
    "solved_update": (
        "update that solved the task",
        "updates",
        "First update whose loss fell below the solved level (cliff: 1e-4, |sigmoid(x(T)) - "
        "target| < 0.01; train: the task's level, rnnlab.engine.tasks.TASKS), or -1.",
    ),
    "diverged": ("diverged", "1", "True when the loss or its gradient overflowed (NaN)."),
    # the train family (rnnlab.jobs.families.train): networks trained by exact BPTT
    "train_loss": ("training loss", "1", "The loss of the update's batch, before the step."),
    "train_grad_norm": (
        "gradient norm",
        "1",
        "Norm of the gradient over every weight of the network and its readout, before clipping.",
    ),
    "final_accuracy": (
        "final accuracy",
        "1",
        "On fresh sequences of the trained length: regressions, the share of sequences "
        "whose squared error is at most 0.04 (Pascanu et al.); classifications, the share of "
        "correct classes.",
    ),
    "trained_weights": (
        "trained weights",
        "1",
        "Every weight of the trained network (recurrent layers, then the readout) in the "
        "order of rnnlab.engine.train.network_vector, NaN after the network's last weight "
        "(networks of a grid differ in size); a diverged run's where it was frozen; "
        "rnnlab.analysis.trained_network(ds.sel(...)) gives one as PyTorch-layout arrays.",
    ),
    "parameter": ("parameter index", "1", "Position in the flattened weights."),
    "point": (
        "fixed point index",
        "1",
        "i of the i-th fixed point found, from 0, most reached first (run.num_fixed_points "
        "of them at most; NaN, or -1, where fewer were found).",
    ),
    "component": (
        "state component",
        "1",
        "Position in the network's flat state: layer l's h, then its c for the LSTM (and its "
        "gates for the FGR variant), layers in order (rnnlab.engine.fixedpoints).",
    ),
    "eigenvalue": (
        "eigenvalue index",
        "1",
        "i of the Jacobian's i-th eigenvalue by decreasing modulus, from 0.",
    ),
    "fixed_points_count": (
        "fixed points found",
        "1",
        "Distinct fixed points of the trained step without input (F(s) = s to 1e-10, merged "
        "within 1e-6) reached by Newton's method from run.fixed_point_starts states the "
        "network visits on 20 fresh test sequences (Sussillo & Barak 2013); the first "
        "run.num_fixed_points are stored; -1 where the weights or the network's states on "
        "its task are not finite (a diverged network).",
    ),
    "fixed_points_outside": (
        "starts converged outside the range of h",
        "1",
        "Starts whose solution has some |h| >= 1, which no state of a bounded cell can reach "
        "(a saturated gate freezing it), left out of the fixed points; -1 for a diverged "
        "network.",
    ),
    "fixed_points_state": (
        "fixed point",
        "1",
        "The fixed point s* = F(s*) (every layer's state along component).",
    ),
    "fixed_points_eigenvalues": (
        "eigenvalues at the fixed point",
        "1",
        "Of the step's Jacobian dF/ds at s* (complex), by decreasing modulus: |lambda| < 1 "
        "attracts along its eigenvector; NaN beyond the network's state.",
    ),
    "fixed_points_kind": (
        "class of the fixed point",
        "1",
        "Its index in rnnlab.engine.FIXED_POINT_KINDS (flag_meanings): stable (every "
        "|lambda| < 1 - 1e-3), line_attractor (one lambda within 1e-3 of 1, the others "
        "stable), marginal (others within 1e-3 of the unit circle, none outside), saddle, "
        "unstable (every |lambda| > 1 + 1e-3); -1 where no point is stored.",
    ),
    "fixed_points_residual": (
        "residual at the fixed point",
        "1",
        "||F(s*) - s*|| at the stored point (the mean of the merged solutions).",
    ),
    "fixed_points_starts": (
        "starts reaching the fixed point",
        "1",
        "How many of the run.fixed_point_starts starts converged to it (its basin's share "
        "of the visited states).",
    ),
    "exponent": (
        "exponent index",
        "1",
        "i of the i-th largest Lyapunov exponent, from 0 (run.num_exponents of them).",
    ),
    "q_star": (
        "mean-field pre-activation variance",
        "1",
        "q*, the fixed point of mean-field theory's length map q -> sigma_w^2 E[f(bias + "
        "sqrt(q) z)^2] + sigma_b^2 (Poole et al. 2016; sigma_w = gain, sigma_b = bias_std; "
        "rnnlab.analysis.meanfield); 0 or inf where the map has no finite positive one.",
    ),
    "chi_1": (
        "mean-field gradient factor",
        "1",
        "chi_1 = sigma_w^2 E[f'(bias + sqrt(q*) z)^2]: the factor by which a layer (or a "
        "step) multiplies a perturbation's squared norm; 1 on the order-to-chaos line.",
    ),
    "signal_depth_scale": (
        "mean-field signal depth scale",
        "layers",
        "xi_c = -1 / ln chi_c(c*), chi_c the slope of the correlation map at its stable fixed "
        "point c*: how many layers (steps) two inputs' correlation takes to reach c* "
        "(Schoenholz et al. 2017); NaN where q* is 0 or infinite.",
    ),
    "gradient_depth_scale": (
        "mean-field gradient depth scale",
        "layers",
        "xi_grad = -1 / ln chi_1: over how many layers (steps) a gradient's squared norm "
        "shrinks by e (its norm over twice as many); negative when it grows (chaos), infinite "
        "on the order-to-chaos line.",
    ),
    "delay": ("delay", "steps", "k of the input u(t - k) read out from the state h(t), from 0."),
    "memory_capacity": (
        "memory capacity",
        "1",
        "Jaeger's memory capacity: the sum over delays k = 0 ... num_delays - 1 of "
        "memory_capacity_by_delay (at most the number of hidden units read, L n; the input "
        "at t is in h(t), so k = 0 counts).",
    ),
    "memory_capacity_by_delay": (
        "memory capacity per delay",
        "1",
        "The squared correlation between the input u(t - k) and its best linear readout "
        "from h(t) (every layer's), under the run's input, over t > (steps - 1) // 2: fitted "
        "on one quarter of that window and scored on the next, the correlations of two "
        "independent such pairs multiplied (out of sample: no bias from the fitted weights; "
        "noise of mean 0 for a forgotten delay). Directions of the state with variance below "
        "1e-12 of the mean are not read. rnnlab.engine._capacity.",
    ),
    "lyapunov_exponents": (
        "Lyapunov exponents",
        "1/step",
        "The num_exponents largest Lyapunov exponents of the whole state (every layer's h, and "
        "c for the LSTM), in decreasing order: k tangent vectors propagated with the step's "
        "Jacobian and re-orthonormalised by QR every step, the logs of QR's diagonal averaged "
        "over t > (steps - 1) // 2 (rnnlab.engine.lyapunov). ln|lambda_i(W)| for linear "
        "recursions; NaN beyond the state's dimension or after a blow-up; below about -30 not "
        "resolved (a direction collapsed to float64's rounding in one step).",
    ),
    "kaplan_yorke_dimension": (
        "Kaplan-Yorke dimension",
        "1",
        "j + (lambda_1 + ... + lambda_j) / |lambda_(j+1)|, j the last index whose partial sum "
        "of the sorted exponents is >= 0; 0 when lambda_1 < 0; NaN when the num_exponents "
        "exponents do not reach a negative partial sum (ask for more).",
    ),
    "entropy_rate": (
        "entropy rate",
        "1/step",
        "Sum of the positive Lyapunov exponents (Pesin's formula for the Kolmogorov-Sinai "
        "entropy, nats per step); NaN when the last of the num_exponents exponents is still "
        "positive (ask for more).",
    ),
    "test_loss": ("test loss", "1", "The loss on fresh sequences of model.test_length."),
    "test_accuracy": ("test accuracy", "1", "final_accuracy at model.test_length."),
    "baseline": (
        "chance-level loss",
        "1",
        "The loss of the best constant guess at the trained length (adding: 1/6, copy: "
        "10 ln 8 / (T + 20), parity and binary addition: ln 2).",
    ),
}


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(start: _dt.datetime | None = None, end: _dt.datetime | None = None) -> dict:
    """Provenance attributes: versions, git commit, host, ISO-8601 start and end times (UTC)."""
    now = _dt.datetime.now(_dt.UTC)
    attrs = {
        "rnnlab_version": _version("rnnlab"),
        "numpy_version": _version("numpy"),
        "numba_version": _version("numba"),
        "xarray_version": _version("xarray"),
        "zarr_version": _version("zarr"),
        "dask_version": _version("dask"),
        "python_version": platform.python_version(),
        "host": platform.node(),
        "start_time": (start or now).isoformat(),
        "end_time": (end or now).isoformat(),
    }
    commit = _git_commit()
    if commit:
        attrs["git_commit"] = commit
    return attrs


def to_dataset(result, coords: dict | None = None, case_dim: str = "case"):
    """Turn an engine result into an ``xarray.Dataset`` with the schema's names and attributes.

    Parameters
    ----------
    result : rnnlab.engine.RnnResult
        What :func:`rnnlab.engine.simulate_rnn` returned.
    coords : dict of str to array_like, optional
        Coordinates along the case dimension (each of length ``result.ncases``), e.g. the
        ``w`` of each case. A coordinate named ``case_dim`` replaces the default 0..ncases-1.
    case_dim : str
        Name of the case dimension.

    Returns
    -------
    xarray.Dataset
        Per-step variables with dims (case_dim, "time"), summaries with dims (case_dim,),
        every variable with ``long_name``, ``units`` and ``description``; the run's settings
        and the provenance as Dataset attributes.

    Examples
    --------
    >>> from rnnlab.engine import simulate_rnn
    >>> res = simulate_rnn([0.5, 0.9], activation="tanh", steps=100)
    >>> ds = to_dataset(res, coords={"w": [0.5, 0.9]})
    >>> ds.state.dims
    ('case', 'time')
    """
    import xarray as xr

    from rnnlab.engine import OUTPUTS, RnnResult

    if not isinstance(result, RnnResult):
        raise TypeError(
            f"result must be what simulate_rnn or simulate_network returned, got "
            f"{type(result).__name__}"
        )
    n = result.ncases
    data_vars = {}
    for name, arr in result.data.items():
        kind = OUTPUTS[name].kind if name in OUTPUTS else ""
        dims = ((case_dim,), (case_dim, TIME_DIM), (case_dim, TIME_DIM, UNIT_DIM))[arr.ndim - 1]
        if len(KIND_DIMS.get(kind, ())) == arr.ndim - 1:
            dims = (case_dim, *KIND_DIMS[kind])
        data_vars[name] = xr.Variable(dims, arr, attrs=_attrs(name))
    all_coords = {
        case_dim: (case_dim, np.arange(n)),
        TIME_DIM: xr.Variable(TIME_DIM, np.asarray(result.time, np.int64), attrs=_attrs("time")),
    }
    for key, value in (coords or {}).items():
        value = np.asarray(value)
        if value.shape != (n,):
            raise ValueError(f"coordinate {key!r} has shape {value.shape}; it must be ({n},)")
        all_coords[key] = (case_dim, value)
    attrs = {k: v for k, v in result.attrs.items() if v is not None}
    attrs.update(provenance())
    return xr.Dataset(data_vars, coords=all_coords, attrs=attrs)


def _attrs(name: str) -> dict:
    try:
        long_name, units, description = VARIABLES[name]
    except KeyError:
        raise KeyError(f"variable {name!r} is not in the schema (rnnlab.jobs.schema)") from None
    return {"long_name": long_name, "units": units, "description": description}
