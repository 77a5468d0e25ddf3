"""What each figure claims, checked on the store it is drawn from.

A caption says what a figure shows in general; :data:`CHECKS` gives, per figure, a function
``(ds) -> sentence or None`` that measures the figure's claim on the store at hand (the
report prints it under the caption), so that a caption is never copied onto a store where
it does not hold without the numbers saying so.
"""

from __future__ import annotations

import numpy as np

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

    g = ds.growth_rate.median("seed") if "seed" in ds.growth_rate.dims else ds.growth_rate
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
    last = last.median("seed") if "seed" in last.dims else last
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
            parts.append(f"{act} at most {np.nanmax(vals):.2f} <= sqrt(n) = {np.sqrt(n):.2f}")
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


#: figure name -> the check of its claim on a store.
CHECKS = {
    "scalar_linear": _linear_rates,
    "vector_linear": _second_eigenvalue,
    "memory_phase": _memory_classes,
    "gradient_by_depth": _mean_field,
    "lstm_memory": _carousel,
    "scalar_phase_map": _phase_map,
    "bibo": _bibo,
    "nonnormal": _nonnormal,
}


def check(name: str, ds) -> str | None:
    """The sentence that checks figure ``name``'s claim on ``ds`` (None if there is none,
    or the store lacks what it needs). Missing cases (NaN) are left out."""
    func = CHECKS.get(name)
    if func is None:
        return None
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            return func(ds)
    except (ValueError, KeyError, AttributeError):
        return None
