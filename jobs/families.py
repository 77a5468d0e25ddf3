"""Model families as the sweep runner sees them: parameters, validation, cost, and a run.

The runner's core (grid, blocks, store, scheduling) knows nothing of any model: it asks the
family for its parameters, the variables it writes (``run.outputs``, or the family's
default), the cost of a case, and to run a batch of cases given as flat arrays of parameter
values. A new family is a new :class:`Family` subclass registered in :data:`FAMILIES`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rnnlab.engine import (
    ACTIVATIONS,
    INITS,
    LSTM_VARIANTS,
    OUTPUTS,
    WEIGHT_KINDS,
    base_matrix,
    case_rng,
    impulse_direction,
    init_layers,
    mlp_outputs,
    mlp_weights,
    network_outputs,
    record_steps,
    remove_dominant_component,
    rnn_outputs,
    simulate_mlp,
    simulate_network,
    simulate_rnn,
)

from .schema import VARIABLES

__all__ = [
    "FAMILIES",
    "CecFamily",
    "Family",
    "GruFamily",
    "LstmFamily",
    "MlpFamily",
    "Param",
    "RnnFamily",
    "get_family",
]


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its type, default and allowed values."""

    kind: type
    default: Any
    choices: tuple | None = None
    minimum: float | None = None
    help: str = ""


class Family:
    """The interface of a model family (see :class:`RnnFamily`)."""

    name: str = ""
    params: ClassVar[dict[str, Param]] = {}

    def validate(self, fixed: dict, grid: dict[str, np.ndarray], run, problems: list[str]):
        """Append one line per problem of the model table and the grid."""
        for key in fixed:
            if key not in self.params:
                problems.append(f"model.{key}: {self._unknown(key)}")
            elif key in grid:
                problems.append(
                    f"model.{key}: also a grid dimension: keep it in [model] or in [grid], not both"
                )
        for key in grid:
            if key not in self.params:
                problems.append(f"grid.{key}: {self._unknown(key)}")
        for key, p in self.params.items():
            if key in grid:
                for i in self._suspects(grid[key], p):
                    self._check_value(f"grid.{key}[{i}]", grid[key][i], p, problems)
            elif key in fixed:
                self._check_value(f"model.{key}", fixed[key], p, problems)
        self.check_run(fixed, grid, run, problems)

    def _unknown(self, key: str) -> str:
        return f"unknown parameter {key!r} for family {self.name!r}: use one of " + ", ".join(
            self.params
        )

    @staticmethod
    def _suspects(values: np.ndarray, p: Param):
        """Indices of the grid values to check one by one: for numbers of the right kind,
        only the non-finite and too small ones (found at once: a grid dimension may hold
        millions of values); else all."""
        kinds = {float: "iuf", int: "iu"}.get(p.kind, "")
        if p.choices is None and values.dtype.kind in kinds:
            bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.size, bool)
            if p.minimum is not None:
                bad |= values < p.minimum
            return np.flatnonzero(bad)
        return range(values.size)

    @staticmethod
    def _check_value(where: str, v, p: Param, problems: list[str]) -> None:
        v = v.item() if isinstance(v, np.generic) else v
        if p.kind is float:
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        elif p.kind is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, p.kind)
        if not ok:
            problems.append(f"{where}: expected {p.kind.__name__}, got {v!r}")
            return
        if p.choices is not None and v not in p.choices:
            problems.append(f"{where}: {v!r} is not allowed: use one of {', '.join(p.choices)}")
        if p.minimum is not None and v < p.minimum:
            problems.append(f"{where}: must be >= {p.minimum}, got {v!r}")
        if p.kind is float and not np.isfinite(v):
            problems.append(f"{where}: must be finite, got {v!r}")

    def check_run(self, fixed: dict, grid: dict, run, problems: list[str]) -> None:
        """Problems of settings that depend on the run table (loss_step < steps, outputs)."""
        if run is None:
            return
        ls = np.atleast_1d(grid.get("loss_step", fixed.get("loss_step")))
        if "loss_step" in self.params and ls[0] is not None and np.max(ls) >= run.steps:
            problems.append(
                f"model.loss_step: {int(np.max(ls))} is not a simulated step: "
                f"make it < run.steps = {run.steps}"
            )
        if run.outputs is None:
            return
        if not run.outputs:
            problems.append("run.outputs: empty list: name the variables to store, or leave it out")
        try:
            available, _ = self.outputs(fixed, grid)
        except (TypeError, ValueError):  # a bad model value, reported on its own line
            return
        for i, name in enumerate(run.outputs):
            if name not in available:
                why = OUTPUT_HINTS.get(name, "")
                problems.append(
                    f"run.outputs[{i}]: {name!r} is not an output of this sweep"
                    + (f" ({why})" if why else "")
                    + f": use names from {', '.join(available)}"
                )
            elif OUTPUTS[name].kind == "vector":
                varying = [k for k in ("n", "layers") if k in grid]
                if varying:
                    problems.append(
                        f"run.outputs[{i}]: {name} has one entry per unit: it needs a fixed "
                        f"{' and '.join(varying)} (not a grid dimension)"
                    )

    def outputs(self, fixed: dict, grid: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(available, default) variables of a sweep of this family."""
        raise NotImplementedError

    def variables(self, fixed: dict, grid: dict, run) -> dict[str, str]:
        """The variables this sweep writes, each with its kind ("step", "summary" or
        "vector"): ``run.outputs`` or the family's default, in the engine's order. A summary
        named like a grid dimension (``spectral_radius`` swept as a dimension) is left out:
        the coordinate carries the value."""
        available, default = self.outputs(fixed, grid)
        asked = default if run.outputs is None else run.outputs
        names = [v for v in available if v in asked]
        return {
            v: OUTPUTS[v].kind for v in names if not (OUTPUTS[v].kind == "summary" and v in grid)
        }

    def units(self, fixed: dict, grid: dict) -> int:
        """Length of the ``unit`` dimension of vector variables (n times the layers)."""
        return int(fixed.get("n", self.params["n"].default)) * int(fixed.get("layers", 1))

    @staticmethod
    def time_steps(run) -> np.ndarray:
        """The recorded steps of the store's ``time`` dimension."""
        return record_steps(run.steps, run.record, run.num_records)

    def kernel_variants(self, fixed: dict, grid: dict) -> list[dict]:
        """Grid values that select different compiled kernels, one dict per kernel (the
        runner compiles each once before the workers start, see ``warm_kernels``). The
        layered kernels depend only on the family's cell and the run's precision."""
        return [{}]

    def variable_attrs(self, name: str) -> dict:
        """The stored attributes of a variable (the schema's; a family may say more)."""
        long_name, units, description = VARIABLES[name]
        return {"long_name": long_name, "units": units, "description": description}

    def case_bytes(self, params: dict, run) -> np.ndarray:
        """Working memory of each case in a block, beyond its results: weights, their
        transient copies and the tangent matrices (conservative; the results are counted
        by the planner)."""
        return np.zeros(len(params["seed"]))

    def case_params(self, fixed: dict, flat: dict[str, np.ndarray], ncase: int) -> dict:
        """Full per-case parameter arrays: grid values where given, else fixed or defaults."""
        out = {}
        for key, p in self.params.items():
            if key in flat:
                out[key] = np.asarray(flat[key])
            else:
                value = fixed.get(key, p.default)
                out[key] = np.full(ncase, value, dtype=object if p.kind is str else None)
        return out


_SCALINGS = ("spectral_radius", "max_singular_value", "gain")

#: Why a variable may be missing from a sweep, for the error message.
OUTPUT_HINTS = {
    "state": "n = 1 sweeps only: use state_norm",
    "fixed_point": "n = 1 sweeps only: use fixed_point_norm",
    "hidden_state": "n > 1 sweeps only: use state for n = 1",
    "log10_input_weight_grad": "it needs model.loss_step",
    "log10_layer_weight_grad": "family mlp only",
    "layer_weight_grad_participation": "family mlp only",
    "cell_norm": "family lstm only",
    "cell_state": "family lstm only",
    "log10_cell_gradient_norm": "family lstm only",
    "log10_carousel_gain": "family lstm only",
    "cell_growth_rate": "family lstm only",
}


class RnnFamily(Family):
    """h(t) = f(W h(t-1) + C x(t) + b): :func:`rnnlab.engine.simulate_rnn` over a grid."""

    name = "rnn"
    params: ClassVar[dict[str, Param]] = {
        "activation": Param(str, "tanh", (*ACTIVATIONS, "linear")),
        "n": Param(int, 1, minimum=1, help="number of hidden units"),
        "w": Param(float, None, help="the scalar recurrent weight (n = 1 only)"),
        "weights": Param(str, "gaussian", WEIGHT_KINDS, help="kind of recurrent matrix"),
        "spectral_radius": Param(float, None, minimum=0.0),
        "max_singular_value": Param(float, None, minimum=0.0),
        "gain": Param(float, None),
        "bias": Param(float, 0.0, help="bias of every unit"),
        "input_weight": Param(float, 1.0, help="c, or the length of C = c u for n > 1"),
        "amplitude": Param(float, 1.0, help="input amplitude a (negative allowed)"),
        "seed": Param(int, 0, minimum=0, help="seed of the weights, direction and noise"),
        "remove_dominant": Param(bool, False, help="remove u's dominant-eigenvector part"),
        "layers": Param(int, 1, minimum=1, help="stacked layers (orthogonal W_ih between)"),
        "loss_step": Param(int, None, minimum=0, help="T of the loss for the input-weight grad"),
    }

    def validate(self, fixed, grid, run, problems):
        super().validate(fixed, grid, run, problems)
        if _rnn_layered(fixed, grid) and run is not None and run.gradient == "estimate":
            problems.append("run.gradient: stacked layers and loss_step need 'exact' or 'none'")
        given = [k for k in _SCALINGS if k in fixed or k in grid]
        if len(given) > 1:
            problems.append(
                f"model: {' and '.join(given)} both scale W: give at most one of "
                + ", ".join(_SCALINGS)
            )
        if "w" in fixed or "w" in grid:
            if given:
                problems.append(f"model.w: w is the weight itself: drop {given[0]} or w")
            ns = np.atleast_1d(grid.get("n", fixed.get("n", 1)))
            if np.any(ns != 1):
                problems.append(
                    "model.w: w is the scalar weight (n = 1): for n > 1 use spectral_radius, "
                    "max_singular_value or gain"
                )

    def outputs(self, fixed, grid):
        """n = 1 sweeps have ``state`` and ``fixed_point``, n > 1 sweeps ``hidden_state``; a
        sweep over n (1 and more) has what both have; stacked layers or a loss step run the
        layered kernel (see :func:`rnnlab.engine.network_outputs`)."""
        if _rnn_layered(fixed, grid):
            return network_outputs("rnn", grid.get("loss_step", fixed.get("loss_step")) is not None)
        ns = np.atleast_1d(grid.get("n", fixed.get("n", 1)))
        if np.all(ns == 1):
            available, default = rnn_outputs(1)
            drop = ("second_eigenvalue_modulus",)  # NaN for scalar recursions
            return tuple(v for v in available if v not in drop), tuple(
                v for v in default if v not in drop
            )
        available, default = rnn_outputs(2)
        if np.any(ns == 1):
            common = set(rnn_outputs(1)[0])
            available = tuple(v for v in available if v in common)
            default = tuple(v for v in default if v in common)
        return available, default

    def case_seconds(self, params: dict, run) -> np.ndarray:
        """Estimated single-core seconds per case (measured on the 2-core AVX-512 machine).

        n = 1: 6.5 ns per step (lanes of 16 cases). n > 1: per step, 2 matrix-vector products
        (4 n^2 flops) and, with the gradient, a BLAS n x n x n product (2 n^3 flops) at about
        30 GFLOP/s.
        """
        n = params["n"].astype(float)
        grad = 0.0 if run.gradient == "none" else 1.0
        probes = np.where((run.gradient == "estimate") | (n > 128), run.gradient_probes, n)
        per_step = np.where(
            n == 1, 6.5e-9, 2e-7 + (4 * n**2 + grad * (2 * n**2 * probes + 4 * n**2)) / 30e9
        )
        if params["_layered"][0]:
            L = params["layers"].astype(float)
            per_step = 1e-6 + (8 * L * n**2 + grad * (2 * L - 1) * 2 * n**2 * L * n) / 20e9
        return per_step * run.steps

    def case_bytes(self, params: dict, run) -> np.ndarray:
        """n > 1: the case's matrix, the seeded base, its rescaled copy and the eigenvalue
        and SVD workspaces (about 4 n^2 values), and with the gradient the n x n tangent
        and its product (2 n^2); layered: 2 n^2 weights per layer and the (L n)^2 tangent."""
        n = params["n"].astype(float)
        grad = 0.0 if run.gradient == "none" else 1.0
        if params["_layered"][0]:
            L = params["layers"].astype(float)
            return 8 * (2 * L * n**2 + 4 * n**2 + grad * 2 * (L * n) ** 2)
        return np.where(n == 1, 0.0, 8 * (5 * n**2 + grad * 2 * n**2))

    def case_params(self, fixed, flat, ncase):
        out = super().case_params(fixed, flat, ncase)
        out["_layered"] = np.full(ncase, _rnn_layered(fixed, flat))
        return out

    def kernel_variants(self, fixed, grid):
        """The scalar kernel is compiled per activation; n > 1 runs the layered kernel."""
        acts = list(grid.get("activation", [None]))
        ns = np.atleast_1d(grid.get("n", [None]))
        kinds = [ns[ns == 1][:1], ns[ns != 1][:1]] if "n" in grid else [[None]]
        out = []
        for a in acts:
            for n in (v for kind in kinds for v in kind):
                out.append({k: v for k, v in (("activation", a), ("n", n)) if v is not None})
        return out

    def run_cases(self, params: dict, run, outputs) -> dict[str, np.ndarray]:
        """Run cases given as flat per-case parameter arrays; return per-variable arrays."""
        params = dict(params)
        params["activation"] = np.array(
            [("identity" if a == "linear" else a) for a in params["activation"]], dtype=object
        )
        if params["_layered"][0]:
            keys = ("activation", "n", "layers")
            return run_grouped(params, keys, lambda p: self._run_layered(p, run, outputs))
        return run_grouped(
            params,
            ("activation", "n"),
            lambda p: self._run_group(str(p["activation"][0]), int(p["n"][0]), p, run, outputs),
        )

    def _recurrent(self, p: dict, i: int, n: int, layer: int = 0) -> np.ndarray:
        """The scaled recurrent matrix of case i (n x n), from its weights kind and scaling."""
        base, rho, smax = _base(int(p["seed"][i]), n, str(p["weights"][i]), layer)
        factor = 1.0
        for key, current in (("spectral_radius", rho), ("max_singular_value", smax), ("gain", 1.0)):
            value = p[key][i]
            if _given(value):
                factor = float(value) / current if current else np.nan
        return base * factor

    def _run_layered(self, p: dict, run, outputs):
        """Stacked rnn layers (or a loss step) through :func:`simulate_network`."""
        m = len(p["seed"])
        n = int(p["n"][0])
        L = int(p["layers"][0])
        layers = []
        for layer in range(L):
            Whh = np.empty((m, n, n))
            Wih = np.empty((m, n, 1 if layer == 0 else n))
            for i in range(m):
                seed = int(p["seed"][i])
                if layer == 0 and n == 1 and _given(p["w"][i]):
                    Whh[i] = float(p["w"][i])
                else:
                    Whh[i] = self._recurrent(p, i, n, layer)
                if layer == 0:
                    u = impulse_direction(n, seed) * float(p["input_weight"][i])
                    if n > 1 and bool(p["remove_dominant"][i]):
                        u = remove_dominant_component(Whh[i], u)
                    Wih[i, :, 0] = u
                else:
                    Wih[i] = _base(seed, n, "orthogonal", -layer)[0]
            bias = np.repeat(p["bias"].astype(np.float64)[:, None], n, axis=1)
            layers.append({"weight_ih": Wih, "weight_hh": Whh, "bias_hh": bias})
        act = str(p["activation"][0])
        return _simulate_layered("rnn", layers, p, run, outputs, activation=act)

    def _run_group(self, act: str, n: int, p: dict, run, outputs):
        m = len(p["seed"])
        seeds = p["seed"].astype(np.int64)
        if n == 1 and _is_set(p["w"]).all():
            W = p["w"].astype(np.float64)
        else:
            W = np.empty((m, n, n)) if n > 1 else np.empty(m)
            for i in range(m):
                Wi = self._recurrent(p, i, n)
                W[i] = Wi[0, 0] if n == 1 else Wi
        c = p["input_weight"].astype(np.float64)
        if n == 1:
            C = c
            b = p["bias"].astype(np.float64)
        else:
            u = np.stack([impulse_direction(n, int(s)) for s in seeds])
            C = c[:, None] * u
            b = np.repeat(p["bias"].astype(np.float64)[:, None], n, axis=1)
        return simulate_rnn(
            W,
            C,
            b,
            remove_dominant=p["remove_dominant"].astype(bool) if n > 1 else False,
            activation=act,
            steps=run.steps,
            input=run.input,
            amplitude=p["amplitude"].astype(np.float64),
            noise_seed=seeds,
            record=run.record,
            num_records=run.num_records,
            dtype=run.dtype,
            gradient=run.gradient,
            gradient_probes=min(run.gradient_probes, n),
            memory_rtol=run.memory_rtol,
            saturation_tol=run.saturation_tol,
            bound=run.bound,
            outputs=list(outputs),
            parallel=False,
        )


def _given(v) -> bool:
    """A parameter value that was set (not None, not a NaN placeholder)."""
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _is_set(a: np.ndarray) -> np.ndarray:
    return np.array([_given(v) for v in a])


#: The base matrices kept for reuse (common random numbers across a swept scale) hold at most
#: this many bytes in a worker; the least recently used go first.
BASE_CACHE_BYTES = 256 * 2**20
_BASES: OrderedDict = OrderedDict()
_BASES_LOCK = threading.Lock()


def _base(seed: int, n: int, kind: str, layer: int = 0) -> tuple[np.ndarray, float, float]:
    """The base matrix of (seed, n, kind, layer) with its spectral radius and largest singular
    value (cached: see ``BASE_CACHE_BYTES``)."""
    key = (seed, n, kind, layer)
    with _BASES_LOCK:
        if key in _BASES:
            _BASES.move_to_end(key)
            return _BASES[key]
    value = _make_base(*key)
    with _BASES_LOCK:
        _BASES[key] = value
        total = sum(v[0].nbytes for v in _BASES.values())
        while total > BASE_CACHE_BYTES and len(_BASES) > 1:
            total -= _BASES.popitem(last=False)[1][0].nbytes
    return value


def _make_base(seed: int, n: int, kind: str, layer: int) -> tuple[np.ndarray, float, float]:
    """See :func:`_base`. A negative ``layer`` -l is the orthogonal input matrix of stacked
    layer l."""
    if layer < 0:
        q, r = np.linalg.qr(case_rng(seed, n, f"interlayer/{-layer}").standard_normal((n, n)))
        B = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    else:
        B = base_matrix(n, kind, seed, layer)
    return B, float(np.abs(np.linalg.eigvals(B)).max()), float(np.linalg.norm(B, 2))


def _rnn_layered(fixed: dict, grid: dict) -> bool:
    """Whether an rnn spec runs through the layered kernel (stacked layers or a loss step)."""
    return (
        "layers" in grid
        or fixed.get("layers", 1) != 1
        or "loss_step" in grid
        or fixed.get("loss_step") is not None
    )


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
        record=run.record,
        num_records=run.num_records,
        dtype=run.dtype,
        gradient="none" if run.gradient == "none" else "exact",
        memory_rtol=run.memory_rtol,
        saturation_tol=run.saturation_tol,
        bound=run.bound,
        outputs=list(outputs),
        parallel=False,
        **options,
    )


def run_grouped(params: dict, keys: tuple[str, ...], run_group) -> dict[str, np.ndarray]:
    """Run the cases in groups of equal ``keys`` values and scatter the results back.

    ``run_group(sub_params)`` returns an engine result for the cases of one group; the
    per-variable outputs are filled with -1 (int), False (bool) or NaN where a group did not
    write (never, when every group writes the same variables).
    """
    ncase = len(next(iter(params.values())))
    labels = np.array(
        ["\x1f".join(str(params[k][i]) for k in keys) for i in range(ncase)], dtype=object
    )
    out: dict[str, np.ndarray] = {}
    for label in dict.fromkeys(labels):
        idx = np.flatnonzero(labels == label)
        res = run_group({k: v[idx] for k, v in params.items()})
        for name, arr in res.data.items():
            if name not in out:
                fill = -1 if arr.dtype.kind == "i" else (False if arr.dtype == bool else np.nan)
                out[name] = np.full((ncase, *arr.shape[1:]), fill, dtype=arr.dtype)
            out[name][idx] = arr
    return out


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
        return (1e-6 + (fwd + tan) / 20e9) * run.steps

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
        return 8 * (weights + grad * (2 * (L * R) ** 2 + 3 * G * n * L * R))

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


class MlpFamily(Family):
    """Deep feed-forward nets h(t) = f(s W_t h(t-1) + b), the layer index t as time
    (``run.steps`` is the depth)."""

    name = "mlp"
    params: ClassVar[dict[str, Param]] = {
        "activation": Param(str, "tanh", (*ACTIVATIONS, "linear")),
        "n": Param(int, 64, minimum=1, help="width"),
        "init": Param(str, "normal", INITS, help="distribution of the weights"),
        "gain": Param(float, 1.0, minimum=0.0, help="weights scaled to variance gain^2 / n"),
        "bias": Param(float, 0.0, help="bias of every unit"),
        "amplitude": Param(float, 1.0, help="input norm a"),
        "seed": Param(int, 0, minimum=0, help="seed of the weights and input direction"),
    }

    def outputs(self, fixed, grid):
        """See :func:`rnnlab.engine.mlp_outputs`."""
        return mlp_outputs()

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
        return (1e-6 + (4 * n * n + grad * 2 * n**3 + back * 4 * n**3) / 20e9) * run.steps

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
        return 8 * ((run.steps + 2) * n**2 + back * (run.steps * n + 10 * n**2))

    def run_cases(self, params, run, outputs):
        """Run cases given as flat per-case parameter arrays; return per-variable arrays."""
        params = dict(params)
        params["activation"] = np.array(
            [("identity" if a == "linear" else a) for a in params["activation"]], dtype=object
        )
        keys = ("activation", "n", "init", "seed")
        return run_grouped(params, keys, lambda p: self._run_group(p, run, outputs))

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
            activation=str(p["activation"][0]),
            amplitude=p["amplitude"].astype(np.float64),
            input_direction=impulse_direction(n, seed),
            record=run.record,
            num_records=run.num_records,
            dtype=run.dtype,
            gradient="none" if run.gradient == "none" else "exact",
            memory_rtol=run.memory_rtol,
            saturation_tol=run.saturation_tol,
            bound=run.bound,
            outputs=list(outputs),
            parallel=False,
        )


FAMILIES: dict[str, Family] = {
    f.name: f for f in (RnnFamily(), LstmFamily(), GruFamily(), CecFamily(), MlpFamily())
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
