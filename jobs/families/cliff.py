"""The ``cliff`` family: gradient descent on the one-unit network of Pascanu et al. (2013).

A case is one descent: a starting point (w, bias), a learning rate and a clipping threshold
(0: none), on the loss (sigmoid(x(length)) - target)^2 of x(t) = w sigmoid(x(t-1)) + bias
(:mod:`rnnlab.engine.cliff`). The time axis is the update index k: the values before update k
(k = run.steps - 1: after the last update). ``run.steps = 1`` gives the loss landscape itself
(the loss and gradient at every grid point, no update).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rnnlab.engine.cliff import CLIFF, cliff_descent

from .base import Param, UpdateFamily, own_table, run_grouped

__all__ = ["SOLVED_LOSS", "CliffFamily"]

#: A descent has solved the task when its loss falls below this: |sigmoid(x(T)) - y| < 0.01.
SOLVED_LOSS = 1e-4

_STEP = ("loss", "grad_norm", "w_path", "bias_path")
_SUMMARY = {"final_loss": "float64", "clipped_fraction": "float64", "max_step": "float64",
            "solved_update": "int64", "diverged": "bool"}  # fmt: skip


class CliffFamily(UpdateFamily):
    """Many gradient descents on the cliff loss at once (see the module docstring)."""

    name = "cliff"
    params: ClassVar[dict[str, Param]] = {
        "w": Param(float, 8.0, help="the recurrent weight where the descent starts"),
        "bias": Param(float, -3.0, help="the bias where the descent starts"),
        "learning_rate": Param(float, 0.1, minimum=0.0, help="step size of gradient descent"),
        "clip": Param(float, 0.0, minimum=0.0, help="norm clipping threshold (0: none)"),
        "length": Param(int, CLIFF["length"], minimum=1, help="steps T before the loss"),
        "x0": Param(float, CLIFF["x0"], help="the initial state x(0)"),
        "target": Param(float, CLIFF["target"], help="the target of sigmoid(x(T))"),
    }
    step_name: ClassVar[str] = "update point"
    no_input_why: ClassVar[str] = "the cliff network has no input"
    table: ClassVar[dict] = own_table(_STEP, _SUMMARY)

    def check_run(self, fixed, grid, run, problems):
        """A descent computes in float64."""
        super().check_run(fixed, grid, run, problems)
        if run is not None and run.dtype != "float64":
            problems.append("run.dtype: the cliff family computes in float64: drop run.dtype")

    def case_seconds(self, params, run):
        """About 6 ns per step of the recursion and update (measured on the 2-core machine)."""
        return 6e-9 * params["length"].astype(float) * run.steps

    def case_bytes(self, params, run):
        """The path of each descent: 4 values per update."""
        return np.full(len(params["w"]), 32.0 * run.steps)

    def run_cases(self, params, run, outputs):
        """Run the cases in groups of equal length, x0 and target."""
        return run_grouped(params, ("length", "x0", "target"), lambda p: self._group(p, run))

    def _group(self, p, run):
        f = {k: p[k].astype(np.float64) for k in ("w", "bias", "learning_rate", "clip")}
        n = len(f["w"])
        d = cliff_descent(f["w"], f["bias"], learning_rate=f["learning_rate"], clip=f["clip"],
                          updates=max(run.steps - 1, 1), length=int(p["length"][0]),
                          x0=float(p["x0"][0]), target=float(p["target"][0]),
                          parallel=False)  # fmt: skip
        k = self.time_steps(run)
        loss = d["loss"][:, : run.steps]
        solved = loss < SOLVED_LOSS
        last = np.where(np.isfinite(loss), np.arange(loss.shape[1]), -1).max(axis=1)
        return {
            "loss": loss[:, k],
            "grad_norm": d["grad_norm"][:, k],
            "w_path": d["w"][:, k],
            "bias_path": d["b"][:, k],
            "final_loss": loss[np.arange(n), np.maximum(last, 0)],
            "clipped_fraction": d["clipped_fraction"] if run.steps > 1 else np.zeros(n),
            "max_step": d["max_step"] if run.steps > 1 else np.zeros(n),
            "solved_update": np.where(solved.any(axis=1), solved.argmax(axis=1), -1),
            "diverged": ~np.isfinite(loss[:, -1]),
        }
