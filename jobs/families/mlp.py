"""The ``mlp`` family: deep feed-forward nets, the layer index as time."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rnnlab.engine import (
    ACTIVATIONS,
    INITS,
    OUTPUTS,
    impulse_direction,
    mlp_biases,
    mlp_outputs,
    mlp_weights,
    simulate_mlp,
)

from .base import (
    MEANFIELD_OUTPUTS,
    MEANFIELD_TABLE,
    Family,
    Param,
    lyapunov_bytes,
    lyapunov_seconds,
    recurrence_options,
    run_grouped,
    with_meanfield,
)

__all__ = ["MlpFamily"]


class MlpFamily(Family):
    """Deep feed-forward nets h(t) = f(s W_t h(t-1) + b), the layer index t as time
    (``run.steps`` is the depth)."""

    step_name: ClassVar[str] = "layer"
    name = "mlp"
    table: ClassVar[dict] = {**OUTPUTS, **MEANFIELD_TABLE}
    params: ClassVar[dict[str, Param]] = {
        "activation": Param(str, "tanh", (*ACTIVATIONS, "linear")),
        "n": Param(int, 64, minimum=1, help="width"),
        "init": Param(str, "normal", INITS, help="distribution of the weights"),
        "gain": Param(float, 1.0, minimum=0.0, help="weights scaled to variance gain^2 / n"),
        "bias": Param(float, 0.0, help="bias of every unit (their mean with bias_std)"),
        "bias_std": Param(
            float, 0.0, minimum=0.0, help="sigma_b: biases N(bias, sigma_b^2) per unit and layer"
        ),
        "amplitude": Param(float, 1.0, help="input norm a"),
        "seed": Param(int, 0, minimum=0, help="seed of the weights and input direction"),
    }

    def outputs(self, fixed, grid):
        """See :func:`rnnlab.engine.mlp_outputs`; and mean-field theory's variables, when
        asked for (sigma_w = gain: every init has weights of variance gain^2 / n; sigma_b =
        bias_std)."""
        available, default = mlp_outputs()
        return available + MEANFIELD_OUTPUTS, default

    def units(self, fixed, grid):
        return int(fixed.get("n", self.params["n"].default))

    def validate(self, fixed, grid, run, problems):
        super().validate(fixed, grid, run, problems)
        if run is not None and run.gradient == "estimate":
            problems.append("run.gradient: family 'mlp' computes 'exact' or 'none'")

    def case_seconds(self, params, run):
        """Per layer: two matrix-vector products and an n^3 Jacobian product and, for the
        weight gradients, the backward pass (the layer's tangent for 2 n columns, 4 n^3), at
        20 GFLOP/s."""
        n = params["n"].astype(float)
        grad = 0.0 if run.gradient == "none" else 1.0
        back = 1.0 if self._backward(run) else 0.0
        per_step = 1e-6 + (4 * n * n + grad * 2 * n**3 + back * 4 * n**3) / 20e9
        return per_step * run.steps + lyapunov_seconds(run, n, 2 * n**2)

    def variable_attrs(self, name: str) -> dict:
        """The time axis of a deep net is its layer index: its step counts and rates are
        per layer, and say so."""
        attrs = super().variable_attrs(name)
        if name == "time":
            attrs["long_name"] = "layer index"
            attrs["description"] = "Layer index l of the deep net (the mlp family's time axis)."
        elif name in ("memory_horizon", "blowup_step", "saturation_step"):
            attrs["units"] = "layers"
            attrs["long_name"] += " (in layers)"
            attrs["description"] = (
                "Counted in layers (the mlp family's time axis is the layer index). "
                + attrs["description"].replace("step", "layer")
            )
        elif attrs["units"] == "1/step":
            attrs["units"] = "1/layer"
        return attrs

    @staticmethod
    def _backward(run) -> bool:
        """Whether the sweep's variables need the backward pass (the weight gradients)."""
        asked = mlp_outputs()[1] if run.outputs is None else run.outputs
        return any("bptt" in OUTPUTS[v].needs for v in asked if v in OUTPUTS)

    def case_bytes(self, params, run):
        """The weights of every layer (steps n x n matrices) and the n x n tangent; for the
        weight gradients, the stored states (steps n) and the backward pass's n x 2n
        tangents (about 10 n^2)."""
        n = params["n"].astype(float)
        back = 1.0 if self._backward(run) else 0.0
        fwd = 8 * ((run.steps + 2) * n**2 + back * (run.steps * n + 10 * n**2))
        return fwd + lyapunov_bytes(run, n)

    def run_cases(self, params, run, outputs):
        """Run cases given as flat per-case parameter arrays; return per-variable arrays."""
        params = dict(params)
        params["activation"] = np.array(
            [("identity" if a == "linear" else a) for a in params["activation"]], dtype=object
        )
        keys = ("activation", "n", "init", "seed", "bias_std")  # one W_t and b_t per group

        def simulate(params, names):
            return run_grouped(params, keys, lambda p: self._run_group(p, run, names))

        def theory(p):
            return p["activation"], p["gain"], p["bias_std"], p["bias"]

        return with_meanfield(simulate, params, outputs, theory)

    def _run_group(self, p, run, outputs):
        n = int(p["n"][0])
        init = str(p["init"][0])
        seed = int(p["seed"][0])
        W = mlp_weights(n, run.steps, init, seed)
        # the scale that gives entries of variance gain^2 / n: N(0, 1) entries, U(-1, 1)
        # entries (variance 1/3), nn.Linear's U(-1/sqrt(n), 1/sqrt(n)) (variance 1/(3n)),
        # orthogonal rows of unit norm (variance 1/n)
        unit = {"normal": 1 / np.sqrt(n), "uniform": np.sqrt(3 / n), "pytorch": np.sqrt(3.0)}
        scale = p["gain"].astype(np.float64) * unit.get(init, 1.0)
        return simulate_mlp(
            W,
            scale,
            p["bias"].astype(np.float64)[:, None],
            layer_biases=float(p["bias_std"][0]) * mlp_biases(n, run.steps, seed),
            activation=str(p["activation"][0]),
            amplitude=p["amplitude"].astype(np.float64),
            input_direction=impulse_direction(n, seed),
            outputs=list(outputs),
            **recurrence_options(run, inputs=False),
        )
