"""The ``rnn`` family: h(t) = f(W h(t-1) + C x(t) + b) over a grid, scalar or vector, one
layer or stacked."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import ClassVar

import numpy as np

from rnnlab.engine import (
    ACTIVATIONS,
    OUTPUTS,
    WEIGHT_KINDS,
    base_matrix,
    case_rng,
    impulse_direction,
    network_outputs,
    remove_dominant_component,
    rnn_outputs,
    simulate_rnn,
)

from .base import (
    MEANFIELD_OUTPUTS,
    MEANFIELD_TABLE,
    Family,
    Param,
    _given,
    _is_set,
    capacity_bytes,
    capacity_seconds,
    lyapunov_bytes,
    lyapunov_seconds,
    recurrence_options,
    run_grouped,
    with_meanfield,
)
from .layered import _simulate_layered

__all__ = ["BASE_CACHE_BYTES", "RnnFamily"]

_SCALINGS = ("spectral_radius", "max_singular_value", "gain")


class RnnFamily(Family):
    """h(t) = f(W h(t-1) + C x(t) + b): :func:`rnnlab.engine.simulate_rnn` over a grid."""

    name = "rnn"
    table: ClassVar[dict] = {**OUTPUTS, **MEANFIELD_TABLE}
    params: ClassVar[dict[str, Param]] = {
        "activation": Param(str, "tanh", (*ACTIVATIONS, "linear")),
        "n": Param(int, 1, minimum=1, help="number of hidden units"),
        "w": Param(float, None, help="the scalar recurrent weight (n = 1 only)"),
        "weights": Param(str, "gaussian", WEIGHT_KINDS, help="kind of recurrent matrix"),
        "spectral_radius": Param(float, None, minimum=0.0),
        "max_singular_value": Param(float, None, minimum=0.0),
        "gain": Param(float, None),
        "bias": Param(float, 0.0, help="bias of every unit (the mean with bias_std)"),
        "bias_std": Param(
            float, 0.0, minimum=0.0, help="sigma_b: biases N(bias, sigma_b^2) per unit and layer"
        ),
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
        stds = np.atleast_1d(grid.get("bias_std", fixed.get("bias_std", 0.0)))
        ns = np.atleast_1d(grid.get("n", fixed.get("n", 1)))
        if np.any(np.asarray(stds, dtype=float) != 0) and np.any(ns == 1):
            problems.append("model.bias_std: random biases need n > 1 (one unit's random bias "
                            "is just a bias: sweep model.bias instead)")  # fmt: skip
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
        available += MEANFIELD_OUTPUTS  # random Gaussian W scaled by gain (else NaN)
        if np.any(ns == 1):
            common = set(rnn_outputs(1)[0])
            available = tuple(v for v in available if v in common)
            default = tuple(v for v in default if v in common)
        return available, default

    def case_seconds(self, params: dict, run) -> np.ndarray:
        """Estimated single-core seconds per case (measured on the 2-core AVX-512 machine).

        n = 1: 3.6 ns per step (lanes of 128 cases). n > 1: per step, 2 matrix-vector products
        (4 n^2 flops) and, with the gradient, a BLAS n x n x n product (2 n^3 flops) at about
        30 GFLOP/s.
        """
        n = params["n"].astype(float)
        grad = 0.0 if run.gradient == "none" else 1.0
        probes = np.where((run.gradient == "estimate") | (n > 128), run.gradient_probes, n)
        per_step = np.where(
            n == 1, 3.6e-9, 2e-7 + (4 * n**2 + grad * (2 * n**2 * probes + 4 * n**2)) / 30e9
        )
        if params["_layered"][0]:
            L = params["layers"].astype(float)
            per_step = 1e-6 + (8 * L * n**2 + grad * (2 * L - 1) * 2 * n**2 * L * n) / 20e9
            extra = lyapunov_seconds(run, L * n, (4 * L - 2) * n**2) + capacity_seconds(run, L * n)
            return per_step * run.steps + extra
        extra = lyapunov_seconds(run, n, 2 * n**2) + capacity_seconds(run, n)
        return per_step * run.steps + extra

    def case_bytes(self, params: dict, run) -> np.ndarray:
        """n > 1: the case's matrix, the seeded base, its rescaled copy and the eigenvalue
        and SVD workspaces (about 4 n^2 values), and with the gradient the n x n tangent
        and its product (2 n^2); layered: 2 n^2 weights per layer and the (L n)^2 tangent."""
        n = params["n"].astype(float)
        grad = 0.0 if run.gradient == "none" else 1.0
        if params["_layered"][0]:
            L = params["layers"].astype(float)
            fwd = 8 * (2 * L * n**2 + 4 * n**2 + grad * 2 * (L * n) ** 2)
            return fwd + lyapunov_bytes(run, L * n) + capacity_bytes(run, L * n)
        fwd = np.where(n == 1, 0.0, 8 * (5 * n**2 + grad * 2 * n**2))
        return fwd + lyapunov_bytes(run, n) + capacity_bytes(run, n)

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

    def variable_attrs(self, name: str) -> dict:
        """A recurrent net's depth scales count steps, not layers."""
        attrs = super().variable_attrs(name)
        if name in ("signal_depth_scale", "gradient_depth_scale"):
            attrs["units"] = "steps"
        return attrs

    def run_cases(self, params: dict, run, outputs) -> dict[str, np.ndarray]:
        """Run cases given as flat per-case parameter arrays; return per-variable arrays."""
        params = dict(params)
        params["activation"] = np.array(
            [("identity" if a == "linear" else a) for a in params["activation"]], dtype=object
        )
        if params["_layered"][0]:
            keys = ("activation", "n", "layers")
            return run_grouped(params, keys, lambda p: self._run_layered(p, run, outputs))

        def simulate(params, names):
            return run_grouped(params, ("activation", "n"), lambda p: self._run_group(
                str(p["activation"][0]), int(p["n"][0]), p, run, names))  # fmt: skip

        return with_meanfield(simulate, params, outputs, _theory_args)

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
            layers.append({"weight_ih": Wih, "weight_hh": Whh, "bias_hh": _biases(p, n, layer)})
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
        b = _biases(p, n, 0)
        if n == 1:
            C = c
            b = b[:, 0]
        else:
            u = np.stack([impulse_direction(n, int(s)) for s in seeds])
            C = c[:, None] * u
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
            gradient_probes=min(run.gradient_probes, n),
            outputs=list(outputs),
            **{**recurrence_options(run), "gradient": run.gradient},  # the scalar kernel estimates
        )


def _theory_args(p: dict) -> tuple:
    """Mean-field theory's (activation, sigma_w, sigma_b, bias) per case: sigma_w is the gain
    of a Gaussian W (entries N(0, gain^2 / n)); NaN for other weights and scalings."""
    gain = np.array([float(g) if _given(g) else np.nan for g in p["gain"]])
    gaussian = (p["weights"] == "gaussian") & (p["n"] > 1)
    return p["activation"], np.where(gaussian, gain, np.nan), p["bias_std"], p["bias"]


def _biases(p: dict, n: int, layer: int) -> np.ndarray:
    """Every case's biases of one layer, (cases, n): ``bias + bias_std z``, z ~ N(0, 1) per
    unit from the case's seed and the layer (the same z along a swept bias_std: common
    random numbers). Mean-field theory's random biases (Poole et al. 2016)."""
    b = np.repeat(p["bias"].astype(np.float64)[:, None], n, axis=1)
    std = p["bias_std"].astype(np.float64)
    for i in np.flatnonzero(std != 0):
        z = case_rng(int(p["seed"][i]), n, f"bias/{layer}").standard_normal(n)
        b[i] += std[i] * z
    return b


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
