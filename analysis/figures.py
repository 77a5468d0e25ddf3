"""The summary figures of the lecture, drawn from stored sweeps.

Every figure is a function ``(ds, ax=None, ...) -> matplotlib.figure.Figure``: it draws into
``ax`` (one Axes, or a sequence of Axes for multi-panel figures) or into a new figure, labels
its axes with units, uses log scales where growth is exponential and a colour-blind-safe
palette (Okabe & Ito), and draws the theory beside the simulation where there is one. A store
that lacks what a figure needs raises :class:`MissingData` with the reason.
"""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import xarray as xr

from .metrics import CLASSES, classify, is_stacked

__all__ = [
    "ACROSS_STORES",
    "FIGURES",
    "MissingData",
    "cliff",
    "clipping",
    "constant_error_flow",
    "fixed_points_figure",
    "generalisation",
    "gradient_by_depth",
    "gradient_vs_lag",
    "incomplete_note",
    "input_weight_gradients",
    "lstm_memory",
    "lyapunov_spectra",
    "memory_capacity",
    "memory_in_use",
    "memory_phase",
    "order_to_chaos",
    "phase_diagram",
    "scalar_linear",
    "scalar_nonlinear",
    "stacked_layers",
    "training_by_length",
    "vector_linear",
    "vector_nonlinear",
    "weight_gradient_by_layer",
]

#: Okabe & Ito (2008), distinguishable with every common colour-vision deficiency.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
_THEORY = dict(color="0.25", linestyle=":", linewidth=1.2)


class MissingData(ValueError):
    """The store lacks what the figure needs (the message says what)."""


def incomplete_note(ds) -> str:
    """What a figure of stores with missing or damaged blocks must say ("" for none)."""
    datasets = [ds] if isinstance(ds, xr.Dataset) else list(ds)
    parts = []
    for d in datasets:
        missing = json.loads(d.attrs.get("missing_blocks", "[]"))
        if missing:
            damaged = len(json.loads(d.attrs.get("damaged_blocks", "[]")))
            why = f" ({damaged} damaged)" if damaged else ""
            parts.append(f"{len(missing)} of {d.attrs.get('nblocks', '?')} blocks missing{why}")
    if not parts:
        return ""
    return f"Incomplete store: {'; '.join(parts)}; their cases are not drawn (NaN)"


def _figure(func):
    """A figure function whose figure says so when its store is incomplete or damaged."""

    @functools.wraps(func)
    def draw(ds, *args, **kwargs):
        fig = func(ds, *args, **kwargs)
        note = incomplete_note(ds)
        if note:
            mine = fig.get_suptitle()
            fig.suptitle(f"{mine}\n{note}" if mine else note, color=PALETTE[3], fontsize="small")
        return fig

    return draw


def _fmt(value) -> str:
    """A grid value for a label: numbers short (%g), names as they are."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


def _legend_outside(ax, *args, fontsize="x-small", **kwargs) -> None:
    """The legend to the right of ``ax``, outside the data (every figure's place for it)."""
    ax.legend(*args, fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1), **kwargs)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _ramp(n: int):
    """n colours of a perceptually uniform, colour-blind-safe sequential map (viridis)."""
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    return [cmap(v) for v in (np.linspace(0.0, 0.9, n) if n > 1 else [0.0])]


def _axes(ax, n: int, ncols: int | None = None, size=(4.2, 3.4)):
    """(figure, list of n Axes): the given ones, or a new figure with a row/grid of panels."""
    import matplotlib.pyplot as plt

    if ax is None:
        ncols = ncols or n
        nrows = -(-n // ncols)
        fig, axs = plt.subplots(
            nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
            layout="constrained",
        )  # fmt: skip
        axs = list(axs.ravel())
        for extra in axs[n:]:
            extra.remove()
        return fig, axs[:n]
    axs = list(np.atleast_1d(ax).ravel())
    if len(axs) != n:
        raise ValueError(f"this figure has {n} panels: pass {n} Axes (got {len(axs)})")
    return axs[0].figure, axs


def _family(ds) -> str:
    return str(ds.attrs.get("family", "rnn"))


def _need(ds, *names, family=None, what=""):
    if not isinstance(ds, xr.Dataset):
        raise TypeError(
            f"ds must be an xarray.Dataset (rnnlab.analysis.open_results(path)), got "
            f"{type(ds).__name__}"
        )
    if family is not None and _family(ds) not in np.atleast_1d(family):
        raise MissingData(f"needs a {' or '.join(np.atleast_1d(family))} store{what}")
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise MissingData(f"the store has no {', '.join(missing)}{what}")


def _single_layer(ds, why="the figure is of one recurrent layer"):
    """Refuse a store of stacked layers (figure 16 draws those)."""
    if is_stacked(ds):
        raise MissingData(f"stacked layers: {why} (see stacked_layers)")


def _median_seed(da):
    """The median over seeds (the array itself without a seed dimension)."""
    return da.median("seed") if "seed" in da.dims else da


def _first_of_others(da, keep=("w", "bias", "time")):
    """``da`` at the first value of every dimension not in ``keep``."""
    return da.isel({d: 0 for d in da.dims if d not in keep})


def _values(ds, dim):
    """Coordinate values of a dimension, or the fixed model value as a one-element list."""
    if dim in ds.dims:
        return list(ds[dim].values)
    v = ds.attrs.get(f"model_{dim}")
    return [] if v is None or v == "none" else [v]


def _pick(ds, prefer: dict, reduce: tuple[str, ...] = ("seed",)):
    """Select each preferred coordinate value if the dimension exists (nearest for numbers);
    take the first seed."""
    sel = {}
    for dim, want in prefer.items():
        if dim not in ds.dims:
            continue
        vals = ds[dim].values
        if want in list(vals):
            sel[dim] = want
        elif vals.dtype.kind in "fiu" and isinstance(want, int | float):
            sel[dim] = vals[np.argmin(np.abs(vals - want))]
        else:
            sel[dim] = vals[0]
    ds = ds.sel(sel)
    for dim in reduce:
        if dim in ds.dims:
            ds = ds.isel({dim: 0})
    return ds


def _has_activation(ds, name):
    vals = [str(v) for v in _values(ds, "activation")] or ["tanh"]
    return name in vals or (name == "identity" and "linear" in vals)


def _sel_activation(ds, name):
    if "activation" not in ds.dims:
        return ds
    vals = [str(v) for v in ds.activation.values]
    return ds.sel(activation=name if name in vals else "linear")


def _logy(ax, label):
    ax.set_yscale("log")
    ax.set_ylabel(label)


def _mark_stop(ax, t, raw, color, shown=None) -> None:
    """An "x" where a line stops because its values stopped being finite (the run blew up),
    at its last point drawn (``shown``: the values as drawn, if clipped)."""
    raw = np.asarray(raw, dtype=float)
    shown = raw if shown is None else np.asarray(shown, dtype=float)
    finite = np.flatnonzero(np.isfinite(raw))
    if not finite.size or finite[-1] == raw.size - 1:
        return
    drawn = np.flatnonzero(np.isfinite(shown[: finite[-1] + 1]))
    if drawn.size:
        k = drawn[-1]
        ax.plot(t[k], shown[k], marker="x", color=color, markersize=6, linestyle="none")


def _selection(sub) -> str:
    """The dimensions a figure took at one value ("bias = 0, seed = 0"), for its title."""
    fixed = [d for d in ("bias", "amplitude", "remove_dominant", "seed") if d in sub.coords
             and sub[d].ndim == 0]  # fmt: skip
    return ", ".join(f"{d} = {_fmt(sub[d].values.item())}" for d in fixed)


def _log1p(t):
    return np.log10(np.maximum(np.asarray(t, dtype=float) + 1.0, 1e-12))


def _exp1m(y):
    return 10.0 ** np.asarray(y, dtype=float) - 1.0


def _time_axis(ax, log=False):
    """The time axis; ``log``: at log10(t + 1), so that t = 0 has its place and the axis has
    no kink (a symlog axis bends at its linear threshold)."""
    ax.set_xlabel("time step t" + (" (log scale of t + 1)" if log else ""))
    if log:
        ax.set_xscale("function", functions=(_log1p, _exp1m))
        right = ax.get_xlim()[1]
        ticks = [v for v in (0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10**4, 3 * 10**4, 10**5)
                 if v <= right * 1.01]  # fmt: skip
        if right > 2000:  # decades only, or the labels run into each other
            ticks = [v for v in ticks if v in (0, 1, 10, 100, 1000, 10**4, 10**5)]
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.set_xlim(left=0)


def _positive(a, lo=1e-250, hi=1e250):
    """Values for a log axis: NaN outside [lo, hi] (matplotlib's margins overflow near 1e308)."""
    a = np.asarray(a, dtype=float)
    return np.where((a >= lo) & (a <= hi), a, np.nan)


@_figure
def scalar_linear(ds, ax=None, *, bias=0.0, amplitude=1.0, tmax=100, ylim=(1e-30, 1e30)):
    """Figure 1: the scalar linear recursion h(t) = w h(t-1) + c x(t), impulse input.

    The state h(t) = w^t c x(0) itself, signed, for each w: below, at and above 1 in size,
    and negative (dots: the sign alternates every step), on a symmetric log axis (beyond
    +-``ylim[0]``), with the closed form dotted; the first ``tmax`` steps.
    """
    _need(ds, "state", family="rnn", what=" with n = 1 and a w dimension")
    if "w" not in ds.dims or not _has_activation(ds, "identity"):
        raise MissingData("needs a w dimension and the identity (linear) activation")
    sub = _pick(_sel_activation(ds, "identity"), {"bias": bias, "amplitude": amplitude})
    fig, (ax,) = _axes(ax, 1, size=(6.5, 4.2))
    t = sub.time.values
    c = float(ds.attrs.get("model_input_weight", 1.0))
    a = (
        float(sub.amplitude)
        if "amplitude" in sub.coords
        else float(ds.attrs.get("model_amplitude", 1.0))
    )
    ws = sub.w.values
    colors = _ramp(len(ws))
    keep = t <= tmax
    t = t[keep]
    for i, w in enumerate(ws):
        h = sub.state.sel(w=w).values[keep].astype(float)
        h = np.where(np.abs(h) <= ylim[1] * 10, h, np.nan)
        if w < 0:  # the sign alternates: points above and below 0, mirror images
            ax.plot(t, h, color=colors[i], linestyle="none", marker="o", markersize=2.5,
                    label=f"w = {w:g} (dots)")  # fmt: skip
        else:
            ax.plot(t, h, color=colors[i], linewidth=1.2, label=f"w = {w:g}")
        with np.errstate(over="ignore", invalid="ignore"):
            size = np.abs(c * a) * np.abs(np.float64(w)) ** t.astype(float)
        size = np.where(size <= ylim[1] * 10, size, np.nan)
        sign = np.sign(c * a)
        for side in (sign, -sign) if w < 0 else (sign,):  # w < 0: the envelope +-|w|^t
            ax.plot(t, side * size, **_THEORY)
    ax.plot([], [], **_THEORY, label="w^t c x(0) (w < 0: +-|w|^t)")
    ax.set_yscale("symlog", linthresh=ylim[0])
    ax.set_ylim(-ylim[1], ylim[1])
    ticks = [-ylim[1], -1e10, -1.0, -1e-10, 0.0, 1e-10, 1.0, 1e10, ylim[1]]
    ax.set_yticks(ticks, [f"{v:g}" for v in ticks])
    ax.set_ylabel("h(t), signed (symmetric log scale)")
    ax.axhline(0.0, color="0.8", linewidth=0.6, zorder=0)
    ax.set_xlim(0, t[-1])
    _time_axis(ax)
    ax.set_title("Scalar linear recursion: memory of x(0)")
    _legend_outside(ax, fontsize="small")
    return fig


@_figure
def vector_linear(ds, ax=None, *, seed=None, tmax=None):
    """Figure 2: the vector linear recursion h(t) = W h(t-1) + C x(t), impulse input.

    Left: log10 of the response ||W^t C x(0)|| for several spectral radii (solid), and with
    the input's component along the dominant eigenvector removed (dashed), over the whole
    run (or up to ``tmax``), on a linear axis of log10 so that no line leaves it; dotted:
    slopes |lambda_1|^t and |lambda_2|^t. Right: the same
    relative to |lambda_1|^t, where the removed case decays like (|lambda_2|/|lambda_1|)^t;
    faint: the simulated state ||h(t)|| of that case, in which rounding brings the dominant
    part back (from 1e-16, growing like |lambda_1|^t). The response is measured with the
    dominant part projected out every step; the state is not. A response below 1e-308
    (float64's range; its growth rate is measured in logarithms and holds) is not drawn.
    """
    _need(ds, "response", family="rnn")
    _single_layer(ds)
    if "spectral_radius" not in ds.dims or not _has_activation(ds, "identity"):
        raise MissingData("needs a spectral_radius dimension and the identity activation")
    sub = _sel_activation(ds, "identity")
    sub = _pick(sub, {"seed": seed} if seed is not None else {})
    fig, (ax, rel) = _axes(ax, 2, size=(5.0, 4.0))
    keep = sub.time.values <= (tmax if tmax is not None else np.inf)
    t = sub.time.values[keep].astype(float)
    radii = sub.spectral_radius.values
    colors = _ramp(len(radii))
    removed = [False, True] if "remove_dominant" in sub.dims else [None]
    for i, rho in enumerate(radii):
        top = float(rho)
        for rm in removed:
            one = sub.sel(spectral_radius=rho)
            if rm is not None:
                one = one.sel(remove_dominant=rm)
            r = one.response.values[keep].astype(float)
            style = dict(color=colors[i], linestyle="--" if rm else "-")
            with np.errstate(divide="ignore", invalid="ignore"):
                ax.plot(t, np.log10(_positive(r, 1e-320, 1e308)), **style,
                        label=None if rm else f"rho = {rho:g}")  # fmt: skip
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                rel.plot(t, _positive(np.exp(np.log(r) - t * np.log(top))), **style)
            rate = top
            if rm:
                h = one.state_norm.values[keep].astype(float)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    rel.plot(t, _positive(np.exp(np.log(h) - t * np.log(top))),
                             color=colors[i], linewidth=0.9, alpha=0.4)  # fmt: skip
                if "second_eigenvalue_modulus" not in one:
                    continue
                rate = float(one.second_eigenvalue_modulus)
            ax.plot(t, np.log10(r[0]) + t * np.log10(rate), **_THEORY)
    ax.plot([], [], color="0.4", linestyle="-", label="input u")
    if removed[-1]:
        ax.plot([], [], color="0.4", linestyle="--", label="u without dominant part")
        faint = "simulated ||h(t)|| of that\ncase (rounding brings\nlambda_1 back)"
        ax.plot([], [], color="0.4", linewidth=0.9, alpha=0.4, label=faint)
    ax.plot([], [], **_THEORY, label="|lambda_1|^t, |lambda_2|^t")
    ax.set_ylabel("log10 ||W^t C x(0)|| (response)")
    _logy(rel, "relative to |lambda_1|^t")
    rel.set_ylim(1e-40, 1e3)
    for a in (ax, rel):
        a.set_xlim(0, t[-1])
        _time_axis(a)
    ax.set_title(f"Vector linear recursion (n = {ds.attrs.get('model_n', '?')})")
    rel.set_title(
        "Without the dominant part: (|lambda_2|/|lambda_1|)^t\n(the same for every "
        "rho: one base matrix, rescaled)",
        fontsize=9,
    )
    _legend_outside(rel, *ax.get_legend_handles_labels())
    return fig


@_figure
def scalar_nonlinear(
    ds, ax=None, *, biases=None, activations=("sigmoid", "tanh", "relu"), relu_max=1e12
):
    """Figure 3: scalar nonlinear recursions h(t) = f(w h(t-1) + c x(t) + b), side by side.

    One column per activation, one row per bias (``biases``: default every bias of the
    store, at most three: the lowest, zero or the middle, the highest); colour: w (the
    positive ones: a negative w alternates the sign every step, which log-spaced records
    cannot show); solid: positive input, dashed: negative input (for relu it is cut to 0 at
    once, the dashed line along 0). Time on a log scale of t + 1. Sigmoid saturates in a
    few steps to a value set by w and b, tanh depends on w and forgets, relu vanishes or
    blows up (shown up to ``relu_max`` on a symmetric log axis).
    """
    _need(ds, "state", family="rnn", what=" with n = 1")
    acts = [a for a in activations if _has_activation(ds, a)]
    if "w" not in ds.dims or not acts:
        raise MissingData(f"needs a w dimension and one of {', '.join(activations)}")
    if biases is None:
        values = _values(ds, "bias") if "bias" in ds.dims else [None]
        if len(values) > 3:
            values = [values[0], min(values, key=abs), values[-1]]
        biases = list(dict.fromkeys(values))
    fig, axs = _axes(ax, len(acts) * len(biases), ncols=len(acts), size=(4.2, 3.1))
    for k, (b, act) in enumerate((b, a) for b in biases for a in acts):
        ax = axs[k]
        sub = _sel_activation(ds, act)
        sub = _pick(sub.sel(bias=b) if b is not None else sub, {})
        t = sub.time.values
        ws = sub.w.values[sub.w.values > 0]
        colors = _ramp(len(ws))
        amps = sub.amplitude.values if "amplitude" in sub.dims else [None]
        for i, w in enumerate(ws):
            for a in amps:
                one = sub.sel(w=w) if a is None else sub.sel(w=w, amplitude=a)
                style = "--" if (a is not None and a < 0) else "-"
                label = f"w = {w:g}" if (a is None or a > 0) else None
                h = one.state.values.astype(float)
                if act == "relu":
                    h = np.where(np.abs(h) <= relu_max, h, np.nan)
                ax.plot(t, h, color=colors[i], linestyle=style, label=label)
        _time_axis(ax, log=True)
        ax.set_ylabel("h(t)")
        if act == "relu":
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_ylim(-0.5, relu_max)
        bias = float(b) if b is not None else float(ds.attrs.get("model_bias", 0.0))
        ax.set_title(f"{act}, b = {bias:g}")
    axs[len(acts) - 1].plot([], [], color="0.4", linestyle="--", label="negative input")
    _legend_outside(axs[len(acts) - 1])
    return fig


@_figure
def vector_nonlinear(ds, ax=None, *, seed=None):
    """Figure 4: vector nonlinear recursions: ||h(t)|| (top) and the response to the input
    at t = 0 (bottom) for each activation, one line per spectral radius."""
    _need(ds, "state_norm", "response", family="rnn")
    _single_layer(ds)
    if "spectral_radius" not in ds.dims or "activation" not in ds.dims:
        raise MissingData("needs spectral_radius and activation dimensions")
    acts = [str(a) for a in ds.activation.values]
    fig, axs = _axes(ax, 2 * len(acts), ncols=len(acts), size=(3.6, 3.0))
    sub = _pick(ds, {"remove_dominant": False, **({"seed": seed} if seed is not None else {})})
    radii = sub.spectral_radius.values
    colors = _ramp(len(radii))
    t = sub.time.values
    for j, act in enumerate(acts):
        one = sub.sel(activation=act)
        for row, var in enumerate(("state_norm", "response")):
            ax = axs[row * len(acts) + j]
            for i, rho in enumerate(radii):
                raw = one[var].sel(spectral_radius=rho).values
                y = _positive(raw)
                ax.plot(t, y, color=colors[i], label=f"rho = {rho:g}")
                _mark_stop(ax, t, raw, colors[i], shown=y)
            _logy(ax, "||h(t)||" if var == "state_norm" else "response ||h - hbar||")
            ax.set_xlim(0, t[-1])
            _time_axis(ax, log=True)
            ax.set_title(f"{act}: {'state' if row == 0 else 'memory of x(0)'}")
    axs[len(acts) - 1].plot([], [], marker="x", color="0.4", linestyle="none",
                            label="blew up (the run stops)")  # fmt: skip
    _legend_outside(axs[len(acts) - 1])
    if what := _selection(sub):
        fig.suptitle(what, fontsize="small")
    return fig


@_figure
def memory_phase(ds, ax=None, *, x=None, select=None):
    """Figure 5: the memory of the input at t = 0 over (w or spectral radius) x activation.

    A run that forgot shows its memory horizon (the first step after which the response to
    x(0) stays below ``memory_rtol`` of its initial value), coloured by it; the others show
    their ``memory_class``: "kept" (never forgotten within the run), "grows" (never
    forgotten and still growing), "blew up". Cases of missing blocks are left blank.
    """
    _need(ds, "memory_horizon", "memory_class")
    _single_layer(ds)
    x = x or next((d for d in ("w", "spectral_radius", "gain") if d in ds.dims), None)
    if x is None or "activation" not in ds.dims:
        raise MissingData("needs an activation dimension and a w or spectral_radius one")
    sub = _pick(ds, {"bias": 0.0, "amplitude": 1.0, "remove_dominant": False, **(select or {})})
    hor = np.asarray(sub.memory_horizon.transpose("activation", x).values, dtype=float)
    cls = np.asarray(sub.memory_class.transpose("activation", x).values, dtype=float)
    steps = int(ds.attrs.get("run_steps", ds.time.values[-1] + 1))
    fig, (ax,) = _axes(ax, 1, size=(6.8, 3.4))
    import matplotlib as mpl

    norm = mpl.colors.LogNorm(vmin=1, vmax=steps)
    cmap = mpl.colormaps["cividis"]
    rgba = cmap(norm(np.clip(np.nan_to_num(hor, nan=1.0), 1, steps)))
    others = {1: ("kept", "#F0E442"), 2: ("grows", PALETTE[3]), 3: ("blew up", "0.05")}
    for code, (_, colour) in others.items():
        rgba[cls == code] = mpl.colors.to_rgba(colour)
    rgba[np.isnan(cls) | (cls < 0)] = (1.0, 1.0, 1.0, 0.0)
    ax.imshow(rgba, aspect="auto", origin="lower", interpolation="nearest")
    xs = sub[x].values
    # in-cell text while it fits: the class names (in the legend too) up to 12 columns, the
    # horizons up to 40; tick labels on at most 12 columns
    ncol = len(xs)
    for (r, c), k in np.ndenumerate(cls):
        if np.isnan(k) or k < 0 or (k == 0 and ncol > 40) or (k > 0 and ncol > 12):
            continue  # a missing case (or no response recorded), or no room
        text = f"{int(hor[r, c])}" if k == 0 else others[int(k)][0]
        dark = k == 3 or (k == 0 and norm(max(hor[r, c], 1)) < 0.5)
        ax.text(c, r, text, ha="center", va="center", fontsize=6.5 if ncol <= 16 else 5,
                color="white" if dark else "black")  # fmt: skip
    every = -(-ncol // 12)
    ax.set_xticks(range(0, ncol, every), [f"{v:g}" for v in xs[::every]])
    ax.set_yticks(range(sub.sizes["activation"]), [str(a) for a in sub.activation.values])
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("activation")
    unit = "layers" if ds.memory_horizon.attrs.get("units") == "layers" else "steps"
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label=f"memory horizon ({unit}), runs that forgot")  # fmt: skip
    handles = [mpl.patches.Patch(color=c, label=t) for t, c in others.values()]
    ax.legend(handles=handles, fontsize="x-small", loc="upper left", bbox_to_anchor=(0, -0.18),
              ncol=3, frameon=False)  # fmt: skip
    fixed = ", ".join(f"{d} = {_fmt(sub[d].values)}" for d in ("bias", "amplitude", "seed")
                      if d in sub.coords and sub[d].ndim == 0)  # fmt: skip
    ax.set_title("Memory of x(0): forgotten after how many steps, or not"
                 + (f" ({fixed})" if fixed else ""), fontsize=9)  # fmt: skip
    return fig


@_figure
def gradient_vs_lag(ds, ax=None, *, seed=None):
    """Figure 6: log10 ||dh(t)/dh(0)|| against the lag t for each activation and weight scale,
    with the bound (gamma sigma_max)^t dotted (gamma = sup|f'|)."""
    _need(ds, "log10_gradient_norm", family="rnn")
    scale = next((d for d in ("spectral_radius", "w", "max_singular_value", "gain")
                  if d in ds.dims), None)  # fmt: skip
    if scale is None or "activation" not in ds.dims:
        raise MissingData("needs an activation dimension and a weight-scale dimension")
    _single_layer(ds, "the bound (gamma sigma_max)^t is one layer's")
    from .metrics import gamma

    sub = _pick(ds, {"bias": 0.0, "amplitude": 1.0, "remove_dominant": False,
                     **({"seed": seed} if seed is not None else {})})  # fmt: skip
    acts = [str(a) for a in sub.activation.values]
    fig, axs = _axes(ax, len(acts), ncols=min(len(acts), 4), size=(3.8, 3.2))
    t = sub.time.values.astype(float)
    vals = sub[scale].values
    if scale == "w":
        vals = vals[vals > 0]
    colors = _ramp(len(vals))
    for ax, act in zip(axs, acts, strict=True):
        one = sub.sel(activation=act)
        for i, v in enumerate(vals):
            c = one.sel({scale: v})
            ax.plot(t, c.log10_gradient_norm.values, color=colors[i], label=f"{scale} = {v:g}")
            _mark_stop(ax, t, c.log10_gradient_norm.values, colors[i])
            if "max_singular_value" in c.variables:
                smax = float(c.max_singular_value)
            elif scale == "w":
                smax = abs(float(v))
            else:
                continue
            ax.plot(t, t * np.log10(gamma(act) * smax), color=colors[i], linestyle=":")
        ax.set_ylabel("log10 ||dh(t)/dh(0)||")
        _time_axis(ax)
        ax.set_title(f"{act} (gamma = {gamma(act):g})")
        lo = np.nanmin(one.log10_gradient_norm.values)
        hi = np.nanmax(one.log10_gradient_norm.values)
        if np.isfinite(lo) and np.isfinite(hi):
            ax.set_ylim(lo - 0.1 * (hi - lo + 1), hi + 0.1 * (hi - lo + 1))
    axs[-1].plot([], [], color="0.4", linestyle=":", label="bound (gamma sigma_max)^t")
    axs[-1].plot([], [], marker="x", color="0.4", linestyle="none",
                 label="stops: the state overflowed, or\nunderflowed to 0 (relu'(0) = 0:"
                 "\nthe product is exactly 0)")  # fmt: skip
    _legend_outside(axs[-1])
    if what := _selection(sub):
        fig.suptitle(what, fontsize="small")
    return fig


@_figure
def gradient_by_depth(ds, ax=None):
    """Figure 7: the gradient norm by depth in deep feed-forward nets, one panel per
    activation, one line per weight gain (median over seeds, band: min to max). Dotted: the
    mean-field prediction, 0.5 ln chi_1 per layer (:mod:`rnnlab.analysis.meanfield`);
    dashed: the bound (gamma sigma_max)^l, sigma_max of an n x n Gaussian matrix with entries
    of variance gain^2 / n being about 2 gain (gain for orthogonal weights)."""
    _need(ds, "log10_gradient_norm", family="mlp")
    if "gain" not in ds.dims:
        raise MissingData("needs a gain dimension")
    from .meanfield import depth_growth_rate
    from .metrics import gamma

    acts = [str(a) for a in _values(ds, "activation")] or [
        str(ds.attrs.get("model_activation", "tanh"))
    ]
    fig, axs = _axes(ax, len(acts), ncols=min(len(acts), 4), size=(3.8, 3.2))
    t = ds.time.values.astype(float)
    gains = ds.gain.values
    colors = _ramp(len(gains))
    init = str(ds.attrs.get("model_init", "normal"))
    sig = 1.0 if init == "orthogonal" else 2.0
    bias = float(ds.attrs.get("model_bias", 0.0))
    for ax, act in zip(axs, acts, strict=True):
        one = ds.sel(activation=act) if "activation" in ds.dims else ds
        lo, hi = np.inf, -np.inf
        for i, g in enumerate(gains):
            v = one.log10_gradient_norm.sel(gain=g)
            other = [d for d in v.dims if d != "time"]
            med = v.median(other).values if other else v.values
            ax.plot(t, med, color=colors[i], label=f"gain = {g:g}")
            if other:
                ax.fill_between(t, v.min(other).values, v.max(other).values,
                                color=colors[i], alpha=0.2, linewidth=0)  # fmt: skip
            rate = depth_growth_rate(act, float(g), bias=bias) / np.log(10)
            ax.plot(t, t * rate, **{**_THEORY, "color": colors[i]})
            ax.plot(t, t * np.log10(gamma(act) * sig * g), color=colors[i], linestyle="--",
                    linewidth=0.8, alpha=0.6)  # fmt: skip
            finite = med[np.isfinite(med)]
            lo, hi = min(lo, finite.min(initial=0.0)), max(hi, finite.max(initial=0.0))
        pad = 0.08 * (hi - lo + 1.0)
        ax.set_ylim(lo - pad, hi + pad)  # the data, not the bound's far end
        ax.plot([], [], color="0.3", linestyle=":", label="mean field: 0.5 ln chi_1 / layer")
        ax.plot([], [], color="0.3", linestyle="--", linewidth=0.8,
                label=f"bound: (gamma {sig:g} gain)^l")  # fmt: skip
        ax.set_xlabel("layer l")
        ax.set_ylabel("log10 ||dh(l)/dh(0)||")
        ax.set_title(f"{act}, width {ds.attrs.get('model_n', '?')}")
    _legend_outside(axs[-1])
    return fig


@_figure
def input_weight_gradients(datasets, ax=None):
    """Figure 8: RNN vs LSTM (and GRU): the norm of each step's contribution to the gradient
    of the input weight matrix, for a loss at step T only (median over seeds, band: the
    interquartile range).

    ``datasets``: one Dataset or a sequence of them (one per family).
    """
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    have = [d for d in datasets if "log10_input_weight_grad" in d]
    if not have:
        raise MissingData("needs log10_input_weight_grad (a spec with model.loss_step)")
    fig, (ax,) = _axes(ax, 1, size=(7.5, 4.2))
    order = {"rnn": 0, "lstm": 1, "gru": 2}
    styles = {"rnn": "-", "lstm": "--", "gru": "-."}
    n = 0
    for d in sorted(have, key=lambda d: order.get(_family(d), 9)):
        v = d.log10_input_weight_grad.dropna("time", how="all")  # NaN after the loss step
        fam = _family(d)
        groups = [x for x in v.dims if x not in ("time", "seed")]
        combos = [{}]
        for g in groups:
            combos = [{**c, g: val} for c in combos for val in v[g].values]
        for combo in combos[:8]:
            one = v.sel(combo)
            k = one.time.values
            other = [x for x in one.dims if x != "time"]
            med = 10 ** (one.median(other).values if other else one.values)
            what = ", ".join(f"{g.replace('_', ' ')} {_fmt(val)}" for g, val in combo.items())
            label = (
                f"{fam.upper()} (H = {d.attrs.get('model_n', '?')}{', ' + what if what else ''})"
            )
            ax.plot(k, med, color=_color(n), linestyle=styles.get(fam, ":"), label=label)
            if other:
                with np.errstate(invalid="ignore"):  # quartiles next to -inf (underflow)
                    lo = 10 ** one.quantile(0.25, other).values
                    hi = 10 ** one.quantile(0.75, other).values
                ax.fill_between(k, lo, hi, color=_color(n), alpha=0.15, linewidth=0)
            n += 1
    ax.set_yscale("log")
    ax.set_xlabel("step k (the loss is at the last step)")
    ax.set_ylabel("||dL/dW_ih contribution of step k||")
    ax.set_title("Gradient on the input weights, error at the last step only")
    _legend_outside(ax)
    return fig


@_figure
def lstm_memory(ds, ax=None, *, lag=None, floor=-40.0):
    """Figure 9: the LSTM cell's gradient: the constant error carousel against all paths.

    Left (vanilla LSTM, one colour per forget-gate bias): log10 ||dc(t)/dc(0)|| through every
    path (solid) and through the carousel alone, log10 max_u prod f_u (dashed), down to
    ``floor`` (curves below keep falling; the note gives their last value). Right: both at
    step ``lag`` (default: the last step) for each of Greff et al.'s variants and forget-gate
    biases, coloured by the all-path value (red: the gradient grew, blue: it vanished), each
    cell reading "all paths (carousel)"; a store of one variant: the two against the bias.
    Medians over seeds.
    """
    _need(ds, "log10_cell_gradient_norm", "log10_carousel_gain", family="lstm")
    if "forget_bias" not in ds.dims:
        raise MissingData("needs a forget_bias dimension")
    import matplotlib as mpl

    fig, axs = _axes(ax, 2, size=(5.2, 4.0))
    both = [ds.log10_cell_gradient_norm, ds.log10_carousel_gain]
    both = [_median_seed(v) for v in both]
    fbs = ds.forget_bias.values
    colors = _ramp(len(fbs))
    t = ds.time.values
    lowest = np.inf
    for i, fb in enumerate(fbs):
        for v, style in zip(both, ("-", "--"), strict=True):
            one = v.sel(variant="vanilla") if "variant" in v.dims else v
            one = one.sel(forget_bias=fb)
            one = _first_of_others(one, ("time",)).values
            lowest = min(lowest, np.nanmin(one))
            axs[0].plot(t, one, color=colors[i], linestyle=style,
                        label=f"forget bias {fb:g}" if style == "-" else None)  # fmt: skip
    axs[0].plot([], [], color="0.4", linestyle="-", label="all paths")
    axs[0].plot([], [], color="0.4", linestyle="--", label="carousel: prod f")
    top = max(np.nanmax(v.values) for v in both)
    axs[0].set_ylim(floor, max(top, 0.0) + 3)
    if lowest < floor:
        axs[0].text(
            0.98,
            0.02,
            f"below: they keep falling, to {lowest:.0f} at t = {t[-1]}",
            transform=axs[0].transAxes,
            ha="right",
            va="bottom",
            fontsize="x-small",
        )
    axs[0].set_ylabel("log10 ||dc(t)/dc(0)||")
    _time_axis(axs[0])
    axs[0].set_title("Cell gradient, vanilla LSTM")
    axs[0].legend(fontsize="x-small", loc="lower right", bbox_to_anchor=(1, 0.06))
    k = int(t[-1] if lag is None else t[np.argmin(np.abs(t - lag))])
    grid = []
    variants = [str(x) for x in ds.variant.values] if "variant" in ds.dims else ["lstm"]
    for v in both:
        at = v.sel(time=k)
        at = _first_of_others(at, ("variant", "forget_bias"))
        at = (
            at.transpose("variant", "forget_bias")
            if "variant" in at.dims
            else at.expand_dims(variant=variants)
        )
        grid.append(np.asarray(at.values, dtype=float))
    allp, direct = grid
    if "variant" not in ds.dims:  # one variant: the two values against the bias, not a map
        axs[1].plot(fbs, allp[0], color="0.2", marker="o", label="all paths")
        axs[1].plot(fbs, direct[0], color="0.2", marker="s", linestyle="--",
                    label="carousel: prod f")  # fmt: skip
        axs[1].axhline(0.0, color="0.8", linewidth=0.6, zorder=0)
        axs[1].set_xlabel("forget-gate bias")
        axs[1].set_ylabel(f"log10 ||dc(t)/dc(0)|| at t = {k}")
        axs[1].set_title(f"At t = {k} ({ds.attrs.get('model_variant', 'vanilla')} LSTM)")
        axs[1].legend(fontsize="x-small")
        return fig
    norm = mpl.colors.TwoSlopeNorm(vcenter=0.0, vmin=-10.0, vmax=10.0)
    mesh = axs[1].imshow(np.clip(allp, -10, 10), cmap="RdBu_r", norm=norm, aspect="auto",
                         origin="lower")  # fmt: skip
    for (r, c), a in np.ndenumerate(allp):
        axs[1].text(c, r, f"{a:.1f}\n({direct[r, c]:.1f})", ha="center", va="center",
                    fontsize=6, color="white" if abs(a) > 6 else "black")  # fmt: skip
    axs[1].set_xticks(range(len(fbs)), [_fmt(f) for f in fbs])
    axs[1].set_yticks(range(len(variants)), variants)
    axs[1].set_xlabel("forget-gate bias")
    axs[1].set_ylabel("variant (Greff et al. 2017)")
    axs[1].set_title(f"At t = {k}: all paths (carousel)")
    fig.colorbar(mesh, ax=axs[1], extend="both", label="log10 ||dc(t)/dc(0)||, all paths")
    return fig


@_figure
def bibo(ds, ax=None):
    """Figure 12: BIBO stability: the largest state norm under bounded noise input against
    the spectral radius, one line per activation (median over seeds, band: min to max;
    a triangle at the top: the run blew up). Dashed: sqrt(n), the bound of sigmoid and tanh
    (|h_i| <= 1) for any W; dotted: a / (1 - rho), the bound of the linear recursion with a
    symmetric W (noise of amplitude a, ||C|| = 1), for rho < 1 only.
    """
    _need(ds, "max_state_norm", family="rnn")
    _single_layer(ds)
    if "spectral_radius" not in ds.dims or ds.attrs.get("run_input") != "noise":
        raise MissingData("needs a spectral_radius dimension and run.input = noise")
    fig, (ax,) = _axes(ax, 1, size=(6.5, 4.0))
    rho = ds.spectral_radius.values.astype(float)
    acts = [str(a) for a in _values(ds, "activation")] or ["tanh"]
    v = ds.max_state_norm
    top = 1.0
    for i, act in enumerate(acts):
        one = v.sel(activation=act) if "activation" in v.dims else v
        other = [d for d in one.dims if d != "spectral_radius"]
        vals = np.asarray(one.transpose("spectral_radius", ...).values, dtype=float)
        vals = vals.reshape(len(rho), -1)
        finite = np.where(np.isfinite(vals) & (vals < 1e6), vals, np.nan)
        with warnings.catch_warnings():  # every seed blew up: NaN, drawn as an arrow
            warnings.simplefilter("ignore", RuntimeWarning)
            med, lo, hi = (f(finite, axis=1) for f in (np.nanmedian, np.nanmin, np.nanmax))
        ax.plot(rho, med, color=_color(i), marker="o", label=act)
        if other:
            ax.fill_between(rho, lo, hi, color=_color(i), alpha=0.15, linewidth=0)
        top = max(top, np.nanmax(hi))
        blew = ~np.isfinite(vals).all(axis=1) | (vals >= 1e6).any(axis=1)
        shift = 0.012 * (i - (len(acts) - 1) / 2) * (rho.max() - rho.min())
        for r in rho[blew] + shift:  # side by side where several blew up
            ax.annotate("", xy=(r, 1.0), xycoords=("data", "axes fraction"), xytext=(r, 0.93),
                        textcoords=("data", "axes fraction"),
                        arrowprops=dict(arrowstyle="-|>", color=_color(i)))  # fmt: skip
    n = float(ds.attrs.get("model_n", 1))
    ax.axhline(np.sqrt(n), color="0.3", linestyle="--", linewidth=1.0,
               label=f"sqrt(n) = {np.sqrt(n):.2f}: sigmoid, tanh")  # fmt: skip
    a = float(ds.attrs.get("model_amplitude", 1.0))
    below = np.linspace(rho.min(), min(rho.max(), 0.99), 100)
    ax.plot(below, a / (1 - below), **_THEORY, label="a / (1 - rho): linear, symmetric W")
    ax.set_yscale("log")
    ax.set_ylim(0.3, max(top, np.sqrt(n)) * 5)
    ax.set_xlabel("spectral radius rho")
    ax.set_ylabel("max_t ||h(t)|| under bounded noise")
    ax.set_title("BIBO under bounded noise (arrows: blew up)")
    _legend_outside(ax)
    return fig


@_figure
def nonnormal(ds, ax=None, *, tmax=60):
    """Figure 13: non-normal W: ||W^t|| = ||dh(t)/dh(0)|| of linear recursions with Gaussian
    W (solid, non-normal: sigma_max > rho) and symmetric W (dashed, normal: sigma_max = rho)
    of the same spectral radius (median over seeds); dotted: rho^t; dash-dotted: the bound
    sigma_max^t of the Gaussian W (median sigma_max). The Gaussian grows at first although
    rho < 1 (transient amplification); the symmetric one never does. The first ``tmax``
    steps, where it happens.
    """
    _need(ds, "log10_gradient_norm", "max_singular_value", family="rnn")
    _single_layer(ds)
    if "weights" not in ds.dims or not {"gaussian", "symmetric"} <= set(ds.weights.values):
        raise MissingData("needs a weights dimension with gaussian and symmetric")
    if not _has_activation(ds, "identity"):
        raise MissingData("needs the identity activation")
    sub = _sel_activation(ds, "identity")
    fig, (ax,) = _axes(ax, 1, size=(6.5, 4.0))
    sub = sub.sel(time=sub.time[sub.time <= tmax])
    t = sub.time.values.astype(float)
    radii = sub.spectral_radius.values if "spectral_radius" in sub.dims else [None]
    colors = _ramp(len(radii))
    top = 0.0
    for i, rho in enumerate(radii):
        one = sub.sel(spectral_radius=rho) if rho is not None else sub
        for kind, style in (("gaussian", "-"), ("symmetric", "--")):
            g = one.log10_gradient_norm.sel(weights=kind)
            g = _median_seed(g)
            ax.plot(t, g.values, color=colors[i], linestyle=style,
                    label=f"rho = {_fmt(rho)}" if style == "-" else None)  # fmt: skip
            top = max(top, float(np.nanmax(g.values)))
        r = float(rho) if rho is not None else float(np.median(one.spectral_radius.values))
        ax.plot(t, t * np.log10(r), **_THEORY)
        smax = float(np.median(one.max_singular_value.sel(weights="gaussian").values))
        ax.plot(t, t * np.log10(smax), color=colors[i], linestyle="-.", linewidth=0.8)
    ax.plot([], [], color="0.4", linestyle="-", label="Gaussian W (non-normal)")
    ax.plot([], [], color="0.4", linestyle="--", label="symmetric W (normal)")
    ax.plot([], [], **_THEORY, label="rho^t")
    ax.plot([], [], color="0.4", linestyle="-.", linewidth=0.8, label="bound sigma_max^t")
    ax.axhline(0.0, color="0.8", linewidth=0.6, zorder=0)
    low = t[-1] * np.log10(float(np.min(radii))) if radii[0] is not None else -3.0
    ax.set_ylim(min(-1.0, low), top + 0.5)
    ax.set_xlim(0, t[-1])
    ax.set_ylabel("log10 ||W^t||")
    _time_axis(ax)
    ax.set_title("Non-normal W: growth before decay, with rho < 1")
    _legend_outside(ax)
    return fig


def _in_use_pair(datasets):
    """(impulse store, noise store): rnn stores alike but for run.input, with a
    spectral_radius dimension and memory horizons (None if there is no such pair)."""

    def key(d):
        return tuple(str(d.attrs.get(k)) for k in ("family", "model_n", "model_weights",
                                                    "run_steps"))  # fmt: skip

    usable = [
        d
        for d in datasets
        if "memory_horizon" in d and "spectral_radius" in d.dims and not is_stacked(d)
    ]
    for imp in (d for d in usable if d.attrs.get("run_input") == "impulse"):
        for noise in (d for d in usable if d.attrs.get("run_input") == "noise"):
            if key(imp) == key(noise) and imp.attrs.get("family") == "rnn":
                return imp, noise
    return None


@_figure
def memory_in_use(datasets, ax=None):
    """Figure 14: the memory of a recurrence in use: the memory horizon of the input at
    t = 0 against the spectral radius, with that input alone (solid) and while noise keeps
    arriving (dashed), one panel per activation (median over seeds; a triangle at the top:
    never forgotten within the run). ``datasets``: stores of the same recursions with
    run.input = "impulse" and "noise" (lecture_vector and lecture_noise).
    """
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    pair = _in_use_pair(datasets)
    if pair is None:
        raise MissingData("needs two rnn stores alike but for run.input (impulse and noise)")
    imp, noise = pair
    acts = [a for a in (str(x) for x in _values(imp, "activation"))
            if a in set(str(x) for x in _values(noise, "activation"))]  # fmt: skip
    fig, axs = _axes(ax, len(acts), ncols=min(len(acts), 4), size=(3.6, 3.2))
    steps = int(imp.attrs.get("run_steps", 1000))
    for ax, act in zip(axs, acts, strict=True):
        for ds, style, what in ((imp, "-", "x(0) alone"), (noise, "--", "with noise")):
            one = ds.sel(activation=act)
            if "remove_dominant" in one.dims:
                one = one.sel(remove_dominant=False)
            hor = one.memory_horizon.astype(float)
            hor = hor.where(hor >= 0, np.inf)  # never forgotten: longer than any horizon
            hor = _median_seed(hor)
            hor = _first_of_others(hor, ("spectral_radius",))
            rho = one.spectral_radius.values
            h = np.asarray(hor.values, dtype=float)
            kept = ~np.isfinite(h)
            ax.plot(rho, np.where(kept, np.nan, np.maximum(h, 1)), color=_color(0 if
                    style == "-" else 3), linestyle=style, marker="o", label=what)  # fmt: skip
            top = steps * (1.0 if style == "-" else 1.45)  # both visible where both kept it
            ax.plot(rho[kept], np.full(kept.sum(), top), linestyle="none", marker="^",
                    color=_color(0 if style == "-" else 3))  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(1, steps * 2)
        ax.set_xlabel("spectral radius")
        ax.set_ylabel("memory horizon (steps)")
        ax.set_title(act)
    axs[-1].plot([], [], linestyle="none", marker="^", color="0.4",
                 label=f"never forgotten in {steps} steps")  # fmt: skip
    _legend_outside(axs[-1])
    return fig


#: Colours of the scalar map's phases (rnnlab.analysis.scalar_maps.PHASES).
_PHASE_COLORS = {0: "#DDDDDD", 1: PALETTE[2], 2: PALETTE[1], 3: PALETTE[3]}
#: The smallest w x bias grid drawn as a map.
MAP_MIN = 64


@_figure
def scalar_phase_map(ds, ax=None, *, amplitude=None):
    """Figure 11: the phases of the scalar map h -> f(w h + b) over a fine (w, b) grid, one
    column per activation. Top: one fixed point, two (the input's sign picks one: a kept
    memory), period-2 oscillation, divergence (:func:`rnnlab.analysis.scalar_maps.
    scalar_phases`), with the closed-form fold (solid) and flip (dashed) curves of sigmoid
    and tanh. Bottom (with ``memory_horizon``): the memory horizon of the input at t = 0 of
    amplitude ``amplitude`` (default: the largest), blank where it is never forgotten.
    """
    import matplotlib as mpl

    from .scalar_maps import PHASES, bifurcation_curves, scalar_phases

    _need(ds, "saturation_step", "fixed_point", "bounded", "blowup_step", family="rnn")
    if not all(d in ds.dims for d in ("w", "bias", "amplitude")):
        raise MissingData("needs w, bias and amplitude dimensions")
    if min(ds.sizes["w"], ds.sizes["bias"]) < MAP_MIN:
        raise MissingData(f"needs a w x bias grid of at least {MAP_MIN} x {MAP_MIN}")
    phases = scalar_phases(ds)
    acts = [str(a) for a in _values(ds, "activation")] or ["tanh"]
    rows = 2 if "memory_horizon" in ds else 1
    fig, axs = _axes(ax, rows * len(acts), ncols=len(acts), size=(4.4, 3.8))
    w, b = ds.w.values, ds.bias.values
    extent = [w[0], w[-1], b[0], b[-1]]
    cmap = mpl.colors.ListedColormap([_PHASE_COLORS[k] for k in PHASES])
    for j, act in enumerate(acts):
        one = phases.sel(activation=act) if "activation" in phases.dims else phases
        ax = axs[j]
        image = dict(origin="lower", extent=extent, aspect="auto", interpolation="nearest")
        ax.imshow(one.transpose("bias", "w").values, cmap=cmap, vmin=-0.5, vmax=3.5, **image)
        if act in ("sigmoid", "tanh"):
            for name, (cw, cb) in bifurcation_curves(act).items():
                ax.plot(cw, cb, color="black", linewidth=1.0,
                        linestyle="-" if name == "fold" else "--")  # fmt: skip
        ax.set_xlim(w[0], w[-1])
        ax.set_ylim(b[0], b[-1])
        ax.set_xlabel("w")
        ax.set_ylabel("bias b")
        ax.set_title(f"{act}: {ds.sizes['w']} x {ds.sizes['bias']} (w, b)")
    present = set(np.unique(phases.values).tolist())
    handles = [mpl.patches.Patch(color=_PHASE_COLORS[k], label=v) for k, v in PHASES.items()
               if k in present]  # fmt: skip
    handles += [mpl.lines.Line2D([], [], color="black", label="fold: w f' = 1 (closed form)"),
                mpl.lines.Line2D([], [], color="black", linestyle="--",
                                 label="flip: w f' = -1 (closed form)")]  # fmt: skip
    _legend_outside(axs[len(acts) - 1], handles=handles)
    if rows == 2:
        a = float(ds.amplitude.max()) if amplitude is None else amplitude
        steps = int(ds.attrs.get("run_steps", 1000))
        norm = mpl.colors.LogNorm(vmin=1, vmax=steps)
        for j, act in enumerate(acts):
            hor = ds.memory_horizon.sel(amplitude=a)
            hor = hor.sel(activation=act) if "activation" in hor.dims else hor
            hv = np.asarray(hor.transpose("bias", "w").values, dtype=float)
            ax = axs[len(acts) + j]
            image = dict(origin="lower", extent=extent, aspect="auto", interpolation="nearest")
            # 0: the input changed nothing (a saturated start), drawn as 1 on the log scale
            shown = np.where(hv >= 0, np.maximum(hv, 1), np.nan)
            mesh = ax.imshow(shown, cmap="cividis", norm=norm, **image)
            ax.set_xlabel("w")
            ax.set_ylabel("bias b")
            ax.set_title(f"{act}: memory horizon, x(0) = {a:g}")
        fig.colorbar(mesh, ax=axs[len(acts) :], location="bottom", shrink=0.6,
                     label="memory horizon, steps (blank: never forgotten)")  # fmt: skip
    return fig


_CLASS_COLORS = {
    -1: "#FFFFFF",
    0: PALETTE[0],
    1: PALETTE[2],
    2: PALETTE[5],
    3: PALETTE[1],
    4: PALETTE[3],
}


@_figure
def phase_diagram(ds, x=None, y=None, ax=None, *, select=None, tol=1e-3):
    """Figure 10: the dynamical class (vanishing / stable memory / saturating / chaotic /
    exploding, see :func:`rnnlab.analysis.classify`) over two grid dimensions of any store,
    the most common class over seeds; a mark "|" at every crossing of the growth rate
    through 0 along ``x`` (marks only: rows of names are not joined).

    ``x``, ``y``: grid dimensions (default: the first two with more than one value, seeds
    aside). The other dimensions are taken at ``select``, else at the slice that shows the
    most classes (ties: the values nearest 0, then positive ones); the title says which.
    """
    _need(ds, "growth_rate", "blowup_step", "saturation_step", "fixed_point_norm", "memory_horizon")
    _single_layer(
        ds,
        "a stack's polynomial factor shifts its late growth rate by more "
        "than the classes' tolerance",
    )
    dims = [d for d in ds.dims if d not in ("time", "block", "seed") and ds.sizes[d] > 1]
    x = x or (dims[1] if len(dims) > 1 else None)
    y = y or (dims[0] if dims else None)
    if x is None or y is None or x == y:
        raise MissingData("needs two grid dimensions with more than one value")
    others = [d for d in dims if d not in (x, y)]
    codes_all = classify(ds, tol=tol)
    rest = _richest_slice(codes_all, others, select or {})
    sub = ds.sel(rest)
    codes = codes_all.sel(rest)
    if "seed" in codes.dims:
        c = np.asarray(codes.transpose(..., "seed").values)
        counts = np.stack([(c == k).sum(-1) for k in CLASSES], axis=-1)
        mode = np.array(list(CLASSES))[counts.argmax(-1)]
        codes = xr.DataArray(mode, dims=[d for d in codes.dims if d != "seed"],
                             coords={d: codes[d] for d in codes.dims if d != "seed"})  # fmt: skip
    codes = codes.transpose(y, x)
    import matplotlib as mpl

    present = sorted(set(np.unique(codes.values).tolist()))
    cmap = mpl.colors.ListedColormap([_CLASS_COLORS[k] for k in CLASSES])
    norm = mpl.colors.BoundaryNorm(np.arange(-1.5, 5.5, 1.0), cmap.N)
    fig, (ax,) = _axes(ax, 1, size=(6.5, 3.8))
    ax.imshow(codes.values, aspect="auto", origin="lower", cmap=cmap, norm=norm,
              interpolation="nearest")  # fmt: skip
    xs, ys = sub[x].values, sub[y].values
    ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs])
    ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    if sub[x].dtype.kind in "fiu":
        _draw_crossings(ax, sub, x, y, xs)
    import matplotlib.patches as mpatches

    handles = [mpatches.Patch(color=_CLASS_COLORS[k], label=CLASSES[k]) for k in present]
    handles += ax.get_legend_handles_labels()[0]
    _legend_outside(ax, handles=handles)
    what = ", ".join(f"{k} = {_fmt(v)}" for k, v in rest.items())
    ax.set_title(f"Dynamical phases ({_family(ds)}{'; ' + what if what else ''})", fontsize=9)
    return fig


def _richest_slice(codes, others: list[str], select: dict) -> dict:
    """The values of the dimensions ``others``: ``select``'s, else those of the slice with
    the most distinct classes (ties: the values nearest 0, then positive ones)."""
    free = [d for d in others if d not in select]
    best, best_key = {}, None
    combos = [{}]
    for d in free:
        combos = [{**c, d: v} for c in combos for v in codes[d].values][:512]
    for combo in combos:
        kinds = len(np.unique(codes.sel({**select, **combo}).values))
        numbers = [float(v) for v in combo.values() if isinstance(v, int | float | np.number)]
        key = (-kinds, sum(map(abs, numbers)), sum(v < 0 for v in numbers))
        if best_key is None or key < best_key:
            best, best_key = combo, key
    return {**{d: select[d] for d in others if d in select}, **best}


def _draw_crossings(ax, sub, x: str, y: str, xs) -> None:
    """A mark at every crossing of the (median over seeds) growth rate through 0 along x."""
    from .metrics import crossings

    g = sub.growth_rate
    g = _median_seed(g)
    g = g.sortby(x).transpose(y, x)
    order = np.sort(xs.astype(float))
    first = True
    for r, row in enumerate(np.asarray(g.values, dtype=float)):
        for c in crossings(order, row):
            ax.plot(np.interp(c, xs.astype(float), np.arange(len(xs))), r, color="black",
                    marker="|", markersize=14, markeredgewidth=2, linestyle="none",
                    label="growth rate = 0" if first else None)  # fmt: skip
            first = False


@_figure
def constant_error_flow(ds, ax=None, *, radii=(0.9, 1.1)):
    """Figure 15: the identity mapping h(t) = h(t-1) + f(W_ih x(t) + b) (the ``cec``
    family) under noise input, per activation (median over seeds): (left) the gradient
    ||dh(t)/dh(0)|| stays exactly 1, where a linear RNN with symmetric W of spectral radius
    rho has rho^t (dotted, closed form); (middle) the memory of x(0), ||h(t) - hbar(t)||,
    never fades; (right) the price: ||h(t)|| accumulates every input, growing like t when
    E f != 0 (sigmoid: ||h(t)|| / t -> 0.5 sqrt(n), dotted) and like sqrt(t) in mean square
    for odd f (a random walk; dashed: a sqrt(t) slope).
    """
    _need(ds, "log10_gradient_norm", "response", "state_norm", family="cec")
    acts = [str(a) for a in _values(ds, "activation")] or ["tanh"]
    fig, axs = _axes(ax, 3, size=(4.0, 3.4))
    t = ds.time.values.astype(float)
    for i, act in enumerate(acts):
        one = _sel_activation(ds, act) if "activation" in ds.dims else ds
        kw = dict(color=_color(i), label="linear" if act == "identity" else act)
        axs[0].plot(t, _median_seed(one.log10_gradient_norm).values, **kw)
        axs[1].plot(t, _positive(_median_seed(one.response).values), **kw)
        axs[2].plot(t, _positive(_median_seed(one.state_norm).values), **kw)
    worst = float(np.nanmax(np.abs(ds.log10_gradient_norm.values)))
    axs[0].annotate(f"cec, every activation: |log10| <= {worst:.0e}", (0.97, 0.45),
                    xycoords="axes fraction", fontsize=7, ha="right", va="top")  # fmt: skip
    for rho in radii:
        axs[0].plot(t, t * np.log10(rho), **_THEORY)
        at = 17.0 / abs(np.log10(rho))  # where the line is still inside the axis
        axs[0].annotate(f"rho = {rho:g}", (at, np.sign(np.log10(rho)) * 17.0), fontsize=7,
                        ha="left", va="center")  # fmt: skip
    axs[0].plot([], [], **_THEORY, label="linear RNN, symmetric W:\nrho^t (closed form)")
    axs[0].set_ylim(-20, 20)
    axs[0].set_ylabel("log10 ||dh(t)/dh(0)||")
    axs[0].set_title("Constant error flow")
    _logy(axs[1], "||h(t) - hbar(t)||: memory of x(0)")
    axs[1].set_title("x(0) is never forgotten")
    n = float(ds.attrs.get("model_n", 1))
    tt = t[t >= 1]
    axs[2].plot(tt, 0.5 * np.sqrt(n) * tt, **_THEORY, label="0.5 sqrt(n) t")
    odd = [a for a in acts if a in ("identity", "linear", "tanh")] or acts
    last = _median_seed(ds.state_norm).isel(time=-1)
    last = last.sel(activation=odd) if "activation" in last.dims else last
    anchor = float(np.exp(np.nanmean(np.log(last.values))))
    axs[2].plot(tt, anchor * np.sqrt(tt / tt[-1]), color="0.4", linestyle="--",
                linewidth=0.8, label="slope sqrt(t)")  # fmt: skip
    _logy(axs[2], "||h(t)||")
    axs[2].set_xscale("log")
    axs[2].set_xlabel("time step t (log scale)")
    axs[2].set_title("...but the state accumulates")
    for a in axs[:2]:
        _time_axis(a, log=True)
    handles, labels = axs[2].get_legend_handles_labels()
    extra = axs[0].get_legend_handles_labels()
    _legend_outside(axs[2], handles + extra[0][-1:], labels + extra[1][-1:])
    return fig


@_figure
def stacked_layers(ds, ax=None):
    """Figure 16: stacked recurrent layers: log10 ||dh(t)/dh(0)|| of the whole stack (the
    states of all layers) against t, one panel per activation, colour: spectral radius of
    each layer's W_hh, line style: number of layers (median over seeds); dash-dotted (linear
    panel): t log10 rho, one linear layer. The stack's Jacobian is block lower triangular,
    so its rate per step is the largest of its layers' own: ln rho for linear layers of the
    same spectral radius (each with its own W) whatever the depth, times a polynomial in t
    of degree at most layers - 1 (reached only slowly: over steps 500-1000 of
    lecture_stacked, about t^1 for 2 layers and t^1.7 for 4), which lengthens the memory of
    x(0) without stopping its decay. A saturated tanh layer's rate depends on its own fixed
    point, which the layer below moves, so there the stack's rate can be larger than one
    layer's.
    """
    _need(ds, "log10_gradient_norm", family="rnn")
    if "layers" not in ds.dims:
        raise MissingData("needs a layers dimension")
    acts = [str(a) for a in _values(ds, "activation")] or ["tanh"]
    fig, axs = _axes(ax, len(acts), size=(4.4, 3.6))
    t = ds.time.values.astype(float)
    radii = _values(ds, "spectral_radius")
    colors = _ramp(len(radii))
    styles = ["-", "--", ":", (0, (5, 1, 1, 1))]
    for ax, act in zip(axs, acts, strict=True):
        one = _sel_activation(ds, act) if "activation" in ds.dims else ds
        for j, L in enumerate(ds.layers.values):
            for i, rho in enumerate(radii):
                g = one.log10_gradient_norm.sel(layers=L)
                g = g.sel(spectral_radius=rho) if "spectral_radius" in g.dims else g
                raw = _median_seed(g).values
                ax.plot(t, raw, color=colors[i], linestyle=styles[j % len(styles)],
                        label=f"rho = {_fmt(rho)}" if j == 0 else None)  # fmt: skip
                _mark_stop(ax, t, raw, colors[i])
        if act in ("identity", "linear"):  # tanh decays at its own rate where it saturates
            for rho in radii:
                ax.plot(t, t * np.log10(float(rho)), color="0.1", linestyle="-.",
                        linewidth=0.7, zorder=5)  # fmt: skip
        ax.set_ylabel("log10 ||dh(t)/dh(0)|| (whole stack)")
        ax.set_title("linear" if act == "identity" else act)
        _time_axis(ax)
    for j, L in enumerate(ds.layers.values):
        axs[-1].plot([], [], color="0.3", linestyle=styles[j % len(styles)],
                     label=f"{int(L)} layer{'s' if L > 1 else ''}")  # fmt: skip
    axs[-1].plot([], [], color="0.1", linestyle="-.", linewidth=0.7,
                 label="t log10 rho (linear)")  # fmt: skip
    _legend_outside(axs[-1])
    return fig


def layer_shares(ds) -> xr.DataArray:
    """Each layer's share of the squared weight gradient, ||dL/dA_t||^2 / sum_t ||dL/dA_t||^2
    (per case; from ``log10_layer_weight_grad``, without overflow)."""
    g = ds.log10_layer_weight_grad.load()
    sq = 10.0 ** (2.0 * (g - g.max("time")))
    return sq / sq.sum("time")


@_figure
def weight_gradient_by_layer(ds, ax=None, *, first=10):
    """Figure 17: where the gradient on the weights of a deep net sits: each layer's share of
    the squared gradient sum_t ||dL/dA_t||^2 (loss at the last layer), against the layer,
    one panel per activation, one line per weight gain (median over seeds). A line high at
    the left: the gradient is concentrated in the first layers (exploding), at the right: in
    the last ones (vanishing); the title gives the share of the first ``first`` layers at
    the largest gain.
    """
    _need(ds, "log10_layer_weight_grad", family="mlp")
    if "gain" not in ds.dims:
        raise MissingData("needs a gain dimension")
    acts = [str(a) for a in _values(ds, "activation")] or [
        str(ds.attrs.get("model_activation", "tanh"))
    ]
    share = layer_shares(ds)
    fig, axs = _axes(ax, len(acts), ncols=min(len(acts), 4), size=(3.8, 3.2))
    t = ds.time.values.astype(float)
    colors = _ramp(ds.sizes["gain"])
    for ax, act in zip(axs, acts, strict=True):
        one = share.sel(activation=act) if "activation" in share.dims else share
        for i, g in enumerate(ds.gain.values):
            ax.plot(t, _positive(_median_seed(one.sel(gain=g)).values, 1e-30, 2.0),
                    color=colors[i], label=f"gain = {_fmt(g)}")  # fmt: skip
        ax.axhline(1.0 / t.size, color="0.6", linewidth=0.6, linestyle="--", zorder=0)
        top = _median_seed(one.sel(gain=ds.gain.values[-1]).isel(time=slice(0, first))
                           .sum("time"))  # fmt: skip
        _logy(ax, "share of the squared gradient")
        ax.set_ylim(1e-30, 2.0)
        ax.set_xlim(0, t[-1])
        ax.set_xlabel("layer t (the loss is at the last)")
        ax.set_title(f"{act}: first {first} layers hold {float(top):.0%}\nat gain "
                     f"{_fmt(ds.gain.values[-1])}", fontsize=9)  # fmt: skip
    axs[-1].plot([], [], color="0.6", linewidth=0.6, linestyle="--", label="even: 1 / depth")
    _legend_outside(axs[-1])
    return fig


#: A step this long (in (w, b)) counts as thrown by the cliff.
THROWN = 5.0
#: Outcomes of a start with and without clipping (figure 18's right panel), and colours.
_OUTCOMES = {0: ("neither converges", "#DDDDDD"), 1: ("only without clipping", PALETTE[1]),
             2: ("only with clipping", PALETTE[0]), 3: ("both converge", PALETTE[2])}  # fmt: skip


def _cliff_stores(datasets):
    """(landscape, descents): the cliff stores with the most (w, bias) points and with the
    most updates (the same store if there is one)."""
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    have = [d for d in datasets if _family(d) == "cliff" and {"w", "bias"} <= set(d.dims)]
    if not have:
        raise MissingData("needs a cliff store with w and bias dimensions")
    land = max(have, key=lambda d: d.sizes["w"] * d.sizes["bias"])
    desc = max(have, key=lambda d: d.sizes.get("time", 0))
    if desc.sizes.get("time", 0) < 2 or "clip" not in desc.dims or desc.sizes["clip"] < 2:
        raise MissingData("needs a cliff store of descents (run.steps > 1) over two clip values")
    return land, desc


def cliff_outcomes(desc, solved=None):
    """Per start (w, bias): 0 neither, 1 only without clipping, 2 only with clipping, 3 both
    descents end below the solved loss (the first and last clip values of the store)."""
    from rnnlab.jobs.families.cliff import SOLVED_LOSS

    tol = SOLVED_LOSS if solved is None else solved
    end = _first_of_others(desc.final_loss, ("w", "bias", "clip")).transpose("w", "bias", "clip")
    ok = (end < tol).values
    return xr.DataArray(ok[..., 0] * 1 + ok[..., -1] * 2, dims=("w", "bias"),
                        coords={"w": desc.w, "bias": desc.bias})  # fmt: skip


def _thrown_starts(desc, k=3):
    """``k`` of the starts whose unclipped descent took a step longer than ``THROWN``
    (evenly spaced in grid order), as selections."""
    ms = _first_of_others(desc.max_step.isel(clip=0)).transpose("w", "bias").values
    thrown = np.flatnonzero(~(ms <= THROWN))  # NaN (an overflow) counts as thrown
    pick = thrown[np.linspace(0, thrown.size - 1, min(k, thrown.size)).astype(int)]
    return [dict(zip(("w", "bias"), np.unravel_index(i, ms.shape), strict=True))
            for i in dict.fromkeys(pick)]  # fmt: skip


_CLIP_STYLE = {False: dict(color=PALETTE[3], linestyle="--"), True: dict(color=PALETTE[0])}


def _cliff_map(ax, land, desc, starts, norm):
    """The whole landscape with Doya's band, the wall and the valley (closed forms), the
    region of the descents' starts, and for each start its descent without clipping (dashed)
    and with it (solid)."""
    from matplotlib.patches import Rectangle

    from rnnlab.engine.cliff import basin_boundary, bistable_band, valley

    loss = _first_of_others(land.loss.isel(time=0)).transpose("bias", "w")
    w, b = land.w.values, land.bias.values
    mesh = ax.pcolormesh(w, b, loss.values, norm=norm, cmap="cividis", shading="nearest",
                         rasterized=True)  # fmt: skip
    x0 = float(desc.attrs.get("model_x0", 0.5))
    target = float(desc.attrs.get("model_target", 0.7))
    for i, edge in enumerate(bistable_band(w)):
        ax.plot(w, edge, color="0.95", linestyle=":", linewidth=1,
                label="Doya's bistable band" if i == 0 else None)  # fmt: skip
    ax.plot(w, basin_boundary(w, x0), color="white", linestyle="--", linewidth=0.8,
            label="wall: x0 a fixed point")  # fmt: skip
    ax.plot(w, valley(w, target), color=PALETTE[4], linewidth=2.5,
            label=f"valley: sigmoid(x*) = {target:g}")  # fmt: skip
    ax.legend(fontsize="xx-small", loc="lower right", framealpha=0.8)
    dw, db = desc.w.values, desc.bias.values
    ax.add_patch(Rectangle((dw[0], db[0]), dw[-1] - dw[0], db[-1] - db[0], fill=False,
                           edgecolor="0.9", linewidth=0.6))  # fmt: skip
    for idx in starts:
        for j, clipped in ((-1, True), (0, False)):  # the unclipped on top: dashed over solid
            p = _first_of_others(desc.isel(clip=j).isel(idx))
            ax.plot(p.w_path.values, p.bias_path.values, linewidth=1.4, **_CLIP_STYLE[clipped])
        ax.plot(p.w_path.values[0], p.bias_path.values[0], "o", color="white", markersize=5)
    ax.set_xlim(w[0], w[-1])
    ax.set_ylim(b[0], b[-1])
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    return mesh


@_figure
def cliff(datasets, ax=None):
    """Figure 18: the cliff of Pascanu et al. (2013, section 2.3), x(t) = w sigmoid(x(t-1))
    + b, x(0) = x0, loss (sigmoid(x(50)) - 0.7)^2. Left: the loss over (w, b) (the landscape
    store, before any update) with, in closed form, Doya's bistable band (dotted: between
    the curves the map has two stable fixed points), the wall (dashed: b = x0 - w
    sigmoid(x0), where x0 is the unstable fixed point between the two basins) and the valley
    (pink: the stable fixed point with sigmoid(x*) = 0.7, which exists for w < 4.76 only);
    the box: the descent store's starts; three descents that the wall threw (a step longer
    than 5 without clipping; three of them evenly in grid order), each without clipping
    (dashed, thrown out of the frame) and with the gradient norm clipped (solid) from the
    same start (circle). Middle: their loss against the update. Right: the outcome of every
    start with and without clipping (converged: final loss below 1e-4).
    ``datasets``: cliff stores (one store may hold both the landscape and the descents).
    """
    import matplotlib as mpl
    from matplotlib.patches import Patch

    land, desc = _cliff_stores(datasets)
    clip = float(desc["clip"].values[-1])
    fig, axs = _axes(ax, 3, size=(4.3, 3.8))
    norm = mpl.colors.LogNorm(vmin=max(float(land.loss.min()), 1e-6),
                              vmax=float(land.loss.max()))  # fmt: skip
    starts = _thrown_starts(desc)
    mesh = _cliff_map(axs[0], land, desc, starts, norm)
    fig.colorbar(mesh, ax=axs[0], location="bottom", shrink=0.8, label="loss")
    t = desc.time.values
    far = 0.0
    for idx in starts:
        for j, clipped in ((-1, True), (0, False)):
            p = _first_of_others(desc.isel(clip=j).isel(idx))
            axs[1].plot(t, _positive(p.loss.values, 1e-300, 1e300), linewidth=1.4,
                        **_CLIP_STYLE[clipped])  # fmt: skip
            if not clipped:
                far = max(far, float(np.nanmax(np.hypot(p.w_path.values, p.bias_path.values))))
    axs[0].set_title(f"Three descents the wall threw\n(unclipped: out to ||(w, b)|| = {far:.0f})",
                     fontsize=9)  # fmt: skip
    axs[1].plot([], [], **_CLIP_STYLE[False], label="no clipping")
    axs[1].plot([], [], **_CLIP_STYLE[True], label=f"norm clipped at {clip:g}")
    _logy(axs[1], "loss")
    _time_axis(axs[1], log=True)
    axs[1].set_xlabel("update (log scale of k + 1)")
    axs[1].set_title("Their loss")
    axs[1].legend(fontsize="x-small")
    out = cliff_outcomes(desc).transpose("bias", "w")
    cmap = mpl.colors.ListedColormap([c for _, c in _OUTCOMES.values()])
    axs[2].pcolormesh(desc.w.values, desc.bias.values, out.values, cmap=cmap, vmin=-0.5,
                      vmax=3.5, shading="nearest")  # fmt: skip
    counts = {k: int((out.values == k).sum()) for k in _OUTCOMES}
    axs[2].legend(handles=[Patch(color=c, label=f"{name} ({counts[k]})")
                           for k, (name, c) in _OUTCOMES.items()],
                  fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.22),
                  ncols=2)  # fmt: skip
    axs[2].set_xlabel("w at the start")
    axs[2].set_ylabel("b at the start")
    axs[2].set_title(f"After {int(t[-1])} updates of learning rate {_fmt(_lr(desc))}",
                     fontsize=9)  # fmt: skip
    return fig


def _lr(desc):
    if "learning_rate" in desc.dims:
        return desc.learning_rate.values[0]
    return desc.attrs.get("model_learning_rate", 0.1)


_CELL_COLORS = {"rnn": PALETTE[3], "lstm": PALETTE[0], "gru": PALETTE[2], "cec": PALETTE[4]}


def _train_store(ds, dim):
    _need(ds, "train_loss", "final_loss", "baseline", family="train")
    if dim not in ds.dims:
        raise MissingData(f"needs a {dim} dimension")


@_figure
def training_by_length(ds, ax=None):
    """Figure 19: networks trained on a task at several lengths (the ``train`` family):
    left, the training loss against the update at the longest length, one colour per cell
    (median over seeds, band: min to max); right, the final loss on fresh sequences over
    the chance level against the length (median, dots: each seed). Dotted: the task's
    chance level (the loss of the best constant guess: 1/6 for the adding problem,
    10 ln 8 / (T + 20) for copy).
    """
    _train_store(ds, "cell")
    if "length" not in ds.dims:
        raise MissingData("needs a length dimension")
    fig, axs = _axes(ax, 2, size=(4.6, 3.6))
    t = ds.time.values.astype(float)
    longest = ds.length.values.max()
    for cell in (str(c) for c in ds.cell.values):
        color = _CELL_COLORS.get(cell, "0.3")
        curve = ds.train_loss.sel(cell=cell, length=longest)
        curve = _first_of_others(curve, ("time", "seed"))
        axs[0].plot(t, _median_seed(curve).values, color=color, label=cell.upper())
        if "seed" in curve.dims:
            axs[0].fill_between(t, curve.min("seed"), curve.max("seed"), color=color,
                                alpha=0.15, linewidth=0)  # fmt: skip
        final = (ds.final_loss / ds.baseline).sel(cell=cell)
        final = _first_of_others(final, ("length", "seed"))
        axs[1].plot(ds.length.values, _median_seed(final).values, color=color, marker="o")
        if "seed" in final.dims:
            for s in final.seed.values:
                axs[1].plot(ds.length.values, final.sel(seed=s).values, color=color,
                            marker=".", linestyle="none", alpha=0.5)  # fmt: skip
    others = [d for d in ds.baseline.dims if d != "length"]  # per length (copy: 10 ln 8 / (T + 20))
    base = ds.baseline.max(others)  # NaN-skipping: an incomplete store keeps its line
    axs[0].axhline(float(base.sel(length=longest)), **_THEORY)
    axs[1].axhline(1.0, **_THEORY)
    for a in axs:
        a.set_yscale("log")
    axs[0].set_ylabel("training loss (batch)")
    axs[0].set_xlabel("update")
    axs[0].set_title(f"{ds.attrs.get('model_task', 'task')}, T = {int(longest)}")
    axs[1].set_ylabel("loss on fresh sequences / chance level")
    axs[1].set_xlabel("length T")
    axs[1].set_title("After training")
    axs[0].plot([], [], **_THEORY, label="chance level")
    _legend_outside(axs[1], *axs[0].get_legend_handles_labels())
    return fig


@_figure
def clipping(ds, ax=None):
    """Figure 20: exploding gradients in training, and clipping (the ``train`` family over
    ``clip``): the gradient norm (left) and the training loss (right) against the update,
    one line per seed, without clipping (orange, dashed), with the norm clipped (blue) and
    with every element clipped (green, dotted); an x where a run diverged (its loss or
    gradient overflowed; the run is frozen there).
    """
    _train_store(ds, "clip")
    fig, axs = _axes(ax, 2, size=(4.6, 3.6))
    t = ds.time.values.astype(float)
    styles = {"none": dict(color=PALETTE[3], linestyle="--"), "norm": dict(color=PALETTE[0]),
              "value": dict(color=PALETTE[2], linestyle=":")}  # fmt: skip
    for c in (str(v) for v in ds["clip"].values):
        style = styles.get(c, dict(color=PALETTE[0]))
        one = ds.sel(clip=c)
        one = one.isel({d: 0 for d in one.train_loss.dims if d not in ("time", "seed")})
        for s in one.seed.values if "seed" in one.dims else [None]:
            run = one.sel(seed=s) if s is not None else one
            for a, var in zip(axs, ("train_grad_norm", "train_loss"), strict=True):
                raw = run[var].values
                a.plot(t, _positive(raw), linewidth=1.0, **style)
                _mark_stop(a, t, raw, style["color"], shown=_positive(raw))
        thr = ds.attrs.get("model_clip_threshold", 1.0)
        label = {"none": "no clipping", "norm": f"norm clipped at {_fmt(thr)}",
                 "value": f"elements clipped to +-{_fmt(thr)}"}.get(c, c)  # fmt: skip
        axs[1].plot([], [], label=label, **style)
    axs[1].axhline(float(ds.baseline.max()), **_THEORY, label="chance level")
    axs[1].plot([], [], marker="x", color="0.4", linestyle="none", label="diverged")
    for a, label in zip(axs, ("gradient norm (before clipping)", "training loss"), strict=True):
        _logy(a, label)
        a.set_xlabel("update")
    axs[0].set_title("Gradient norm")
    axs[1].set_title("Loss")
    _legend_outside(axs[1])
    return fig


@_figure
def generalisation(ds, ax=None):
    """Figure 21: networks trained on short sequences, tested on longer ones (the ``train``
    family over ``test_length``): the share of correct outputs against the test length, one
    panel per task, one colour per cell (median over seeds, dots: each seed); dashed: the
    trained length; dotted: chance (1/2 per bit). Where both cells are exact their lines
    overlap at 1.
    """
    _train_store(ds, "test_length")
    tasks = [str(t) for t in _values(ds, "task")] or ["task"]
    fig, axs = _axes(ax, len(tasks), size=(4.4, 3.6))
    x = ds.test_length.values.astype(float)
    for a, task in zip(axs, tasks, strict=True):
        one = ds.sel(task=task) if "task" in ds.dims else ds
        for cell in (str(c) for c in _values(one, "cell")):
            acc = one.test_accuracy.sel(cell=cell) if "cell" in one.dims else one.test_accuracy
            acc = _first_of_others(acc, ("test_length", "seed"))
            color = _CELL_COLORS.get(cell, "0.3")
            a.plot(x, _median_seed(acc).values, color=color, marker="o", label=cell.upper())
            if "seed" in acc.dims:
                for s in acc.seed.values:
                    a.plot(x, acc.sel(seed=s).values, color=color, marker=".",
                           linestyle="none", alpha=0.5)  # fmt: skip
        a.axvline(float(ds.attrs.get("model_length", x[0])), color="0.4", linestyle="--",
                  linewidth=0.8)  # fmt: skip
        a.axhline(0.5, **_THEORY)
        a.set_xscale("log")
        a.set_ylim(0.45, 1.02)
        a.set_xlabel("test length (steps)")
        a.set_ylabel("share of correct outputs")
        a.set_title(task.replace("_", " "))
    axs[-1].plot([], [], color="0.4", linestyle="--", linewidth=0.8, label="trained length")
    axs[-1].plot([], [], **_THEORY, label="chance")
    _legend_outside(axs[-1])
    return fig


@_figure
def initialisation(ds, ax=None):
    """Figure 22: the initialisation of W_hh and momentum (the ``train`` family over
    ``init`` and ``optimizer``): the final loss on fresh sequences over the chance level,
    one panel per activation and length (same y axis), one column per initialisation,
    plain SGD (open) and the other optimisers (filled), each seed a marker, the median a
    bar. Dotted: the chance level; dashed: the task's solved level.
    """
    _train_store(ds, "init")
    if "optimizer" not in ds.dims:
        raise MissingData("needs an optimizer dimension")
    acts = _values(ds, "activation") or [_train_default("activation")]
    lengths = _values(ds, "length") or [_train_default("length")]
    fig, axs = _axes(ax, len(acts) * len(lengths), ncols=len(acts), size=(3.8, 3.6))
    rel = (ds.final_loss / ds.baseline).load()
    level = (_solved_loss(ds) / ds.baseline).load()
    for a, (n, act) in zip(axs, [(n, f) for n in lengths for f in acts], strict=True):
        pick = {k: v for k, v in (("length", n), ("activation", act)) if k in rel.dims}
        _init_panel(a, ds, rel.sel(pick), float(level.sel(pick).max()))
        a.set_title(f"{act} RNN, T = {_fmt(n)}")
    top = max(1.6, 1.2 * float(rel.max()))
    low = min(a.get_ylim()[0] for a in axs)
    for a in axs:
        a.set_ylim(low, top)
    axs[-1].plot([], [], **_THEORY, label="chance level")
    axs[-1].plot([], [], color="0.4", linestyle="--", linewidth=0.8, label="solved")
    _legend_outside(axs[-1])
    return fig


def _init_panel(a, ds, rel, solved: float) -> None:
    """One panel of figure 22: per initialisation and optimiser, each seed's final loss
    over the chance level and their median."""
    inits = [str(v) for v in ds["init"].values]
    opts = [str(v) for v in ds["optimizer"].values]
    for j, opt in enumerate(opts):
        color, dx = _color(j), (j - (len(opts) - 1) / 2) * 0.25
        face = dict(color=color, markerfacecolor="none" if opt == "sgd" else color)
        for i, init in enumerate(inits):
            vals = _first_of_others(rel.sel(init=init, optimizer=opt), ("seed",))
            vals = np.atleast_1d(vals.values)
            a.plot(np.full(vals.size, i + dx), vals, "o", alpha=0.8, **face)
            a.plot([i + dx - 0.1, i + dx + 0.1], [np.nanmedian(vals)] * 2, color=color)
        a.plot([], [], "o", label=opt, **face)
    a.axhline(1.0, **_THEORY)
    if np.isfinite(solved):
        a.axhline(solved, color="0.4", linestyle="--", linewidth=0.8)
    a.set_yscale("log")
    a.set_xticks(range(len(inits)), [_init_label(ds, v) for v in inits])
    a.set_xlim(-0.5, len(inits) - 0.5)
    a.set_ylabel("final loss / chance level")


def _train_default(key: str):
    """A setting of the train family's default (a store records only the fixed ones)."""
    from rnnlab.jobs.families import get_family

    return get_family("train").params[key].default


def _solved_loss(ds):
    """The task's solved level, a loss (per task if the store has a task dimension)."""
    from rnnlab.engine.tasks import TASKS

    if "task" in ds.dims:
        levels = [TASKS[str(t)].solved for t in ds.task.values]
        return xr.DataArray(levels, coords={"task": ds.task.values}, dims="task")
    return xr.DataArray(TASKS[str(ds.attrs.get("model_task", _train_default("task")))].solved)


def _init_label(ds, init: str) -> str:
    """An initialisation's name with its scale (the first of a swept scale, the one drawn;
    the train family's defaults if unset)."""
    from rnnlab.engine.train import SMALL_SCALE

    scale = ds["init_scale"].values[0] if "init_scale" in ds.dims else None
    scale = ds.attrs.get("model_init_scale", "none") if scale is None else scale
    if init in ("normal", "uniform"):
        s = SMALL_SCALE if scale == "none" else float(scale)
        small = "small\n" if s < 1 else ""
        return (
            f"{small}N(0, {_fmt(s)}^2)" if init == "normal" else f"{small}U(-{_fmt(s)}, {_fmt(s)})"
        )
    return init if scale == "none" else f"{init}\nx {_fmt(scale)}"


def _spectrum_store(ds):
    """The gain of a store of spectra of random tanh networks (figure 23), or MissingData."""
    _need(ds, "lyapunov_exponents", "kaplan_yorke_dimension", "entropy_rate", family="rnn",
          what=": run.outputs must list lyapunov_exponents, kaplan_yorke_dimension and "
          "entropy_rate")  # fmt: skip
    tanh = "activation" not in ds.dims and ds.attrs.get("model_activation", "tanh") == "tanh"
    if "gain" not in ds.dims or not tanh or is_stacked(ds):
        raise MissingData("needs single-layer tanh networks over a gain dimension")
    if ds.attrs.get("model_weights", "gaussian") != "gaussian":
        raise MissingData("needs Gaussian weights (W ~ N(0, g^2 / n))")
    if "model_n" not in ds.attrs:
        raise MissingData("needs one n (model.n fixed, not a grid dimension)")
    others = set(ds.lyapunov_exponents.dims) - {"gain", "seed", "exponent"}
    if others:
        raise MissingData(f"needs a grid of gain (and seed) only, not {', '.join(sorted(others))}")
    biased = [k for k in ("bias", "bias_std") if k in ds.dims or ds.attrs.get(f"model_{k}", 0)]
    if biased:
        raise MissingData(f"needs unbiased networks (model.{biased[0]} = 0: the theory and the "
                          "published spectra are without biases)")  # fmt: skip
    return ds.gain.values.astype(float)


@_figure
def lyapunov_spectra(ds, ax=None):
    """Figure 23: Lyapunov spectra of random tanh networks over the gain g (``rnn`` family,
    Gaussian W): the spectra (median over seeds, exponent against its rank / n, symlog
    axis: the whole spectrum), the largest exponent with mean-field theory, the Kaplan-Yorke
    dimension and the entropy rate per unit, each seed a marker, the published N = 4096
    values open diamonds.
    """
    from .meanfield import depth_growth_rate
    from .published import TANH_SPECTRA, TANH_SPECTRA_SOURCE

    gains = _spectrum_store(ds)
    n = int(ds.attrs.get("model_n", ds.sizes["exponent"]))
    lam = ds.lyapunov_exponents.load()
    fig, axs = _axes(ax, 4, ncols=4, size=(3.6, 3.3))
    colors = _ramp(len(gains))
    spec = _median_seed(lam)
    for c, g in zip(colors, gains, strict=True):
        row = spec.sel(gain=g).values
        axs[0].plot(np.arange(1, row.size + 1) / n, row, color=c, label=f"g = {_fmt(g)}")
    axs[0].axhline(0.0, color="0.6", linewidth=0.6)
    axs[0].set_yscale("symlog", linthresh=0.1)
    axs[0].set(xlabel="rank i / n", ylabel="lambda_i (1/step)", title="spectra (median of seeds)")
    grid = np.linspace(min(gains.min(), 0.5), max(gains.max(), 5.0), 200)
    theory = [depth_growth_rate("tanh", g) for g in grid]
    axs[1].plot(grid, theory, **_THEORY, label="mean field 0.5 ln chi_1")
    pub = np.array([(g, *v) for g, v in sorted(TANH_SPECTRA.items())])
    per_unit = {"kaplan_yorke_dimension": (2, "Kaplan-Yorke dimension / n"),
                "entropy_rate": (3, "entropy rate / n (1/step)")}  # fmt: skip
    series = [(axs[1], lam.isel(exponent=0), 1, "lambda_max (1/step)")]
    series += [(a, ds[v].load() / n, col, label)
               for a, (v, (col, label)) in zip(axs[2:], per_unit.items(), strict=True)]  # fmt: skip
    for a, da, col, label in series:
        vals = da.transpose("gain", ...).values.reshape(len(gains), -1)
        for j in range(vals.shape[1]):
            a.plot(gains, vals[:, j], "o", color=PALETTE[0], alpha=0.6, markersize=4,
                   label=f"n = {n} (each seed)" if j == 0 else None)  # fmt: skip
        a.plot(gains, np.nanmedian(vals, axis=1), color=PALETTE[0], linewidth=0.8)
        a.plot(pub[:, 0], pub[:, col], "D", color=PALETTE[1], markerfacecolor="none",
               label=TANH_SPECTRA_SOURCE)  # fmt: skip
        a.axvline(1.0, color="0.6", linewidth=0.6, linestyle="--")
        a.set(xlabel="gain g (W ~ N(0, g^2 / n))", ylabel=label)
    axs[1].axhline(0.0, color="0.6", linewidth=0.6)
    axs[1].set_title("largest exponent")
    axs[2].set_title("attractor dimension")
    axs[3].set_title("entropy rate (sum of lambda_i > 0)")
    _legend_outside(axs[0], title="median of seeds")
    _legend_outside(axs[3], *axs[1].get_legend_handles_labels())
    return fig


@_figure
def order_to_chaos(ds, ax=None):
    """Figure 24: the order-to-chaos phase diagram: the simulated growth rate of the gradient
    (per layer of a deep net, per step of a recurrent net) over (gain, bias_std) =
    (sigma_w, sigma_b), coloured around 0, with mean-field theory's chi_1 = 1 (the stored
    chi_1's contour) drawn over it; right, the stored depth scales along the second
    sigma_b of the grid.
    """
    _need(ds, "growth_rate", "chi_1", "gradient_depth_scale", "signal_depth_scale",
          family=("mlp", "rnn"), what=": run.outputs must list growth_rate, chi_1 and the "
          "depth scales")  # fmt: skip
    if not {"gain", "bias_std"} <= set(ds.dims) or "activation" in ds.dims:
        raise MissingData("needs one activation over gain and bias_std dimensions")
    if min(ds.sizes["gain"], ds.sizes["bias_std"]) < 2:
        raise MissingData("needs at least 2 values of gain and of bias_std")
    if set(ds.growth_rate.dims) - {"gain", "bias_std", "seed"}:
        raise MissingData("needs a grid of gain and bias_std (and seed) only")
    if not np.isfinite(ds.growth_rate).any():
        raise MissingData("no finite growth rate to draw")
    rate = _median_seed(ds.growth_rate).transpose("bias_std", "gain").load()
    chi = _median_seed(ds.chi_1).transpose("bias_std", "gain").load()
    gains, stds = ds.gain.values, ds.bias_std.values
    fig, axs = _axes(ax, 2, size=(4.8, 3.6))
    import matplotlib.colors as mcolors

    finite = rate.values[np.isfinite(rate.values)]
    norm = mcolors.TwoSlopeNorm(0.0, min(finite.min(), -1e-3), max(finite.max(), 1e-3))
    mesh = axs[0].pcolormesh(gains, stds, rate.values, cmap="RdBu_r", norm=norm,
                             shading="nearest")  # fmt: skip
    fig.colorbar(mesh, ax=axs[0], label=f"growth rate (1/{_unit(ds)})")
    axs[0].contour(gains, stds, np.log(chi.values), levels=[0.0], colors="k", linewidths=1.2)
    axs[0].plot([], [], color="k", label="mean field: chi_1 = 1")
    axs[0].set(xlabel="sigma_w (gain)", ylabel="sigma_b (bias_std)",
               title=f"{_family(ds)}, {ds.attrs.get('model_activation', 'tanh')}, "
               f"n = {ds.attrs.get('model_n', '?')}")  # fmt: skip
    axs[0].legend(fontsize="x-small", loc="upper left")
    sb = stds[min(1, stds.size - 1)]  # above sigma_b = 0, where q* = 0 below the line
    row = ds.sel(bias_std=sb)
    for name, style in (("gradient_depth_scale", "-"), ("signal_depth_scale", "--")):
        vals = np.abs(_median_seed(row[name]).values)
        axs[1].plot(gains, vals, style, color=PALETTE[0], label=f"|{name}|")
    axs[1].set_yscale("log")
    axs[1].set(xlabel="sigma_w (gain)", ylabel=f"depth scale ({_unit(ds)}s)",
               title=f"mean field at sigma_b = {_fmt(sb)}")  # fmt: skip
    _legend_outside(axs[1])
    return fig


def _unit(ds) -> str:
    return "layer" if _family(ds) == "mlp" else "step"


def _capacity_store(ds):
    """The tanh part of a store of memory capacities over spectral_radius and amplitude
    (figure 25), or MissingData."""
    _need(ds, "memory_capacity", "memory_capacity_by_delay", family="rnn",
          what=": run.outputs must list memory_capacity and memory_capacity_by_delay")  # fmt: skip
    if not {"spectral_radius", "amplitude"} <= set(ds.dims) or not _has_activation(ds, "tanh"):
        raise MissingData("needs tanh networks over spectral_radius and amplitude dimensions")
    if set(ds.memory_capacity.dims) - {"spectral_radius", "amplitude", "activation", "seed"}:
        raise MissingData("needs a grid of spectral_radius, amplitude (activation, seed) only")
    return _sel_activation(ds, "tanh")


@_figure
def memory_capacity(ds, ax=None):
    """Figure 25: the memory capacity of random tanh networks against the spectral radius,
    one line per input amplitude (median over seeds), the linear network's (identity,
    when the store has it) dashed and the bound n dotted; right, each delay's capacity at
    the smallest amplitude for a few spectral radii.
    """
    tanh = _capacity_store(ds)
    n = int(ds.attrs.get("model_n", 0))
    rhos = ds.spectral_radius.values
    amps = ds.amplitude.values
    fig, axs = _axes(ax, 2, size=(4.6, 3.6))
    total = _median_seed(tanh.memory_capacity).load()
    for c, a in zip(_ramp(len(amps)), amps, strict=True):
        axs[0].plot(rhos, total.sel(amplitude=a).values, "o-", color=c, markersize=3,
                    label=f"tanh, input a = {_fmt(a)}")  # fmt: skip
    if _has_activation(ds, "identity"):
        lin = _median_seed(_sel_activation(ds, "identity").memory_capacity).load()
        lin = lin.isel(amplitude=0) if "amplitude" in lin.dims else lin
        axs[0].plot(rhos, lin.values, "--", color="k", label="linear")
    if n:
        axs[0].axhline(n, **_THEORY, label=f"bound n = {n}")
    axs[0].axvline(1.0, color="0.6", linewidth=0.6)
    axs[0].set(xlabel="spectral radius of W", ylabel="memory capacity (sum over delays)")
    _legend_outside(axs[0])
    by_delay = _median_seed(tanh.memory_capacity_by_delay).sel(amplitude=amps[0]).load()
    picks = sorted({float(rhos[np.argmin(np.abs(rhos - r))]) for r in (0.5, 0.9, 1.0, 1.5)})
    for c, r in zip(_ramp(len(picks)), picks, strict=True):
        axs[1].plot(ds.delay.values, by_delay.sel(spectral_radius=r).values, color=c,
                    label=f"rho = {_fmt(r)}")  # fmt: skip
    axs[1].set(xlabel="delay k (steps)", ylabel="capacity of delay k (r^2)",
               title=f"tanh, input a = {_fmt(amps[0])}", ylim=(-0.05, 1.05))  # fmt: skip
    _legend_outside(axs[1])
    return fig


#: Colour and marker of each class of fixed point (rnnlab.engine.FIXED_POINT_KINDS).
_KIND_STYLE = {"stable": (PALETTE[0], "o"), "line_attractor": (PALETTE[4], "P"),
               "marginal": (PALETTE[2], "D"), "saddle": (PALETTE[1], "s"),
               "unstable": (PALETTE[3], "^")}  # fmt: skip


def trained_fixed_points(one, sequences: int = 20, starts: int = 64):
    """For one case of a train store with ``trained_weights``: (the trained network, its
    hidden states on ``sequences`` fresh test sequences (sequences, steps, units), its fixed
    points without input from ``starts`` of those states). The data behind figure 26 and
    its check: the fixed points the sweep stored (``fixed_points_*`` in ``run.outputs``),
    else found now (:func:`rnnlab.engine.fixedpoints.visited_fixed_points`, the same)."""
    from rnnlab.engine.fixedpoints import task_states, visited_fixed_points

    from .results import stored_fixed_points, trained_network

    net = trained_network(one)
    length = int(one["length"]) if "length" in one.coords else int(one.attrs["model_length"])
    if "fixed_points_state" in one.data_vars:
        return net, task_states(net, length, sequences=sequences), stored_fixed_points(one)
    h, fp = visited_fixed_points(net, length, sequences=sequences, starts=starts)
    return net, h, fp


@_figure
def fixed_points_figure(ds, ax=None):
    """Figure 26: fixed points of trained networks (Sussillo & Barak 2013): per cell (the
    first seed), the hidden-state trajectories on test sequences projected on their first
    two principal components (grey), and the fixed points of the trained step without input
    (from 64 visited states) on the same axes, coloured and shaped by class, their size by
    how many starts reached them.
    """
    _need(ds, "trained_weights", family="train",
          what=": run.outputs must list trained_weights")  # fmt: skip
    if set(ds.trained_weights.dims) - {"cell", "seed", "parameter"}:
        raise MissingData("needs a grid of cell (and seed) only")
    cells = [str(c) for c in ds.cell.values] if "cell" in ds.dims else [ds.attrs["model_cell"]]
    fig, axs = _axes(ax, len(cells), size=(4.2, 3.8))
    for a, cell in zip(axs, cells, strict=True):
        one = ds.sel(cell=cell) if "cell" in ds.dims else ds
        one = one.isel(seed=0) if "seed" in one.dims else one
        _, h, fp = trained_fixed_points(one)
        H = h.shape[-1]
        flat = h.reshape(-1, H)
        mean = flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
        proj = (h - mean) @ vt[:2].T
        for traj in proj:
            a.plot(traj[:, 0], traj[:, 1], color="0.75", linewidth=0.6)
        pts = (fp.points[:, :H] - mean) @ vt[:2].T if len(fp.points) else np.zeros((0, 2))
        for kind, (color, marker) in _KIND_STYLE.items():
            sel = fp.kind == kind
            if sel.any():
                a.scatter(pts[sel, 0], pts[sel, 1], s=20 + 4 * fp.starts[sel], color=color,
                          marker=marker, edgecolor="k", linewidth=0.5, zorder=3,
                          label=f"{kind} ({int(sel.sum())})")  # fmt: skip
        a.set(xlabel="PC 1 of h", ylabel="PC 2 of h",
              title=f"trained {cell}, H = {H}, {ds.attrs.get('model_task', '')}")  # fmt: skip
        a.legend(fontsize="x-small", loc="best")
    return fig


#: The figures drawn from all the stores of a report at once (the others: one per store).
ACROSS_STORES = ("input_weight_gradients", "memory_in_use", "cliff")

#: (name, function, caption) of every figure, in the report's order.
FIGURES = [
    ("scalar_linear", scalar_linear, "Scalar linear recursion: the response to x(0) is "
     "w^t c x(0): it vanishes for |w| < 1, stays for |w| = 1 and explodes for |w| > 1; a "
     "negative w alternates its sign. Dotted: the closed form."),
    ("vector_linear", vector_linear, "Vector linear recursion: the memory of x(0), ||W^t C x(0)||, "
     "grows or shrinks like |lambda_1|^t; without a component along the dominant eigenvector, "
     "like |lambda_2|^t, over the whole run (the response is measured with the dominant part "
     "projected out every step; faint: the simulated state, in which rounding brings it back)."),
    ("scalar_nonlinear", scalar_nonlinear, "Scalar nonlinear recursions (w > 0): sigmoid settles "
     "in a few steps to a value set by w and b; tanh forgets for w < 1 and, for w > 1 and "
     "small b, keeps the sign of the input at one of two fixed points (at w = 1, b = 0 it "
     "decays slowly, like sqrt(3 / (2 t))); relu vanishes (w < 1, b <= 0), settles at "
     "b / (1 - w) (w < 1, b > 0), and for w >= 1 grows while its state stays positive "
     "(b > 0, or b = 0 and a positive input; at w = 1, b = 0 it stays), but is held at 0 "
     "once the state reaches 0 with b <= 0 (a negative input at b = 0, or b = -1)."),
    ("vector_nonlinear", vector_nonlinear, "Vector nonlinear recursions: the state norm and the "
     "memory of the input at t = 0, for each activation across spectral radii."),
    ("memory_phase", memory_phase, "Memory of the input at t = 0, per activation and weight "
     "scale: the steps until the response falls below the tolerance for good, or, for runs "
     "that never forget, whether the memory is kept, grows or blew up (memory_class)."),
    ("gradient_vs_lag", gradient_vs_lag, "Gradient norm against the lag with the bound "
     "(gamma sigma_max)^t: it vanishes when gamma sigma_max < 1 and can only explode when "
     "it is above 1. An x where a line stops: the state overflowed, or (relu) it underflowed "
     "to exactly 0 below float64's 1e-308, where relu'(0) = 0 makes the product exactly 0 "
     "(the unrounded gradient would keep falling at the same rate)."),
    ("gradient_by_depth", gradient_by_depth, "The same through depth: gradient norms of deep "
     "feed-forward nets by layer, per activation and weight gain. Dotted: the mean-field "
     "prediction 0.5 ln chi_1 per layer (Poole et al. 2016); dashed: the bound "
     "(gamma sigma_max)^l with sigma_max ~ 2 gain (large n; a layer's own sigma_max can be a "
     "little larger)."),
    ("input_weight_gradients", input_weight_gradients, "RNN vs LSTM (and GRU): each step's "
     "contribution to the gradient on the input weights, for an error at the last step only "
     "(median over seeds, band: quartiles). How far back the error reaches: with f near 1/2 "
     "(no forget-gate bias) the LSTM forgets as fast as the RNN, or faster; with a "
     "forget-gate bias of 3 the error is not merely carried back but amplified on the way "
     "(through the gates: the carousel alone would shrink it)."),
    ("lstm_memory", lstm_memory, "LSTM cell gradient: the carousel alone (dashed; the direct "
     "path, prod f of the unit whose forget gate stays most open) decays like that f^t and "
     "is exactly 1 without a forget gate (NFG), but through the gates the all-path gradient "
     "(solid) can grow: the LSTM can still explode (red cells)."),
    ("phase_diagram", phase_diagram, "Dynamical phases over two grid dimensions: vanishing, "
     "stable memory, saturating, chaotic and exploding, with the growth-rate-zero boundary."),
    ("scalar_phase_map", scalar_phase_map, "The scalar map h -> f(w h + b) over a fine (w, b) "
     "grid: one fixed point, two (the input picks one: a kept memory), period-2 "
     "oscillation or divergence, with the closed-form fold (w f' = 1) and flip (w f' = -1) "
     "curves of sigmoid and tanh, on which the simulated phases change; below, the memory "
     "horizon of x(0) = 20: longest next to the curves, where the map settles slowly; "
     "blank where it is never forgotten: x(0) moved the state into the other of two fixed "
     "points, or shifted an oscillation's phase; isolated specks where f(20 + b) - f(b) is "
     "below what float32 resolves."),
    ("bibo", bibo, "BIBO stability under bounded noise: sigmoid and tanh stay below sqrt(n) "
     "for every spectral radius; the linear and relu recursions stay below a / (1 - rho) "
     "for rho < 1 and can blow up above it."),
    ("nonnormal", nonnormal, "Non-normal W: with the same spectral radius below 1, ||W^t|| of "
     "a Gaussian W grows at first (its sigma_max exceeds rho) before decaying like rho^t; a "
     "symmetric W decays from the first step; sigma_max^t bounds both."),
    ("memory_in_use", memory_in_use, "The memory of a recurrence in use: the memory horizon "
     "of x(0) alone (solid) and while noise keeps arriving (dashed). Linear recursions are "
     "unchanged (superposition), and so is sigmoid, which forgets within a few steps anyway; "
     "relu forgets sooner with the noise, and tanh, which keeps x(0) alone for rho >= 1, "
     "can forget it with the noise."),
    ("constant_error_flow", constant_error_flow, "The identity mapping h(t) = h(t-1) + "
     "f(W_ih x(t)), the constant error carousel: the gradient through time stays exactly 1 "
     "(an RNN's is rho^t) and x(0) is never forgotten, but the state accumulates every "
     "input: it grows like t (sigmoid, relu: E f > 0) or like a random walk (linear, tanh)."),
    ("stacked_layers", stacked_layers, "Stacked recurrent layers: the gradient through time "
     "of the whole stack grows or decays at the largest of its layers' own rates per step: "
     "for linear layers at ln rho whatever the depth (dash-dotted), more layers only "
     "multiplying it by a polynomial in t (the dashed and dotted lines rise above the solid "
     "one slowly and run nearly parallel); for tanh the same where the state decays, and a "
     "saturated layer, whose fixed point the layer below moves, can decay more slowly than "
     "a single one."),
    ("weight_gradient_by_layer", weight_gradient_by_layer, "Where the gradient on the "
     "weights of a deep net sits (loss at the last layer; median over seeds of each layer's "
     "share): exploding tanh nets (chi_1 > 1) move it into the first layers, the more the "
     "larger the gain (almost all of it at gain 4), vanishing sigmoid nets into the last; "
     "for linear and relu nets without bias every layer's gradient scales by the same "
     "gain^(T - 1), so the shares do not depend on the gain."),
    ("cliff", cliff, "The cliff (Pascanu et al. 2013): the loss of a one-unit recurrent "
     "network over (w, b) has a wall where x(0) is the unstable fixed point between two "
     "basins (inside Doya's bistable band) and a valley at w < 4.76. Gradient descent that "
     "meets the wall takes a huge step onto a plateau where the gradient vanishes and almost "
     "always stays there; the same descent with its gradient norm clipped keeps its steps "
     "short, follows the wall and mostly reaches the valley (the check below gives the "
     "counts; near the wall the descents are chaotic, so the counts move by a few under "
     "rounding)."),
    ("training_by_length", training_by_length, "Plain RNN against LSTM and GRU trained on "
     "long-term dependencies. The adding problem: the LSTM and the GRU go far below the "
     "chance level at every length (T = 10 to 50 in make run's spec, 50 to 200 in the full "
     "study), the tanh RNN only at make run's shortest length (T = 10) and stays at the "
     "chance level beyond. The copy task (the full study, T = 10 to 100): no cell solves it "
     "in 5000 updates; the tanh RNN stays at the chance level, the LSTM and the GRU end at "
     "0.67 of it or above (medians 0.71 to 0.91), none near zero (Arjovsky et al. 2016 "
     "report the LSTM stuck "
     "near this baseline on long copy tasks). The check gives the numbers."),
    ("clipping", clipping, "Exploding gradients in training (Pascanu et al. 2013): a tanh RNN "
     "whose W_hh starts with spectral radius about 1.5 has gradient spikes; without "
     "clipping they throw the weights far enough to overflow, with the gradient clipped "
     "(its norm, or each element) every run stays finite."),
    ("generalisation", generalisation, "A recurrence generalises to any length: networks "
     "trained on 8 steps of the lecture's two examples, tested on up to 512. The tanh RNN "
     "adds binary numbers without an error at every length; parity it keeps almost exactly "
     "at 32 steps but loses slowly beyond, where the LSTM stays exact (the check gives the "
     "numbers)."),
    ("initialisation", initialisation, "How W_hh starts decides what a plain RNN learns "
     "(the adding problem; Le et al. 2015, Sutskever et al. 2013). At make run's T = 30: "
     "started at the identity or a random orthogonal matrix and trained with momentum, "
     "tanh and relu RNNs end 4 to 52 times below the chance level; started with small "
     "Gaussian weights (spectral radius about 0.1 sqrt(H), 0.57 for H = 32: the gradient "
     "through time shrinks like 0.57^t) the tanh RNN stays at the chance level and the "
     "relu RNN ends 3.6 to 13 times below it; without momentum no run ends at the solved "
     "level. In the full study (T = 50 and 100, 10^4 updates) the relu RNNs with momentum "
     "learn most, at T = 100 best from the identity and the orthogonal start (a median 0.58 "
     "and 0.84 of the chance level); every tanh RNN stays at the chance level at T = 100, "
     "and only 3 of the 120 runs end at the solved level (relu with momentum at T = 50). "
     "The check gives the numbers."),
    ("lyapunov_spectra", lyapunov_spectra, "Lyapunov spectra of random tanh networks h(t+1) "
     "= tanh(W h(t)), W ~ N(0, g^2 / n). Below g = 1 (dashed) every exponent is negative: "
     "the state decays to 0 and the largest exponent is ln of W's spectral radius (about ln "
     "g). Above, chaos: the largest exponent turns positive and follows mean-field theory's "
     "0.5 ln chi_1 (dotted; Molgedey et al. 1992) and the published N = 4096 spectra (open "
     "diamonds, Clark 2026), a little below both at small n, a finite "
     "fraction of the spectrum is positive, the attractor's Kaplan-Yorke dimension per unit "
     "peaks near g = 3 and falls again, and the entropy rate per unit keeps rising. Just "
     "above the onset, small networks can settle on a periodic or quasi-periodic orbit "
     "(largest exponent 0) instead of chaos. The check gives the numbers."),
    ("order_to_chaos", order_to_chaos, "The order-to-chaos transition over the weights' "
     "and the biases' spread (Poole et al. 2016; Schoenholz et al. 2017). Left: the "
     "simulated growth rate of the gradient, negative (blue: it vanishes) on the ordered "
     "side, positive (red: it explodes, chaos) on the other; the black line is mean-field "
     "theory's chi_1 = 1, which moves to larger sigma_w as sigma_b grows. Right: the depth "
     "scales over which gradients and correlations between inputs propagate diverge at "
     "the line. For deep nets, weights and biases are drawn afresh at every layer, as the "
     "theory assumes; for recurrent nets they are the same at every step, and the "
     "theory's line is drawn for comparison only. The check gives how far the simulated "
     "sign change lies from the line."),
    ("memory_capacity", memory_capacity, "Memory capacity (Jaeger 2001): how many past "
     "inputs the state holds, the sum over delays of the squared correlation between the "
     "input k steps back and its best linear readout from the state (fitted and scored on "
     "different quarters of the run), as far as a readout at float64 precision resolves "
     "it (a linear network's exact capacity is n below rho = 1; the dashed line is what "
     "the readout recovers of it, less at small rho, where the state holds old inputs "
     "only at tiny scales). With small inputs a tanh network stores nearly what the "
     "linear one does, more the closer the spectral radius is to 1, and peaks just below "
     "it: the edge of chaos; beyond, its own dynamics (fixed points, orbits or chaos) take "
     "over the state and the capacity drops, irregularly from one network to the next. "
     "Larger inputs saturate the units: less capacity at every spectral radius up to 1, and "
     "a flatter peak at a larger one. Right: the memory of a delay is nearly perfect up to "
     "about the total and then gone. The check gives the numbers."),
    ("fixed_points", fixed_points_figure, "Fixed points of trained networks (Sussillo & "
     "Barak 2013), without input: the states the trained step maps to themselves, found by "
     "Newton's method from states the network visits on test sequences, drawn on the "
     "principal components of those trajectories (grey) and classified by the eigenvalues "
     "of the step's Jacobian there: stable (all inside the unit circle), line attractor "
     "(one at +1: a direction along which the network holds its state), marginal (others "
     "on the circle), saddle or unstable; states outside the range of h (-1 to "
     "1), which a saturated gate can freeze but no trajectory reaches, are left out. The "
     "check gives the classes found and the slowest eigenvalue of each stable point."),
]  # fmt: skip
