"""What each figure claims, checked on the store it is drawn from.

A caption says what a figure shows in general; :data:`CHECKS` gives, per figure, a function
``(ds) -> sentence or None`` that measures the figure's claim on the store at hand (the
report prints it under the caption), so that a caption is never copied onto a store where
it does not hold without the numbers saying so.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .figures import _fmt, _median_seed, _solved_loss

__all__ = ["CHECKS", "check"]


def _linear_rates(ds) -> str | None:
    """Figure 1: the measured growth rate of the linear cases against ln|w|."""
    from .metrics import growth_rate_theory

    th = growth_rate_theory(ds)
    theory = th.theory.broadcast_like(th.measured).values
    measured = th.measured.values
    ok = th.is_exact.broadcast_like(th.measured).values & np.isfinite(measured)
    ok &= np.isfinite(theory)
    if not ok.any():
        return None
    err = np.abs(measured[ok] - theory[ok])
    total = int(th.is_exact.broadcast_like(th.measured).values.sum())
    blew = f" ({total - ok.sum()} others blew up)" if total > ok.sum() else ""
    return (
        f"On this store: the growth rate of the {ok.sum()} linear cases that stayed finite "
        f"equals ln|w| to {err.max():.1e} per step{blew}."
    )


def _second_eigenvalue(ds) -> str | None:
    """Figure 2: the response growth rate against ln|lambda_1| and ln|lambda_2|."""
    if "remove_dominant" not in ds.dims or "second_eigenvalue_modulus" not in ds:
        return None
    lin = ds.sel(activation="identity") if "activation" in ds.dims else ds
    parts = []
    for removed, rate, what in ((False, lin.spectral_radius, "ln rho"),
                                (True, lin.second_eigenvalue_modulus, "ln|lambda_2|")):  # fmt: skip
        one = lin.sel(remove_dominant=removed)
        r = rate.sel(remove_dominant=removed) if "remove_dominant" in rate.dims else rate
        err = np.abs(one.response_growth_rate - np.log(r)).values
        err = err[np.isfinite(err)]
        if err.size:
            parts.append(f"{what} to {err.max():.1e} ({err.size} cases)")
    if not parts:
        return None
    return (
        "On this store: the late response growth rate (second half of the run) equals "
        + "; without the dominant part, ".join(parts)
        + "."
    )


def _memory_classes(ds) -> str | None:
    """Figure 5: how many cases forget, keep, grow and blow up."""
    from rnnlab.engine._tracking import MEMORY_CLASSES

    codes = np.asarray(ds.memory_class.values)
    counts = [f"{int((codes == k).sum())} {name}" for k, name in MEMORY_CLASSES.items()]
    return f"On this store ({codes.size} cases): " + ", ".join(counts) + "."


def _mean_field(ds) -> str | None:
    """Figure 7: the per-layer growth rate against 0.5 ln chi_1."""
    from .meanfield import depth_growth_rate

    g = _median_seed(ds.growth_rate)
    acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else ["tanh"]
    bias = float(ds.attrs.get("model_bias", 0.0))
    err = []
    for act in acts:
        one = g.sel(activation=act) if "activation" in g.dims else g
        for gain in ds.gain.values:
            err.append(
                abs(float(one.sel(gain=gain)) - depth_growth_rate(act, float(gain), bias=bias))
            )
    err = np.array(err)
    return (
        f"On this store: the growth rate per layer is within {np.nanmax(err):.3f} (median "
        f"{np.nanmedian(err):.3f}) of mean field over {err.size} activation x gain cases."
    )


def _carousel(ds) -> str | None:
    """Figure 9: the carousel against all paths, at the last step."""
    last = ds.isel(time=-1)
    last = _median_seed(last)
    parts = []
    if "variant" in ds.dims and "NFG" in ds.variant.values:
        nfg = last.sel(variant="NFG")
        parts.append(
            f"without a forget gate the carousel's log10 gain is "
            f"{float(np.abs(nfg.log10_carousel_gain).max()):g} while the all-path norm "
            f"reaches 10^{float(nfg.log10_cell_gradient_norm.max()):.1f}"
        )
    grew = int((last.log10_cell_gradient_norm.values > 0).sum())
    parts.append(f"{grew} of {last.log10_cell_gradient_norm.size} settings end with an all-path "
                 "norm above 1")  # fmt: skip
    return f"On this store at t = {int(ds.time[-1])}: " + "; ".join(parts) + "."


def _phase_map(ds) -> str | None:
    """Figure 11: the simulated phases against the closed-form curves."""
    from .scalar_maps import phase_agreement

    parts = []
    for act in ("sigmoid", "tanh"):
        if "activation" in ds.dims and act not in ds.activation.values:
            continue
        a = phase_agreement(ds, act)
        parts.append(
            f"{act}: {a['differ']:,} of {a['cells']:,} cells differ from the closed form, "
            f"each within {a['distance']:.2f} cells of a curve"
        )
    return "On this store: " + "; ".join(parts) + "." if parts else None


def _bibo(ds) -> str | None:
    """Figure 12: bounded activations below sqrt(n); the others below and above rho = 1."""
    n = float(ds.attrs.get("model_n", 1))
    v = ds.max_state_norm
    parts = []
    for act in (str(a) for a in ds.activation.values):
        one = v.sel(activation=act)
        vals = np.asarray(one.values, dtype=float)
        blew = ~np.isfinite(vals) | (vals >= 1e6)
        if act in ("sigmoid", "tanh"):
            top = np.nanmax(vals)
            rel = "<=" if top <= np.sqrt(n) else "ABOVE"
            parts.append(f"{act} at most {top:.2f} {rel} sqrt(n) = {np.sqrt(n):.2f}")
        else:
            rho = one.spectral_radius.broadcast_like(one).values
            parts.append(
                f"{act} blew up (or passed 10^6) in {int(blew[rho > 1].sum())} of "
                f"{int((rho > 1).sum())} runs "
                f"with rho > 1 and {int(blew[rho < 1].sum())} of {int((rho < 1).sum())} with "
                "rho < 1"
            )
    return "On this store: " + "; ".join(parts) + "."


def _nonnormal(ds) -> str | None:
    """Figure 13: the transient growth of ||W^t|| with Gaussian W, none with symmetric W."""
    peak = ds.log10_gradient_norm.max("time")
    gauss = peak.sel(weights="gaussian")
    med = float(gauss.median("seed").max()) if "seed" in gauss.dims else float(gauss.max())
    worst = float(gauss.max())
    sym = float(peak.sel(weights="symmetric").max())
    rho = float(ds.spectral_radius.max())
    return (
        f"On this store: with rho <= {rho:g}, ||W^t|| of a Gaussian W rises to 10^{med:.2f} "
        f"(the median over seeds, as drawn; 10^{worst:.2f} in the worst seed) before it "
        f"decays; of a symmetric W at most 10^{sym:.2g} (its value at t = 0)."
    )


def _constant_error_flow(ds) -> str | None:
    """Figure 15: the carousel's gradient and response stay, sigmoid drifts at sqrt(n) / 2."""
    g = np.abs(ds.log10_gradient_norm.values)
    r = ds.response.values
    change = np.nanmax(np.abs(r / r[..., :1] - 1.0))
    parts = [f"|log10 ||dh(t)/dh(0)||| <= {np.nanmax(g):.0e} over {g.size:,} recorded values",
             f"the response to x(0) changes by at most {change:.0e} (relative)"]  # fmt: skip
    if "activation" in ds.dims and "sigmoid" in ds.activation.values:
        sig = ds.state_norm.sel(activation="sigmoid").isel(time=-1) / float(ds.time[-1])
        n = float(ds.attrs.get("model_n", 1))
        lo, hi = float(sig.min()), float(sig.max())
        parts.append(f"sigmoid's ||h(T)|| / T is {lo:.3f} to {hi:.3f} against sqrt(n) / 2 "
                     f"= {np.sqrt(n) / 2:.3f}")  # fmt: skip
    return "On this store: " + "; ".join(parts) + "."


def _stacked(ds) -> str | None:
    """Figure 16: the growth rate per step of each depth against one layer's."""
    g = _median_seed(ds.growth_rate)
    diff = g - g.sel(layers=g.layers.min())
    deeper = ", ".join(str(int(v)) for v in g.layers.values[1:])
    acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [""]
    rates = []
    for act in acts:
        d = diff.sel(activation=act) if act else diff
        rates.append(f"{act or 'all'} {float(d.min()):+.4f} to {float(d.max()):+.4f}")
    parts = [f"the late growth rate of {deeper} stacked layers minus one layer's (median over "
             f"seeds, per spectral radius): {'; '.join(rates)} per step"]  # fmt: skip
    if "memory_horizon" in ds and "spectral_radius" in ds.dims:
        rho = float(ds.spectral_radius.min())
        h = ds.memory_horizon.sel(spectral_radius=rho).astype(float)
        h = h.where(h >= 0)
        h = _median_seed(h)
        act = ""
        if "activation" in h.dims:
            act = f", {h.activation.values[0]}"
            h = h.isel(activation=0)
        hs = ", ".join(f"{v:g}" for v in h.values)
        layers = ", ".join(str(int(v)) for v in ds.layers.values)
        parts.append(f"but the memory of x(0) lasts longer: {hs} steps for {layers} layers at "
                     f"rho = {rho:g}{act}")  # fmt: skip
    return "On this store: " + "; ".join(parts) + "."


def _scalar_nonlinear(ds) -> str | None:
    """Figure 3: what sigmoid, tanh and relu do with x(0), at the end of the run."""
    end = ds.state.isel(time=-1)
    parts = []
    if "sigmoid" in ds.activation.values and "saturation_step" in ds:
        sat = ds.saturation_step.sel(activation="sigmoid").values
        parts.append(f"sigmoid settles within {int(sat.max())} steps in every case"
                     if (sat >= 0).all() else f"sigmoid settles in {(sat >= 0).sum()} of "
                     f"{sat.size} cases")  # fmt: skip
    if "tanh" in ds.activation.values and "amplitude" in ds.dims:
        th = end.sel(activation="tanh")
        pos = th.sel(amplitude=th.amplitude.max())
        neg = th.sel(amplitude=th.amplitude.min())
        diff = np.abs(pos - neg).where(np.abs(th.w) < 1)
        parts.append(f"tanh's end state depends on the input's sign by at most "
                     f"{float(diff.max()):.0e} for |w| < 1")  # fmt: skip
        if "bias" in th.dims and 0.0 in th.bias.values:
            flip = (pos * neg < 0).sel(bias=0.0).where(th.w >= 1, drop=True)
            parts.append(f"it keeps the sign for w >= 1, b = 0 in {int(flip.sum())} of "
                         f"{flip.size} cases")  # fmt: skip
    if "relu" in ds.activation.values and "bias" in ds.dims:
        r = end.sel(activation="relu")
        w = r.w.broadcast_like(r)
        b = r.bias.broadcast_like(r)
        settle = (w > 0) & (w < 1) & (b > 0)
        err = np.abs(r - b / (1 - w)).where(settle)
        parts.append(f"relu with 0 < w < 1, b > 0 ends at b / (1 - w) to "
                     f"{float(err.max()):.0e}")  # fmt: skip
    return "On this store: " + "; ".join(parts) + "." if parts else None


def _forgets(ds) -> str | None:
    """Figure 4: per activation, how long x(0) is kept across spectral radii."""
    parts = []
    for act in (str(a) for a in ds.activation.values):
        one = ds.sel(activation=act)
        if "remove_dominant" in one.dims:
            one = one.sel(remove_dominant=False)
        h = one.memory_horizon.values
        rho = one.spectral_radius.broadcast_like(one.memory_horizon).values
        kept = h < 0
        if kept.any():
            what = (
                f"never forgets x(0) in {kept.sum()} of {h.size} runs (rho >= {rho[kept].min():g})"
            )
        else:
            what = f"forgets x(0) in every run, within {h.max()} steps"
        parts.append(f"{act} {what}")
    return "On this store: " + "; ".join(parts) + "."


def _bound(ds) -> str | None:
    """Figure 6: growth rates at or below ln(gamma sigma_max); below 1 they vanish."""
    from .metrics import growth_rate_theory

    th = growth_rate_theory(ds)
    m = th.measured.values
    bound = th.theory.broadcast_like(th.measured).values
    ok = np.isfinite(m) & np.isfinite(bound)
    if not ok.any():
        return None
    below = (m[ok] <= bound[ok] + 1e-9).sum()
    small = ok & (bound < 0)
    vanish = (m[small] < 0).sum()
    return (
        f"On this store: the growth rate is at or below ln(gamma sigma_max) in {below} of "
        f"{ok.sum()} cases; {vanish} of the {small.sum()} cases with gamma sigma_max < 1 "
        "vanish."
    )


def _classes(ds) -> str | None:
    """Figure 10: the classes the store's cases fall in."""
    from .metrics import CLASSES, classify

    codes = classify(ds).values
    counts = [f"{int((codes == k).sum())} {name}" for k, name in CLASSES.items()
              if (codes == k).any()]  # fmt: skip
    return f"On this store ({codes.size} cases): " + ", ".join(counts) + "."


def _reach(datasets) -> str | None:
    """Figure 8: how far back the error reaches: step 0's contribution against the loss
    step's, per store and setting (median over seeds)."""
    parts = []
    for d in (d for d in datasets if "log10_input_weight_grad" in d):
        v = d.log10_input_weight_grad.dropna("time", how="all")
        v = _median_seed(v)
        fam = str(d.attrs.get("family", "?")).upper()
        others = [g for g in v.dims if g != "time"]
        stacked = v.stack(setting=others) if others else v.expand_dims(setting=[0])
        for k in range(min(stacked.sizes["setting"], 8)):
            one = stacked.isel(setting=k)
            what = ", ".join(f"{g.replace('_', ' ')} {_fmt(one[g].values.item())}" for g in others)
            ratio = float(one.isel(time=0) - one.isel(time=-1))
            parts.append(f"{fam}{' (' + what + ')' if what else ''} 10^{ratio:.1f}")
    if not parts:
        return None
    return ("On these stores, step 0's contribution relative to the loss step's (median over "
            "seeds): " + "; ".join(parts) + ".")  # fmt: skip


def _in_use(datasets) -> str | None:
    """Figure 14: per activation, at how many spectral radii the noise shortens the memory."""
    from .figures import _in_use_pair

    pair = _in_use_pair(datasets)
    if pair is None:
        return None
    horizons = []
    for d in pair:
        if "remove_dominant" in d.dims:
            d = d.sel(remove_dominant=False)
        h = d.memory_horizon.astype(float)
        h = h.where(h >= 0, np.inf)
        horizons.append(_median_seed(h))
    alone, noisy = xr.align(*horizons, join="inner")
    parts = []
    for act in (str(a) for a in alone.activation.values):
        a, b = alone.sel(activation=act).values, noisy.sel(activation=act).values
        parts.append(f"{act} shorter at {(b < a).sum()}, equal at {(b == a).sum()}, longer at "
                     f"{(b > a).sum()} of {a.size} radii")  # fmt: skip
    return (
        "On these stores, the memory horizon with noise against x(0) alone: "
        + "; ".join(parts)
        + "."
    )


def _layer_shares(ds, first=10) -> str | None:
    """Figure 17: the share of the first and last layers at each activation's smallest and
    largest gain, and how far the shares move with the gain."""
    from .figures import layer_shares

    share = layer_shares(ds)
    acts = [str(a) for a in ds.activation.values] if "activation" in ds.dims else [None]
    parts = []
    for act in acts:
        one = share.sel(activation=act) if act else share
        head = one.isel(time=slice(0, first)).sum("time")
        tail = one.isel(time=slice(-first, None)).sum("time")
        head = _median_seed(head)
        tail = _median_seed(tail)
        lo, hi = one.gain.values[0], one.gain.values[-1]
        spread = float(np.abs(one - one.sel(gain=lo)).max())
        parts.append(
            f"{act}: first {first} layers {float(head.sel(gain=lo)):.1%} at gain {lo:g}, "
            f"{float(head.sel(gain=hi)):.1%} at {hi:g} (last {first}: "
            f"{float(tail.sel(gain=lo)):.1%}, {float(tail.sel(gain=hi)):.1%}; shares move "
            f"by at most {spread:.1e} across gains)"
        )
    return "On this store (median over seeds): " + "; ".join(parts) + "."


def _cliff(datasets) -> str | None:
    """Figure 18: what clipping does to the descents the wall throws."""
    from .figures import THROWN, _cliff_stores, _first_of_others, cliff_outcomes

    _, desc = _cliff_stores(datasets)
    out = cliff_outcomes(desc).values
    ms = _first_of_others(desc.max_step.isel(clip=0)).transpose("w", "bias").values
    thrown = ~(ms <= THROWN)
    clipped = (out >= 2)[thrown]
    unclipped = (out % 2 == 1)[thrown]
    clip = float(desc["clip"].values[-1])
    return (
        f"On these stores: {int(thrown.sum())} of {out.size} unclipped descents took a step "
        f"longer than {THROWN:g} (the longest {np.nanmax(ms):.0f}); of those starts, "
        f"{clipped.mean():.0%} converged (final loss < 1e-4) with the norm clipped at "
        f"{clip:g} and {unclipped.mean():.0%} without. Over all starts: "
        f"{int((out == 2).sum())} converged only with clipping, {int((out == 1).sum())} only "
        f"without, {int((out == 3).sum())} both, {int((out == 0).sum())} neither."
    )


def _training(ds) -> str | None:
    """Figure 19: the final loss against the chance level and the accuracy, per cell and
    length (median over seeds)."""
    rel = ds.final_loss / ds.baseline
    rel = _median_seed(rel)
    acc = _median_seed(ds.final_accuracy)
    parts = []
    for cell in (str(c) for c in ds.cell.values):
        r, a = rel.sel(cell=cell), acc.sel(cell=cell)
        each = ", ".join(f"T = {int(n)}: {float(r.sel(length=n)):.2g} "
                         f"({float(a.sel(length=n)):.0%})" for n in ds.length.values)  # fmt: skip
        parts.append(f"{cell} {each}")
    return (
        "On this store, the final loss on fresh sequences over the chance level (and the "
        "share of sequences answered right), median over seeds: " + "; ".join(parts) + "."
    )


def _clipping(ds) -> str | None:
    """Figure 20: divergence and the largest gradient with and without clipping."""
    parts = []
    for c in (str(v) for v in ds["clip"].values):
        one = ds.sel(clip=c)
        div = one.diverged.values
        top = float(one.train_grad_norm.max())
        final = one.final_loss.values[~div]
        fin = f", final loss {final.min():.3g} to {final.max():.3g}" if final.size else ""
        parts.append(f"clip {c}: {int(div.sum())} of {div.size} runs diverged, the largest "
                     f"gradient norm {top:.3g}{fin}")  # fmt: skip
    base = float(ds.baseline.max())
    return "On this store: " + "; ".join(parts) + f" (chance level {base:.3g})."


def _generalisation(ds) -> str | None:
    """Figure 21: the accuracy at the longest test length, per task and cell."""
    acc = ds.test_accuracy.load()
    top = acc.sel(test_length=acc.test_length.max())
    parts = []
    for task in (str(t) for t in ds.task.values) if "task" in ds.dims else [None]:
        one = top.sel(task=task) if task else top
        for cell in (str(c) for c in one.cell.values):
            v = one.sel(cell=cell)
            parts.append(f"{task} {cell}: median {float(v.median()):.1%}, worst "
                         f"{float(v.min()):.1%}")  # fmt: skip
    n = int(acc.test_length.max())
    trained = ds.attrs.get("model_length", "?")
    return (f"On this store, trained on {trained} steps, the share of correct outputs at "
            f"{n} steps (over seeds): " + "; ".join(parts) + ".")  # fmt: skip


def _initialisation(ds) -> str | None:
    """Figure 22: per length, activation, initialisation and optimiser, the final loss over
    the chance level (median and range over seeds) and how many runs end with it below the
    solved level (the figure's dashed line)."""
    rel = (ds.final_loss / ds.baseline).load()
    won = (ds.final_loss < _solved_loss(ds)).load()
    parts = []
    for pick in _settings(ds, ("length", "activation", "init", "optimizer")):
        r, ok = rel.sel(pick).values.ravel(), won.sel(pick).values.ravel()
        ran = np.isfinite(r)
        if not ran.any():
            continue
        r = r[ran]
        name = " ".join(f"T = {v}" if k == "length" else str(v) for k, v in pick.items())
        parts.append(f"{name}: {np.median(r):.2g} ({r.min():.2g}-{r.max():.2g}), "
                     f"{int(ok[ran].sum())}/{ran.sum()} solved")  # fmt: skip
    return ("On this store, the final loss on fresh sequences over the chance level, "
            "median (range) over seeds, and the runs whose final loss is below the task's "
            "solved level: " + "; ".join(parts) + ".")  # fmt: skip


def _settings(ds, dims):
    """Every combination of the values of those of ``dims`` that the store has, as
    selection dicts, in coordinate order."""
    import itertools

    present = [d for d in dims if d in ds.dims]
    values = [ds[d].values.tolist() for d in present]
    return [dict(zip(present, combo, strict=True)) for combo in itertools.product(*values)]


#: figure name -> the check of its claim on a store.
def _lyapunov(ds) -> str | None:
    """Figure 23: below the onset, the largest exponent against ln rho(W) (if stored); above
    it, against mean-field theory and the published spectra; the orbits near the onset;
    where the dimension peaks and whether the entropy rises."""
    from .figures import _spectrum_store
    from .meanfield import depth_growth_rate
    from .published import TANH_SPECTRA

    gains = _spectrum_store(ds)
    n = int(ds.attrs["model_n"])
    lam1 = ds.lyapunov_exponents.isel(exponent=0).load()
    parts = []
    low = gains[gains < 1]
    if low.size:
        part = f"below g = 1 the largest exponent is at most {float(lam1.sel(gain=low).max()):.3f}"
        if "spectral_radius" in ds:
            err = np.abs(lam1 - np.log(ds.spectral_radius)).sel(gain=low)
            part += f", ln rho(W) to {float(err.max()):.1e}"
        parts.append(part)
    chaos = gains[gains >= 2]
    if chaos.size:
        med = _median_seed(lam1).sel(gain=chaos)
        mf = np.array([depth_growth_rate("tanh", g) for g in chaos])
        parts.append(f"at g >= 2 its median is within {np.max(np.abs(med / mf - 1)):.1%} of "
                     "mean-field theory")  # fmt: skip
    common = [g for g in gains if g in TANH_SPECTRA and g >= 2]
    if common:
        got = [_median_seed(v).sel(gain=common).values for v in
               (lam1, ds.kaplan_yorke_dimension / n, ds.entropy_rate / n)]  # fmt: skip
        want = np.array([TANH_SPECTRA[g] for g in common]).T
        devs = [np.max(np.abs(gv / w - 1)) for gv, w in zip(got, want, strict=True)]
        parts.append("of the published values within {:.1%} (largest exponent), {:.1%} "
                     "(dimension) and {:.1%} (entropy)".format(*devs))  # fmt: skip
    near = gains[(gains > 1) & (gains < 2)]
    if near.size:
        vals = lam1.sel(gain=near).values.ravel()
        parts.append(f"just above the onset (g = {_fmt(near.min())} to {_fmt(near.max())}) "
                     f"{int(np.sum(np.abs(vals) < 5e-3))} of {vals.size} networks have a "
                     "largest exponent within 0.005 of 0")  # fmt: skip
    if gains.size < 2:
        return "On this store: " + "; ".join(parts) + "." if parts else None
    dim = _median_seed(ds.kaplan_yorke_dimension / n).load().sortby("gain")
    ent = _median_seed(ds.entropy_rate / n).load().sortby("gain")
    parts.append(f"the dimension per unit peaks at g = {_fmt(float(dim.idxmax('gain')))} "
                 f"({float(dim.max()):.3f}); the entropy rate per unit "
                 + ("rises with g at every step of the grid" if np.all(np.diff(ent.values) >= 0)
                    else "does not rise at every step of the grid"))  # fmt: skip
    return "On this store: " + "; ".join(parts) + "."


def _crossing(x: np.ndarray, y: np.ndarray) -> float:
    """The first x where y rises through 0 (metrics.crossings over its finite values), or
    NaN."""
    from .metrics import crossings

    ok = np.isfinite(y)
    up = crossings(x[ok], y[ok], rising=True)
    return up[0] if up else float("nan")


def _order_to_chaos(ds) -> str | None:
    """Figure 24: per sigma_b, how far the simulated sign change of the growth rate lies
    from mean-field theory's chi_1 = 1 (both interpolated along the gain)."""
    rate = _median_seed(ds.growth_rate).transpose("bias_std", "gain").load()
    chi = _median_seed(ds.chi_1).transpose("bias_std", "gain").load()
    gains = ds.gain.values.astype(float)
    dist = []
    for j in range(ds.sizes["bias_std"]):
        dist.append(_crossing(gains, rate.values[j]) - _crossing(gains, np.log(chi.values[j])))
    dist = np.array(dist)
    ok = np.isfinite(dist)
    if not ok.any():
        return None
    step = float(np.median(np.diff(gains)))
    worst = int(np.argmax(np.abs(np.where(ok, dist, 0))))
    return (
        f"On this store: over {ok.sum()} values of sigma_b the simulated growth rate changes "
        f"sign within {np.max(np.abs(dist[ok])):.2f} of the mean-field line in sigma_w "
        f"(median {np.median(np.abs(dist[ok])):.2f}; the grid's step is {step:.3g}), the "
        f"largest gap at sigma_b = {_fmt(float(ds.bias_std.values[worst]))} "
        f"({'beyond' if dist[worst] > 0 else 'before'} the line)."
    )


def _capacity(ds) -> str | None:
    """Figure 25: per amplitude, where the tanh capacity peaks and how high, against the
    linear network's; whether larger inputs lower it at every spectral radius up to 1."""
    from .figures import _capacity_store, _has_activation, _sel_activation

    tanh = _median_seed(_capacity_store(ds).memory_capacity).load()
    parts = []
    for a in ds.amplitude.values:
        row = tanh.sel(amplitude=a)
        peak = row.idxmax("spectral_radius")
        parts.append(f"a = {_fmt(a)}: {float(row.max()):.1f} at rho = {_fmt(float(peak))}")
    text = "On this store: the tanh capacity peaks at " + "; ".join(parts)
    if _has_activation(ds, "identity"):
        lin = _median_seed(_sel_activation(ds, "identity").memory_capacity).load()
        lin = lin.isel(amplitude=0) if "amplitude" in lin.dims else lin
        text += f" (linear: {float(lin.max()):.1f} at most, of n = {ds.attrs.get('model_n')})"
    if ds.sizes["amplitude"] < 2:
        return text + "."
    low = tanh.sel(spectral_radius=tanh.spectral_radius <= 1 + 1e-9).sortby("amplitude")
    falls = bool(np.all(np.diff(low.transpose("spectral_radius", ...).values, axis=1) <= 0))
    text += "; up to rho = 1 a larger input " + ("lowers it at every spectral radius." if falls
                                                 else "does not lower it everywhere.")  # fmt: skip
    return text


def _fixed_points(ds) -> str | None:
    """Figure 26: per cell (first seed), the classes of the fixed points found and the
    largest |lambda| of each stable one."""
    from .figures import trained_fixed_points

    cells = [str(c) for c in ds.cell.values] if "cell" in ds.dims else [ds.attrs["model_cell"]]
    parts = []
    for cell in cells:
        one = ds.sel(cell=cell) if "cell" in ds.dims else ds
        _, _, fp = trained_fixed_points(one.isel(seed=0) if "seed" in one.dims else one)
        kinds = ", ".join(f"{int((fp.kind == k).sum())} {k}" for k in dict.fromkeys(fp.kind))
        slow = [f"{np.abs(e[0]):.3f}" for e, k in zip(fp.eigenvalues, fp.kind, strict=True)
                if k == "stable"]  # fmt: skip
        parts.append(f"{cell}: {kinds or 'none'} (slowest |lambda| of the stable: "
                     f"{', '.join(slow) or '-'}; {fp.outside} starts ended outside the range "
                     "of h)")  # fmt: skip
    return "On this store (first seed): " + "; ".join(parts) + "."


CHECKS = {
    "scalar_linear": _linear_rates,
    "vector_linear": _second_eigenvalue,
    "scalar_nonlinear": _scalar_nonlinear,
    "vector_nonlinear": _forgets,
    "memory_phase": _memory_classes,
    "gradient_vs_lag": _bound,
    "phase_diagram": _classes,
    "gradient_by_depth": _mean_field,
    "lstm_memory": _carousel,
    "scalar_phase_map": _phase_map,
    "bibo": _bibo,
    "nonnormal": _nonnormal,
    "input_weight_gradients": _reach,
    "memory_in_use": _in_use,
    "constant_error_flow": _constant_error_flow,
    "stacked_layers": _stacked,
    "weight_gradient_by_layer": _layer_shares,
    "cliff": _cliff,
    "training_by_length": _training,
    "clipping": _clipping,
    "generalisation": _generalisation,
    "initialisation": _initialisation,
    "lyapunov_spectra": _lyapunov,
    "order_to_chaos": _order_to_chaos,
    "memory_capacity": _capacity,
    "fixed_points": _fixed_points,
}


def check(name: str, ds) -> str | None:
    """The sentence that checks figure ``name``'s claim on ``ds`` (a Dataset, or the list of
    them for a figure drawn across stores; None if there is none, or the store lacks what it
    needs). Missing cases (NaN) are left out."""
    func = CHECKS.get(name)
    if func is None:
        return None
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            return func(ds)
    except (ValueError, KeyError, AttributeError):
        return None
