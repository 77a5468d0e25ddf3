"""The layered families: LSTM (and Greff et al.'s variants), GRU and the constant error
carousel, from PyTorch-layout weights through :func:`rnnlab.engine.simulate_network`."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from rnnlab.engine import (
    ACTIVATIONS,
    INITS,
    LSTM_VARIANTS,
    init_layers,
    network_outputs,
    simulate_network,
)

from .base import (
    Family,
    Param,
    _given,
    capacity_bytes,
    capacity_seconds,
    lyapunov_bytes,
    lyapunov_seconds,
    recurrence_options,
    run_grouped,
)

__all__ = ["CecFamily", "GruFamily", "LayeredFamily", "LstmFamily"]


def _loss_step(p: dict) -> int | None:
    v = p["loss_step"][0]
    return int(v) if _given(v) else None


def _simulate_layered(cell: str, layers: list[dict], p: dict, run, outputs, **options):
    """:func:`simulate_network` for one group of cases, with the run table's settings."""
    return simulate_network(
        cell,
        layers,
        steps=run.steps,
        input=run.input,
        amplitude=p["amplitude"].astype(np.float64),
        noise_seed=p["seed"].astype(np.int64),
        loss_step=_loss_step(p),
        outputs=list(outputs),
        **recurrence_options(run),
        **options,
    )


_COMMON_LAYERED = {
    "n": Param(int, 16, minimum=1, help="hidden units per layer"),
    "layers": Param(int, 1, minimum=1, help="number of stacked layers"),
    "init": Param(str, "pytorch", INITS, help="weight initialisation"),
    "init_scale": Param(float, None, minimum=0.0, help="s of N(0,s^2), a of U(-a,a), gain"),
    "amplitude": Param(float, 1.0, help="input amplitude a (negative allowed)"),
    "seed": Param(int, 0, minimum=0, help="seed of the weights and noise"),
    "loss_step": Param(int, None, minimum=0, help="T of the loss for the input-weight gradient"),
}


class LayeredFamily(Family):
    """A cell of :func:`rnnlab.engine.simulate_network` over a grid, weights from
    :func:`rnnlab.engine.init_layers` (PyTorch's layout)."""

    cell = ""
    #: parameters that change the kernel or the array shapes: cases are grouped by them
    structural: ClassVar[tuple[str, ...]] = ("n", "layers")

    def validate(self, fixed, grid, run, problems):
        super().validate(fixed, grid, run, problems)
        inits = np.atleast_1d(grid.get("init", fixed.get("init", "pytorch")))
        scales = np.atleast_1d(grid.get("init_scale", fixed.get("init_scale")))
        if "pytorch" in inits and scales[0] is not None:
            problems.append(
                "model.init_scale: init 'pytorch' has no scale: drop init_scale or choose init "
                "normal, uniform or orthogonal"
            )
        if run is not None and run.gradient == "estimate":
            problems.append(f"run.gradient: family {self.name!r} computes 'exact' or 'none'")

    def outputs(self, fixed, grid):
        """See :func:`rnnlab.engine.network_outputs`."""
        return network_outputs(self.cell, grid.get("loss_step", fixed.get("loss_step")) is not None)

    def case_seconds(self, params: dict, run) -> np.ndarray:
        """Single-core seconds per case: the forward pass of two runs and, with the gradient,
        the Jacobian product of k = L H (LSTM: 2 L H) columns, at about 20 GFLOP/s."""
        n = params["n"].astype(float)
        L = params["layers"].astype(float)
        G = {"lstm": 4, "gru": 3}.get(self.cell, 1)
        k = (2.0 if self.cell == "lstm" else 1.0) * L * n
        grad = 0.0 if run.gradient == "none" else 1.0
        fwd = 2 * L * 4 * G * n * n
        tan = grad * (2 * L - 1) * 2 * G * n * n * k + grad * 30 * G * n * k * L
        R = (2.0 if self.cell == "lstm" else 1.0) * n
        per_column = (2 * L - 1) * 2 * G * n * n + 30 * G * n * L
        lyap = lyapunov_seconds(run, L * R, per_column) + capacity_seconds(run, L * n)
        return (1e-6 + (fwd + tan) / 20e9) * run.steps + lyap

    def case_bytes(self, params: dict, run) -> np.ndarray:
        """The weights (2 G H^2 per layer, and the FGR matrices) and, with the gradient, the
        tangent of k = L R columns over the L R state rows (R = 2 H for the LSTM's h and c)
        and its gate rows."""
        n = params["n"].astype(float)
        L = params["layers"].astype(float)
        G = {"lstm": 4, "gru": 3}.get(self.cell, 1)
        R = (2.0 if self.cell == "lstm" else 1.0) * n
        grad = 0.0 if run.gradient == "none" else 1.0
        weights = 2 * L * G * n**2 + (9 * L * n**2 if self.cell == "lstm" else 0.0)
        tangents = 8 * (weights + grad * (2 * (L * R) ** 2 + 3 * G * n * L * R))
        return tangents + lyapunov_bytes(run, L * R) + capacity_bytes(run, L * n)

    def weights(self, p: dict, i: int) -> list[dict]:
        """The layers of case i."""
        scale = p["init_scale"][i]
        return init_layers(
            self.cell,
            int(p["n"][i]),
            int(p["layers"][i]),
            init=str(p["init"][i]),
            scale=float(scale) if _given(scale) else None,
            seed=int(p["seed"][i]),
            **self.weight_options(p, i),
        )

    def weight_options(self, p: dict, i: int) -> dict:
        return {}

    def run_cases(self, params: dict, run, outputs) -> dict[str, np.ndarray]:
        """Run cases given as flat per-case parameter arrays; return per-variable arrays."""
        return run_grouped(params, self.structural, lambda p: self._run_group(p, run, outputs))

    def _run_group(self, p: dict, run, outputs):
        m = len(p["seed"])
        per_case = [self.weights(p, i) for i in range(m)]
        layers = [
            {key: np.stack([w[layer][key] for w in per_case]) for key in per_case[0][layer]}
            for layer in range(len(per_case[0]))
        ]
        self.adjust(layers, p)
        return _simulate_layered(self.cell, layers, p, run, outputs, **self.options(p))

    def adjust(self, layers: list[dict], p: dict) -> None:
        """Per-case changes to the stacked weights (e.g. a bias)."""

    def options(self, p: dict) -> dict:
        """Keyword arguments of :func:`simulate_network` shared by a group."""
        return {}


class LstmFamily(LayeredFamily):
    """``torch.nn.LSTM`` (optionally with peepholes) and the variants of Greff et al. 2017."""

    name = "lstm"
    cell = "lstm"
    structural = ("n", "layers", "variant", "peepholes")
    params: ClassVar[dict[str, Param]] = {
        **_COMMON_LAYERED,
        "variant": Param(str, "vanilla", tuple(LSTM_VARIANTS), help="Greff et al.'s variant"),
        "peepholes": Param(bool, False, help="peephole weights p_i, p_f, p_o"),
        "forget_bias": Param(
            float, 0.0, help="added to the forget-gate bias (CIFG: through f = 1 - i)"
        ),
    }

    def weights(self, p: dict, i: int) -> list[dict]:
        """The layers of case i. CIFG has no forget gate of its own (f = 1 - i): its forget
        bias b is subtracted from the input gate's, so that f = sigmoid(b - z_i) is biased
        like a forget gate (not silently ignored)."""
        layers = super().weights(p, i)
        if str(p["variant"][i]) == "CIFG":
            n = int(p["n"][i])
            for d in layers:
                d["bias_ih"][:n] -= float(p["forget_bias"][i])
        return layers

    def weight_options(self, p, i):
        return dict(
            forget_bias=float(p["forget_bias"][i]),
            peepholes=bool(p["peepholes"][i]),
            gate_recurrence=str(p["variant"][i]) == "FGR",
        )

    def options(self, p):
        return {"variant": str(p["variant"][0])}


class GruFamily(LayeredFamily):
    """``torch.nn.GRU``."""

    name = "gru"
    cell = "gru"
    params: ClassVar[dict[str, Param]] = dict(_COMMON_LAYERED)


class CecFamily(LayeredFamily):
    """The constant error carousel h(t) = h(t-1) + f(W_ih x(t) + b)."""

    name = "cec"
    cell = "cec"
    structural = ("n", "layers", "activation")
    params: ClassVar[dict[str, Param]] = {
        "activation": Param(str, "tanh", (*ACTIVATIONS, "linear")),
        **_COMMON_LAYERED,
        "bias": Param(float, 0.0, help="added to every unit's bias"),
    }

    def adjust(self, layers, p):
        for w in layers:
            w["bias_ih"] = w["bias_ih"] + p["bias"].astype(np.float64)[:, None]

    def options(self, p):
        act = str(p["activation"][0])
        return {"activation": "identity" if act == "linear" else act}
