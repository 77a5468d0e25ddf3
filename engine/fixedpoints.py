"""Fixed points of recurrent networks and their linearisation (Sussillo & Barak 2013).

:func:`fixed_points` finds the states s with F(s) = s of a network's step under a constant
input (zero by default: the autonomous dynamics), for any cell and layers of
:func:`rnnlab.engine.simulate_network` (a user's trained PyTorch module through
:func:`rnnlab.engine.state_dict_layers`, or a network trained by rnnlab through
:func:`rnnlab.analysis.trained_network`). From many starts at once it runs damped Newton
steps on F(s) - s = 0, which also converges to saddles and unstable points (minimising
q(s) = ||F(s) - s||^2 / 2 by gradient descent, as Sussillo & Barak do, finds them too, only
slower); the solutions are merged when closer than ``merge_tol``, and each is classified by
the moduli of the eigenvalues of the step's Jacobian there (a discrete-time map: stable
inside the unit circle). The step and its Jacobian are the NumPy reference's
(:mod:`rnnlab.engine.reference_network`: the equations written out again, the Jacobian by
the complex-step method), independent of the kernels. :func:`visited_fixed_points` starts
from the states a network visits on its task (what the ``train`` family stores and figure
26 draws).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FIXED_POINT_KINDS",
    "FIXED_POINT_OUTPUTS",
    "FixedPoints",
    "classify_fixed_point",
    "fixed_points",
    "task_states",
    "visited_fixed_points",
]

#: The variables of the fixed points a ``train`` sweep stores (asked for in run.outputs).
FIXED_POINT_OUTPUTS = (
    "fixed_points_count",
    "fixed_points_outside",
    "fixed_points_state",
    "fixed_points_eigenvalues",
    "fixed_points_kind",
    "fixed_points_residual",
    "fixed_points_starts",
)
#: The classes of a fixed point by its Jacobian's eigenvalues (stored as their index).
FIXED_POINT_KINDS = ("stable", "line_attractor", "marginal", "saddle", "unstable")


@dataclass(frozen=True)
class FixedPoints:
    """The fixed points found, one row each (sorted by how many starts reached them).

    Attributes
    ----------
    points : ndarray (m, S)
        The states (every layer's h, and c for the LSTM, as the reference orders them).
    residual : ndarray (m,)
        ||F(s) - s|| at each.
    eigenvalues : ndarray (m, S) complex
        Of the step's Jacobian there, by decreasing modulus.
    kind : ndarray (m,) of str
        One of :data:`FIXED_POINT_KINDS` (see :func:`classify_fixed_point`).
    starts : ndarray (m,) int
        How many starts converged to it.
    outside : int
        Converged starts left out because their h lies outside (-1, 1), where no state of
        a cell whose h is bounded (tanh or sigmoid rnn, gru, lstm) can be, or reach: there
        a saturated gate can freeze any state (a GRU's update gate at 1), which is no fixed
        point of the network's dynamics.
    """

    points: np.ndarray
    residual: np.ndarray
    eigenvalues: np.ndarray
    kind: np.ndarray
    starts: np.ndarray
    outside: int = 0


def classify_fixed_point(eigenvalues, tol: float = 1e-3) -> str:
    """The class of a fixed point of a map from its Jacobian's eigenvalues lambda.

    ``stable`` (every |lambda| < 1 - tol), ``unstable`` (every |lambda| > 1 + tol),
    ``line_attractor`` (one lambda within tol of +1, every other |lambda| < 1 - tol: the
    state can slide along one direction, as on Seung's or Sussillo & Barak's line
    attractors), ``marginal`` (none above 1 + tol and some other |lambda| within tol of 1: a
    ring or plane of states, or a flip at lambda = -1), else ``saddle``.
    """
    lam = np.asarray(eigenvalues)
    mod = np.abs(lam)
    if np.all(mod < 1 - tol):
        return "stable"
    if np.all(mod > 1 + tol):
        return "unstable"
    if np.any(mod > 1 + tol):
        return "saddle"
    at_one = np.abs(lam - 1) <= tol
    if at_one.sum() == 1 and np.all(mod[~at_one] < 1 - tol):
        return "line_attractor"
    return "marginal"


def _step_and_jacobian(cell, layers, activation, variant, x):
    """(F(s), dF/ds) of one step of the network at input x, from the NumPy reference."""
    from .reference_network import _step, complex_step

    layers = [{k: np.asarray(v, dtype=np.float64) for k, v in w.items()} for w in layers]
    peep = cell == "lstm" and "weight_peephole" in layers[0] and variant != "NP"
    e = np.zeros(layers[0]["weight_hh"].shape[0])

    def f(s):
        with np.errstate(over="ignore", invalid="ignore"):  # far starts saturate the gates
            return _step(cell, layers, activation, variant, peep, s, x, e)[0]

    def jac(s):
        return complex_step(lambda d: f(s + d), s.shape[0])

    return f, jac


def fixed_points(
    cell: str,
    layers,
    *,
    input=None,
    activation: str = "tanh",
    variant: str = "vanilla",
    starts=None,
    num_starts: int = 64,
    scale: float = 1.0,
    seed: int = 0,
    tol: float = 1e-10,
    max_iter: int = 200,
    merge_tol: float = 1e-6,
) -> FixedPoints:
    """Find the fixed points s = F(s) of a network's step under a constant input.

    Parameters
    ----------
    cell, layers, activation, variant :
        As in :func:`rnnlab.engine.simulate_network` (no case axis on the weights).
    input : array_like, optional
        The constant input vector x (I,); zero by default (the autonomous dynamics).
    starts : array_like, optional
        (m, S) starting states, for example states visited by the network's trajectories
        (Sussillo & Barak's choice); default ``num_starts`` states N(0, scale^2) per entry.
    tol : float
        A start has converged when ||F(s) - s|| <= tol.
    max_iter : int
        Newton steps per start (each damped until ||F(s) - s|| decreases).
    merge_tol : float
        Converged states closer than this (Euclidean) are one fixed point.

    Returns
    -------
    FixedPoints
        Starts that did not converge are left out (a start can run into a region where
        the Newton step stalls, such as a saturated tanh).

    Raises
    ------
    ValueError
        For weights the reference cannot run, or starts of the wrong width.
    """
    from ._validate import check_int, finite_numbers
    from .reference_network import _rows
    from .weights import CELL_GATES

    if cell not in CELL_GATES:
        raise ValueError(f"unknown cell {cell!r}: use one of {', '.join(CELL_GATES)}")
    for i, layer in enumerate(layers):
        for key, value in layer.items():
            if value is None:
                continue
            if key in ("weight_ih", "weight_hh") and np.ndim(value) != 2:
                raise ValueError(
                    f"layers[{i}][{key!r}] has shape {np.shape(value)}: fixed_points takes one "
                    "network, without a case axis (pass {k: v[case] for k, v in layer.items()})"
                )
            finite_numbers(f"layers[{i}][{key!r}]", value, "an array of numbers")
    rows, H = np.shape(layers[0]["weight_hh"])[-2:]
    if rows != CELL_GATES[cell] * H:
        raise ValueError(
            f"layers[0]['weight_hh'] has {rows} rows for H = {H}: the {cell} cell needs "
            f"{CELL_GATES[cell]} H = {CELL_GATES[cell] * H} (is cell right?)"
        )
    S = len(layers) * _rows(cell, variant, H)
    I = np.shape(layers[0]["weight_ih"])[-1]
    x = np.zeros(I) if input is None else np.asarray(input, dtype=np.float64).ravel()
    if x.shape != (I,):
        raise ValueError(f"input must be a vector of length I = {I}, got shape {x.shape}")
    if starts is None:
        n0 = check_int("num_starts", num_starts, 1)
        s0 = np.random.default_rng(seed).normal(0.0, scale, (n0, S))
    else:
        s0 = np.atleast_2d(np.asarray(starts, dtype=np.float64))
    if s0.ndim != 2 or s0.shape[1] != S or s0.shape[0] < 1:
        raise ValueError(f"starts must have {S} columns (the state), got shape {s0.shape}")
    if not np.isfinite(s0).all():
        raise ValueError("starts must be finite")
    f, jac = _step_and_jacobian(cell, layers, activation, variant, x)
    with np.errstate(over="ignore", invalid="ignore"):  # huge states: no convergence
        found = [s for s in (_newton(f, jac, s, tol, max_iter) for s in s0) if s is not None]
    bounded = cell in ("gru", "lstm") or (cell == "rnn" and activation in ("tanh", "sigmoid"))
    R = S // len(layers)
    inside = [s for s in found
              if not bounded or np.abs(s.reshape(len(layers), R)[:, :H]).max() < 1]  # fmt: skip
    return _summarise(inside, f, jac, merge_tol, len(found) - len(inside))


def _newton(f, jac, s, tol, max_iter):
    """A root of F(s) - s from s by damped Newton steps, or None."""
    r = f(s) - s
    for _ in range(max_iter):
        nr = np.linalg.norm(r)
        if nr <= tol:
            return s
        try:
            step = np.linalg.solve(jac(s) - np.eye(s.size), -r)
        except np.linalg.LinAlgError:
            return None
        a = 1.0
        while a > 1e-8:
            cand = s + a * step
            rc = f(cand) - cand
            if np.linalg.norm(rc) < nr:
                s, r = cand, rc
                break
            a *= 0.5
        else:
            return None
    return s if np.linalg.norm(r) <= tol else None


def _summarise(found, f, jac, merge_tol, outside) -> FixedPoints:
    """Merge converged states, then the residual, eigenvalues and class of each."""
    groups: list[list[np.ndarray]] = []
    for s in found:
        for g in groups:
            if np.linalg.norm(g[0] - s) < merge_tol:
                g.append(s)
                break
        else:
            groups.append([s])
    groups.sort(key=len, reverse=True)
    if not groups:
        empty = np.zeros(0)
        return FixedPoints(np.zeros((0, 0)), empty, np.zeros((0, 0), complex),
                           np.zeros(0, dtype=object), np.zeros(0, np.int64), outside)  # fmt: skip
    points = np.array([np.mean(g, axis=0) for g in groups])
    eig = [np.linalg.eigvals(jac(p)) for p in points]
    eig = np.array([e[np.argsort(-np.abs(e))] for e in eig]).reshape(len(groups), -1)
    return FixedPoints(
        points=points,
        residual=np.array([np.linalg.norm(f(p) - p) for p in points]),
        eigenvalues=eig,
        kind=np.array([classify_fixed_point(e) for e in eig], dtype=object),
        starts=np.array([len(g) for g in groups], dtype=np.int64),
        outside=outside,
    )


def task_states(net: dict, length: int, *, sequences: int = 20, seed: int = 10**6):
    """The hidden states (sequences, steps, units) of a trained network ``net`` (as in
    :func:`visited_fixed_points`) on ``sequences`` fresh test sequences of its task."""
    from .network import simulate_network
    from .tasks import task_batch

    x, _ = task_batch(str(net["task"]), int(length), seed, 0, sequences)
    res = simulate_network(net["cell"], net["layers"], activation=net["activation"],
                           variant=net["variant"], steps=x.shape[1], input=x, record="all",
                           outputs=["hidden_state"])  # fmt: skip
    return res["hidden_state"]


def visited_fixed_points(net: dict, length: int, *, sequences: int = 20, starts: int = 64,
                         seed: int = 10**6):  # fmt: skip
    """The fixed points without input of a network trained on a task, from states it
    visits (Sussillo & Barak's starts).

    Parameters
    ----------
    net : dict
        ``cell``, ``layers``, ``activation``, ``variant`` and ``task`` (as
        :func:`rnnlab.analysis.trained_network` returns them).
    length : int
        The task's length T for the test sequences.
    sequences : int
        Fresh test sequences of the task (data seed ``seed``: no training seed reaches it).
    starts : int
        Visited states to start from (drawn without replacement; all of them if fewer);
        the LSTM's cell states start at 0.

    Returns
    -------
    h : ndarray (sequences, steps, units)
        The hidden states on the test sequences.
    fp : FixedPoints

    Raises
    ------
    ValueError
        When no visited state is finite (a network that diverges on its task).
    """
    h = task_states(net, length, sequences=sequences, seed=seed)
    visited = h.reshape(-1, h.shape[-1])
    visited = visited[np.isfinite(visited).all(axis=1)]
    if not len(visited):
        raise ValueError("the network's states are not finite on its task: no start")
    rng = np.random.default_rng(0)
    picks = visited[rng.choice(len(visited), min(starts, len(visited)), replace=False)]
    picks = _flat_states(net, picks)
    fp = fixed_points(net["cell"], net["layers"], activation=net["activation"],
                      variant=net["variant"], starts=picks)  # fmt: skip
    return h, fp


def _flat_states(net: dict, h: np.ndarray) -> np.ndarray:
    """Flat states (m, S) from hidden states (m, L H) (layer after layer): each layer's h,
    then 0 for the rest of its rows (the LSTM's c), in the reference's order."""
    from .reference_network import _rows

    H = np.shape(net["layers"][0]["weight_hh"])[-1]
    L = len(net["layers"])
    R = _rows(net["cell"], net["variant"], H)
    out = np.zeros((len(h), L, R))
    out[:, :, :H] = h.reshape(len(h), L, H)
    return out.reshape(len(h), L * R)
