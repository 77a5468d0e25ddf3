"""The ``train`` family: recurrent networks trained by exact BPTT, one per grid case.

A case is one training run (:func:`rnnlab.engine.train.train`): a cell, a task and its
length, an initialisation, an optimiser, a clipping rule and a seed (its weights and its
data). The time axis is the update index; ``run.steps`` is the number of updates.
"""

from __future__ import annotations

import itertools
import json
from typing import ClassVar

import numpy as np

from rnnlab.engine import ACTIVATIONS, CELL_GATES, LSTM_VARIANTS
from rnnlab.engine._tracking import Output
from rnnlab.engine.fixedpoints import FIXED_POINT_KINDS, FIXED_POINT_OUTPUTS, visited_fixed_points
from rnnlab.engine.reference_network import _rows
from rnnlab.engine.tasks import TASKS
from rnnlab.engine.train import (
    CLIPS,
    OPTIMIZERS,
    TRAIN_INITS,
    network_vector,
    parameter_count,
    train,
)

from .base import Param, UpdateFamily, _asks, own_table, run_grouped

__all__ = ["TrainFamily"]

_STEP = ("train_loss", "train_grad_norm")
_SUMMARY = {"clipped_fraction": "float64", "max_step": "float64", "diverged": "bool",
            "solved_update": "int64", "final_loss": "float64", "final_accuracy": "float64",
            "test_loss": "float64", "test_accuracy": "float64",
            "baseline": "float64"}  # fmt: skip
#: Grid values that must be equal for cases to train in one call (the rest vary per case).
_TOGETHER = ("cell", "task", "n", "layers", "length", "activation", "variant", "init",
             "init_scale", "forget_bias", "optimizer", "clip", "batch")  # fmt: skip
#: Stored only when asked for (run.outputs): every weight of each trained network.
_WEIGHTS = "trained_weights"
#: Stored only when asked for: the fixed points of each trained network without input
#: (rnnlab.engine.fixedpoints.visited_fixed_points), name -> (kind, dtype).
_FIXED = dict(zip(FIXED_POINT_OUTPUTS, (("summary", "int64"), ("summary", "int64"),
                                        ("point_states", "float64"),
                                        ("point_eigenvalues", "complex128"),
                                        ("points", "int64"), ("points", "float64"),
                                        ("points", "int64")), strict=True))  # fmt: skip
#: What sizes a network's weights (the arguments of _parameter_count, in order).
_SHAPE = ("cell", "task", "n", "layers")
#: What sizes its flat state (the arguments of _state_size, in order).
_STATE = ("cell", "variant", "n", "layers")
#: The settings that make a network's weights and how it runs (rnnlab.analysis.trained_network).
_SIZES = (*_SHAPE, "activation", "variant", "init", "init_scale", "forget_bias", "seed")
#: What makes a network: cases that differ only in test_length share one trained network.
_NETWORK = ("seed", "learning_rate", "momentum", "clip_threshold")


class TrainFamily(UpdateFamily):
    """Training runs over a grid (see the module docstring). Defaults follow Pascanu et al.
    (2013)'s public code: 50 hidden units, SGD with learning rate 0.01, batch 20, the
    gradient norm clipped at 1."""

    name = "train"
    no_input_why: ClassVar[str] = "the task makes the input"
    params: ClassVar[dict[str, Param]] = {
        "cell": Param(str, "lstm", ("rnn", "lstm", "gru", "cec")),
        "task": Param(str, "adding", tuple(TASKS)),
        "n": Param(int, 50, minimum=1, help="hidden units per layer"),
        "layers": Param(int, 1, minimum=1, help="stacked layers"),
        "length": Param(int, 50, minimum=2, help="the task's length T"),
        "activation": Param(str, "tanh", ACTIVATIONS, help="f of the rnn and cec cells"),
        "variant": Param(str, "vanilla", LSTM_VARIANTS, help="LSTM variant"),
        "init": Param(str, "pytorch", TRAIN_INITS, help="weight initialisation"),
        "init_scale": Param(
            float, None, minimum=0.0, help="its scale (default: 0.1 for normal and uniform, else 1)"
        ),
        "forget_bias": Param(float, 0.0, help="added to the LSTM forget-gate bias"),
        "optimizer": Param(str, "sgd", OPTIMIZERS),
        "learning_rate": Param(float, 0.01, minimum=0.0),
        "momentum": Param(float, 0.9, minimum=0.0, help="momentum and nesterov"),
        "clip": Param(str, "norm", CLIPS, help="gradient clipping rule"),
        "clip_threshold": Param(float, 1.0, minimum=0.0),
        "batch": Param(int, 20, minimum=1, help="sequences per update"),
        "test_length": Param(int, 0, minimum=0, help="a longer test length (0: none)"),
        "seed": Param(int, 0, minimum=0, help="seed of the weights and the data"),
    }
    #: The settings that make a network (rnnlab.analysis.trained_network reads them).
    network_settings: ClassVar[tuple[str, ...]] = _SIZES
    table: ClassVar[dict] = {
        **own_table(_STEP, _SUMMARY),
        _WEIGHTS: Output(_WEIGHTS, "weights", (), -1, "float64"),
        **{v: Output(v, kind, (), -1, dtype) for v, (kind, dtype) in _FIXED.items()},
    }

    def outputs(self, fixed, grid):
        """Every variable; all but the trained weights and the fixed points by default
        (asked for by name in ``run.outputs``)."""
        names = tuple(self.table)
        return names, tuple(v for v in names if v != _WEIGHTS and v not in _FIXED)

    def variable_attrs(self, name: str) -> dict:
        """The trained weights carry the family's defaults of the settings that size a
        network (so a reader of the store alone can rebuild one); the fixed points' class
        its meanings (CF flags)."""
        attrs = super().variable_attrs(name)
        if name == _WEIGHTS:
            attrs["model_defaults"] = json.dumps({k: self.params[k].default for k in _SIZES})
        if name == "fixed_points_kind":
            attrs["flag_values"] = list(range(len(FIXED_POINT_KINDS)))
            attrs["flag_meanings"] = " ".join(FIXED_POINT_KINDS)
        return attrs

    def parameters(self, fixed, grid):
        """The weights of the grid's largest network (its cell, task, n and layers)."""
        return self._grid_largest(fixed, grid, _SHAPE, _parameter_count)

    def state_size(self, fixed, grid):
        """The flat state of the grid's largest network (its cell, variant, n and layers)."""
        return self._grid_largest(fixed, grid, _STATE, _state_size)

    def _grid_largest(self, fixed, grid, keys, size) -> int:
        """The largest ``size(*values of keys)`` over every combination the grid makes."""
        values = [np.atleast_1d(grid[k]) if k in grid else [fixed.get(k, self.params[k].default)]
                  for k in keys]  # fmt: skip
        return max(size(*key) for key in itertools.product(*values))

    def check_run(self, fixed, grid, run, problems):
        """The clipping threshold must be positive."""
        super().check_run(fixed, grid, run, problems)
        thr = np.atleast_1d(grid.get("clip_threshold", fixed.get("clip_threshold", 1.0)))
        if np.any(np.asarray(thr, dtype=float) <= 0):
            problems.append("model.clip_threshold: must be > 0")
        if run is not None and run.num_fixed_points > run.fixed_point_starts:
            problems.append(f"run.num_fixed_points: at most run.fixed_point_starts "
                            f"({run.fixed_point_starts}): a network has no more fixed points "
                            "than starts")  # fmt: skip

    def case_seconds(self, params, run):
        """A forward and backward pass costs about 4 G H (H + I) flops per step and sample,
        at about 6 GFLOP/s (measured on the 2-core machine, LSTM and RNN, H = 32)."""
        h = params["n"].astype(float) * params["layers"].astype(float)
        g = np.array([CELL_GATES[c] for c in params["cell"]], dtype=float)
        flops = 4 * g * h * (h + 10) * params["batch"].astype(float) * _sequence_steps(params)
        seconds = run.steps * (flops / 6e9 + 2e-4)
        if _asks(run, _FIXED):  # Newton from every start: about 50 steps of a
            keys = zip(*(params[k] for k in _STATE), strict=True)
            s = np.array([_state_size(*key) for key in keys], dtype=float)
            per_start = 50 * ((s * s * g * h + s**3) / 3e9 + 1e-4)  # Jacobian, a solve, 1e-4 s
            seconds = seconds + run.fixed_point_starts * per_start
        return seconds

    def case_bytes(self, params, run):
        """BPTT stores every state and cache of a batch: about 8 steps batch 12 H bytes a
        layer, and the weights with the optimiser's two copies."""
        h = params["n"].astype(float)
        steps = _sequence_steps(params)
        per_layer = 8 * steps * params["batch"].astype(float) * 12 * h + 3 * 8 * 4 * h * 2 * h
        nbytes = per_layer * params["layers"].astype(float)
        if _asks(run, _FIXED):  # the stored points, eigenvalues
            s = 2 * h * params["layers"].astype(float)  # and starts (at most 2 H a layer)
            nbytes = nbytes + 8 * s * (3 * run.num_fixed_points + run.fixed_point_starts + s)
        return nbytes

    def run_cases(self, params, run, outputs):
        """Train the cases in groups that share every setting but the seed, the learning
        rate, the momentum, the clipping threshold and the test length."""
        # the block's widest network, if the weights are stored: every group pads to it (and
        # the writer to the store's widest); likewise its widest state for the fixed points
        width = _block_largest(params, _SHAPE, _parameter_count) if _WEIGHTS in outputs else 0
        fixed = any(v in _FIXED for v in outputs)
        states = _block_largest(params, _STATE, _state_size) if fixed else 0
        return run_grouped(params, _TOGETHER, lambda p: self._group(p, run, width, states))

    def _group(self, p, run, width=0, states=0):
        """Train each distinct network of the group once, test it at every test length the
        group asks for, and give each case its own network's results."""
        first = {k: p[k][0] for k in _TOGETHER}
        keys = [tuple(p[k][i] for k in _NETWORK) for i in range(len(p["seed"]))]
        order = {key: j for j, key in enumerate(dict.fromkeys(keys))}
        back = np.array([order[key] for key in keys])
        pick = np.array([keys.index(key) for key in order])
        tests = sorted({int(v) for v in p["test_length"] if int(v) > 0})
        res = train(
            str(first["cell"]), str(first["task"]), seeds=p["seed"][pick].astype(np.int64),
            hidden=int(first["n"]), layers=int(first["layers"]), length=int(first["length"]),
            activation=_activation(first),
            variant=str(first["variant"]), init=str(first["init"]),
            init_scale=None if first["init_scale"] is None else float(first["init_scale"]),
            forget_bias=float(first["forget_bias"]), optimizer=str(first["optimizer"]),
            learning_rate=p["learning_rate"][pick].astype(float),
            momentum=p["momentum"][pick].astype(float), clip=str(first["clip"]),
            clip_threshold=p["clip_threshold"][pick].astype(float), batch=int(first["batch"]),
            updates=run.steps, records=self.time_steps(run), eval_lengths=tests,
            keep_weights=width > 0 or states > 0, parallel=False,
        )  # fmt: skip
        col = np.array([tests.index(int(v)) if int(v) > 0 else -1 for v in p["test_length"]])
        out = {"train_loss": res["loss"][back], "train_grad_norm": res["grad_norm"][back]}
        for k in ("clipped_fraction", "max_step", "diverged", "solved_update", "final_loss",
                  "final_accuracy"):  # fmt: skip
            out[k] = res[k][back]
        for name, key in (("test_loss", "eval_loss"), ("test_accuracy", "eval_accuracy")):
            vals = res[key][back] if tests else np.zeros((len(back), 1))
            out[name] = np.where(col >= 0, vals[np.arange(len(back)), np.maximum(col, 0)], np.nan)
        out["baseline"] = np.full(len(back), res["baseline"])
        if width:
            vec = network_vector(res["layers"], res["readout"])[back]
            out[_WEIGHTS] = np.pad(vec, ((0, 0), (0, width - vec.shape[1])),
                                   constant_values=np.nan)  # fmt: skip
        if states:
            found = _fixed_points(res, first, run, states)
            out.update({k: v[back] for k, v in found.items()})
        return out


def _parameter_count(cell, task, n, layers) -> int:
    """Weights of a network of this cell, task (its inputs and outputs) and size."""
    t = TASKS[str(task)]
    return parameter_count(str(cell), int(n), int(layers), t.inputs, t.outputs)


def _block_largest(params, keys, size) -> int:
    """The largest ``size(*values of keys)`` over the block's cases."""
    return max(size(*key) for key in set(zip(*(params[k] for k in keys), strict=True)))


def _activation(first) -> str:
    """The engine's name of a group's activation (the family's "linear" is "identity")."""
    return "identity" if first["activation"] == "linear" else str(first["activation"])


def _state_size(cell, variant, n, layers) -> int:
    """Entries of a network's flat state (every layer's h, and c for the LSTM)."""
    return int(layers) * _rows(str(cell), str(variant), int(n))


def _fixed_points(res, first, run, width) -> dict:
    """The fixed points without input of each network trained (its ``res["layers"]``), at
    most ``run.num_fixed_points`` of them, padded to ``width`` state entries."""
    m, P = len(res["final_loss"]), run.num_fixed_points
    out = {"fixed_points_count": np.full(m, -1), "fixed_points_outside": np.full(m, -1),
           "fixed_points_state": np.full((m, P, width), np.nan),
           "fixed_points_eigenvalues": np.full((m, P, width), complex(np.nan, np.nan)),
           "fixed_points_kind": np.full((m, P), -1),
           "fixed_points_residual": np.full((m, P), np.nan),
           "fixed_points_starts": np.full((m, P), -1)}  # fmt: skip
    activation = _activation(first)
    for i in range(m):
        layers = [{k: v[i] for k, v in w.items()} for w in res["layers"]]
        if not all(np.isfinite(v).all() for w in layers for v in w.values()):
            continue  # a diverged network: nothing to linearise
        net = {"cell": str(first["cell"]), "layers": layers, "activation": activation,
               "variant": str(first["variant"]), "task": str(first["task"])}  # fmt: skip
        try:
            _, fp = visited_fixed_points(net, int(first["length"]), starts=run.fixed_point_starts)
        except ValueError:  # its states are not finite on the task (relu, identity)
            continue
        k, S = min(len(fp.kind), P), fp.points.shape[-1]
        out["fixed_points_count"][i], out["fixed_points_outside"][i] = len(fp.kind), fp.outside
        out["fixed_points_state"][i, :k, :S] = fp.points[:k]
        out["fixed_points_eigenvalues"][i, :k, :S] = fp.eigenvalues[:k]
        out["fixed_points_kind"][i, :k] = [FIXED_POINT_KINDS.index(c) for c in fp.kind[:k]]
        out["fixed_points_residual"][i, :k] = fp.residual[:k]
        out["fixed_points_starts"][i, :k] = fp.starts[:k]
    return out


def _sequence_steps(params) -> np.ndarray:
    """Steps of each case's training sequences (its task at its length)."""
    pairs = zip(params["task"], params["length"], strict=True)
    return np.array([TASKS[t].steps(int(n)) for t, n in pairs], dtype=float)
