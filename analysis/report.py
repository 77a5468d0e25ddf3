"""The report: every applicable figure of a set of stores, as PNG and SVG, and an index.html
with captions, key numbers, and each store's spec and provenance."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab.jobs.paths import PathError, check_target, replacing

from .checks import check
from .figures import ACROSS_STORES, FIGURES, MissingData, _median_seed, incomplete_note
from .metrics import CLASSES, classify, growth_rate_theory
from .results import ANYWAY, IncompleteStoreError, NotAStoreError, open_results

__all__ = ["Report", "ReportError", "write_report"]

_MARKER = "<!-- rnnlab report -->"
_PROVENANCE = (
    "family", "spec_sha256", "rnnlab_version", "git_commit", "numpy_version", "numba_version",
    "xarray_version", "zarr_version", "dask_version", "python_version", "host", "start_time",
    "end_time",
)  # fmt: skip


class ReportError(ValueError):
    """Bad input to the report (a path that is not a store, an output folder in the way)."""


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    out: Path
    figures: list[dict] = field(default_factory=list)  # name, store, files, caption
    skipped: list[dict] = field(default_factory=list)  # name, store, reason
    numbers: dict[str, list[str]] = field(default_factory=dict)  # store -> lines


def _key_numbers(name: str, ds) -> list[str]:
    lines = [note] if (note := incomplete_note(ds)) else []
    trailing = ("time", "block", "unit", "parameter", "exponent", "delay")
    dims = [d for d in ds.dims if d not in trailing]
    lines.append(
        f"{ds.attrs.get('family', '?')} family, {int(np.prod([ds.sizes[d] for d in dims]))} "
        f"cases over {', '.join(f'{d} ({ds.sizes[d]})' for d in dims) or 'no grid'}, "
        f"{ds.attrs.get('run_steps', '?')} steps"
    )
    try:
        th = growth_rate_theory(ds).load()
    except ValueError:
        th = None
    if th is not None:
        exact = th.is_exact.broadcast_like(th.measured).values
        m = th.measured.values
        t = th.theory.broadcast_like(th.measured).values
        ok = exact & np.isfinite(m) & np.isfinite(t)
        if ok.any():
            err = np.abs(m[ok] - t[ok])
            lines.append(
                f"linear cases: measured growth rate vs ln|lambda_max|: median |difference| "
                f"{np.median(err):.2e}, max {err.max():.2e} per step over {ok.sum()} cases"
            )
        nl = ~exact & np.isfinite(m) & np.isfinite(t)
        if nl.any():
            below = (m[nl] <= t[nl] + 1e-9).sum()
            lines.append(
                f"nonlinear cases: growth rate <= ln(gamma sigma_max) in {below} of {nl.sum()}"
            )
    try:
        codes = classify(ds).values
        counts = {CLASSES[k]: int((codes == k).sum()) for k in CLASSES if (codes == k).any()}
        lines.append("classes: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    except ValueError:
        pass
    if "log10_input_weight_grad" in ds:
        v = ds.log10_input_weight_grad.dropna("time", how="all")
        groups = [d for d in v.dims if d not in ("time", "seed")]
        med = _median_seed(v)
        combos = [{}]
        for g in groups:
            combos = [{**c, g: x} for c in combos for x in v[g].values]
        for combo in combos[:8]:
            one = med.sel(combo)
            first, last = float(one.isel(time=0)), float(one.isel(time=-1))
            what = "".join(f", {g} {x}" for g, x in combo.items())
            lines.append(
                f"input-weight gradient{what}: median log10 at step 0 is {first:.2f}, at the "
                f"loss step {int(v.time[-1])} {last:.2f} (step 0's is 10^{first - last:.1f} "
                "times the loss step's)"
            )
    return lines


def _is_report(path: Path) -> bool:
    index = path / "index.html"
    return index.is_file() and _MARKER in index.read_text(errors="replace")


def check_out(out) -> Path:
    """The report folder ``out``, after refusing one that rnnlab may not replace.

    Raises
    ------
    ReportError
        For the working directory, the home folder and the like, a file, or an existing
        non-empty folder that is not an rnnlab report.
    """
    try:
        out = check_target(out, "--out")
    except PathError as err:
        raise ReportError(str(err)) from None
    if out.exists() and any(out.iterdir()) and not _is_report(out):
        raise ReportError(
            f"--out: {out} exists and is not an rnnlab report: rnnlab removes only what it "
            "wrote; choose a new or empty folder"
        )
    return out


def store_labels(stores) -> dict[str, Path]:
    """A distinct label per store: its folder name, with as many parent folders as it takes
    to tell stores of the same name apart (``a/s.zarr``, ``b/s.zarr``); a store given twice
    counts once."""
    paths = list(dict.fromkeys(Path(p).resolve() for p in stores))
    given = {Path(p).resolve(): Path(p) for p in stores}
    depth = dict.fromkeys(paths, 1)
    while True:
        labels = {q: "/".join(q.parts[-depth[q] :]) for q in paths}
        clash = [q for q in paths if list(labels.values()).count(labels[q]) > 1]
        if not clash:
            return {labels[q]: given[q] for q in paths}
        for q in clash:
            depth[q] += 1


def _file_part(label: str) -> str:
    """The part of a figure's file name that names its store (``a/s.zarr`` -> ``a_s``)."""
    return label.removesuffix(".zarr").replace("/", "_")


_ALLOW = "with --allow-incomplete (allow_incomplete=True)"

#: Stores up to this size are read into memory once for the report; larger ones stay lazy.
LOAD_BYTES = 512 * 2**20


def write_report(
    stores, out, *, formats=("png", "svg"), dpi: int = 110, allow_incomplete: bool = False
) -> Report:
    """Write every applicable figure of ``stores`` into ``out`` with an ``index.html``.

    Parameters
    ----------
    stores : sequence of path
        rnnlab stores, complete and intact: every chunk's checksum is verified first, and
        an incomplete or damaged store is refused with the blocks it misses. A store of at
        most ``LOAD_BYTES`` (512 MiB) is read into memory once; a larger one is read lazily,
        figure by figure.
    out : path
        The report folder. Written whole into a temporary folder beside it and moved into
        place at the end, so a failed report leaves nothing half-written; an existing report
        there is replaced, any other existing non-empty folder is refused.
    formats : tuple of str
        Image formats of every figure (PNG for the page, SVG for papers).
    dpi : int
        Resolution of the PNGs.
    allow_incomplete : bool
        Draw stores with missing or damaged blocks too: their cases are left out (NaN), and
        every figure of such a store and the page say so.

    Returns
    -------
    Report
        The figures written (with their files and captions), the figures skipped with the
        reason, and the key numbers per store.

    Raises
    ------
    ReportError
        For a path that is not a complete rnnlab store, or an output folder in the way.
    """
    if not stores:
        raise ReportError("STORE: give at least one store")
    opened = {}
    for name, path in store_labels(stores).items():
        try:
            ds = open_results(path, allow_incomplete=allow_incomplete, verify=True)
        except (NotAStoreError, IncompleteStoreError) as err:
            raise ReportError(str(err).replace(f"with {ANYWAY}", _ALLOW)) from None
        # the figures read many small pieces: a store that fits easily is read once, whole
        opened[name] = (path, ds.load() if ds.nbytes <= LOAD_BYTES else ds)
    out = check_out(out)
    report = Report(out=out)
    try:
        with replacing(out, _is_report, "--out", "an rnnlab report") as tmp:
            _draw(opened, tmp, report, formats, dpi)
            for name, (_, ds) in opened.items():
                checked = [f["checked"] for f in report.figures if f["store"] == name]
                report.numbers[name] = _key_numbers(name, ds) + [c for c in checked if c]
            (tmp / "index.html").write_text(_html(report, opened))
    except PathError as err:
        raise ReportError(str(err)) from None
    return report


def _draw(opened: dict, tmp: Path, report: Report, formats, dpi: int) -> None:
    """Every applicable figure of the opened stores into ``tmp``, listed in ``report``."""
    import matplotlib.pyplot as plt  # headless, matplotlib picks the Agg backend itself

    for number, (fname, func, caption) in enumerate(FIGURES, 1):
        if fname in ACROSS_STORES:
            targets = [("all stores", [ds for _, ds in opened.values()])]
        else:
            targets = [(name, ds) for name, (_, ds) in opened.items()]
        drawn = 0
        for store_name, ds in targets:
            try:
                fig = func(ds)
            except MissingData as err:
                report.skipped.append({"name": fname, "store": store_name, "reason": str(err)})
                continue
            stem = fname if store_name == "all stores" else f"{fname}__{_file_part(store_name)}"
            files = []
            for fmt in formats:
                fig.savefig(tmp / f"{stem}.{fmt}", dpi=dpi)
                files.append(f"{stem}.{fmt}")
            plt.close(fig)
            claim = check(fname, ds)
            report.figures.append(
                {"name": fname, "store": store_name, "files": files, "caption": caption,
                 "number": number, "part": drawn, "checked": claim}
            )  # fmt: skip
            drawn += 1
    _letter_parts(report.figures)


def _letter_parts(figures: list[dict]) -> None:
    """Figure numbers as in docs/analysis.md (the order of FIGURES); a figure drawn for
    several stores is 5a, 5b, ..."""
    many = {f["number"] for f in figures if f["part"] > 0}
    for f in figures:
        part = "abcdefghijklmnopqrstuvwxyz"[f["part"] % 26] if f["number"] in many else ""
        f["label"] = f"{f['number']}{part}"


def _where(label: str, opened: dict) -> str:
    """The path of the store a figure shows, as given (or "all stores")."""
    return str(opened[label][0]) if label in opened else label


def _html(report: Report, opened: dict) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        _MARKER,
        '<html lang="en"><head><meta charset="utf-8"><title>rnnlab report</title>',
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}"
        "figcaption{color:#333}pre{background:#f6f6f6;padding:.8em;overflow-x:auto}"
        "td,th{padding:.2em .8em;text-align:left;vertical-align:top}</style></head><body>",
        "<h1>rnnlab report</h1>",
        f"<p>{len(report.figures)} figures from {len(opened)} stores: "
        + ", ".join(f"<code>{e(str(p))}</code>" for p, _ in opened.values())
        + ". Each figure links its SVG (for papers).</p>",
        "<h2>Key numbers</h2><ul>",
    ]
    for name, lines in report.numbers.items():
        parts.append(f"<li><b>{e(name)}</b><ul>")
        parts += [f"<li>{e(line)}</li>" for line in lines]
        parts.append("</ul></li>")
    parts.append("</ul><h2>Figures</h2>")
    for f in report.figures:
        png = next((x for x in f["files"] if x.endswith(".png")), f["files"][0])
        links = " ".join(
            f'<a href="{e(x)}">{e(x.rsplit(".", 1)[1].upper())}</a>' for x in f["files"]
        )
        parts.append(
            f'<figure id="{e(png)}"><img src="{e(png)}" alt="{e(f["name"])}">'
            f"<figcaption><b>Figure {e(f['label'])}.</b> {e(f['caption'])} "
            + (f"<br><b>{e(f['checked'])}</b> " if f["checked"] else "")
            + f"<i>Store: {e(_where(f['store'], opened))}.</i> {links}</figcaption></figure>"
        )
    if report.skipped:
        parts.append("<h2>Skipped</h2><ul>")
        parts += [
            f"<li>{e(s['name'])} for {e(s['store'])}: {e(s['reason'])}</li>" for s in report.skipped
        ]
        parts.append("</ul>")
    parts.append("<h2>Stores: spec and provenance</h2>")
    for name, (path, ds) in opened.items():
        rows = "".join(
            f"<tr><th>{e(k)}</th><td>{e(str(ds.attrs[k]))}</td></tr>"
            for k in _PROVENANCE
            if k in ds.attrs
        )
        parts.append(
            f"<h3>{e(name)}</h3><p><code>{e(str(path.absolute()))}</code></p>"
            f"<pre>{e(str(ds.attrs.get('spec', '')))}</pre><table>{rows}</table>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
