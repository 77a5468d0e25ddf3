"""``ds.rnnlab``: what users do with a store every day, as methods of its Dataset.

Registered when :mod:`rnnlab.analysis` is imported::

    >>> from rnnlab.analysis import open_results  # doctest: +SKIP
    >>> ds = open_results("results/lecture_scalar.zarr")  # doctest: +SKIP
    >>> ds.rnnlab.classify()  # doctest: +SKIP
    >>> ds.rnnlab.plot.scalar_linear(tmax=60)  # doctest: +SKIP
    >>> ds.rnnlab.spec["grid"]["w"]  # doctest: +SKIP
    >>> ds.rnnlab.provenance["git_commit"]  # doctest: +SKIP

Every method calls the functional API (:func:`rnnlab.analysis.classify`, the functions of
:mod:`rnnlab.analysis.figures`, ...), which stays; the accessor only saves passing ``ds``.
It works on a selection too (``ds.sel(activation="tanh").rnnlab.classify()``): xarray keeps
the attributes the spec and the provenance are read from.
"""

from __future__ import annotations

import tomllib
from typing import Any

import xarray as xr

from . import figures as _figures
from .metrics import classify

__all__ = ["PROVENANCE", "RnnlabAccessor"]

#: The provenance attributes a sweep store has (written by ``rnnlab.jobs.schema.provenance``,
#: plus the spec's hash); ``git_commit`` only when the code ran from a git checkout.
PROVENANCE = (
    "spec_sha256",
    "rnnlab_version",
    "numpy_version",
    "numba_version",
    "xarray_version",
    "zarr_version",
    "dask_version",
    "python_version",
    "host",
    "start_time",
    "end_time",
    "git_commit",
)


def _spec_data(text: str) -> dict:
    """A stored spec's text (TOML, or YAML/JSON) as a dict, read without validating it."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("the store's spec attribute is neither TOML nor a YAML/JSON mapping")
    return data


class _Plots:
    """``ds.rnnlab.plot.<figure>(**options)``: every figure of :mod:`rnnlab.analysis.figures`
    drawn from this Dataset (``tab`` completes the names)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def __dir__(self):
        return sorted(name for name, _, _ in _figures.FIGURES)

    def __getattr__(self, name: str):
        funcs = {n: f for n, f, _ in _figures.FIGURES}
        if name not in funcs:
            valid = ", ".join(sorted(funcs))
            raise AttributeError(f"no figure {name!r}: ds.rnnlab.plot has {valid}")
        func = funcs[name]
        stores = name in _figures.ACROSS_STORES  # drawn from a list of stores: this one

        def draw(ax=None, **options):
            return func([self._ds] if stores else self._ds, ax=ax, **options)

        draw.__name__, draw.__doc__ = name, func.__doc__
        return draw


@xr.register_dataset_accessor("rnnlab")
class RnnlabAccessor:
    """The ``ds.rnnlab`` namespace of a Dataset opened with
    :func:`rnnlab.analysis.open_results`, or made by ``rnnlab.jobs.to_dataset`` (registered when
    :mod:`rnnlab.analysis` is imported)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def classify(self, tol: float = 1e-3, fixed_point_tol: float = 1e-8) -> xr.DataArray:
        """:func:`rnnlab.analysis.classify` of this Dataset: a class per case."""
        return classify(self._ds, tol=tol, fixed_point_tol=fixed_point_tol)

    @property
    def plot(self) -> _Plots:
        """The figures, drawn from this Dataset: ``ds.rnnlab.plot.memory_phase()``."""
        return _Plots(self._ds)

    @property
    def spec(self) -> dict[str, Any]:
        """The sweep spec the store was made from, parsed into a dict (the ``spec``
        attribute as written, not validated again).

        Raises
        ------
        KeyError
            If the Dataset has no ``spec`` attribute (it was not opened from a sweep store).
        """
        text = self._ds.attrs.get("spec")
        if text is None:
            raise KeyError(
                "this Dataset has no 'spec' attribute: open a sweep store with "
                "rnnlab.analysis.open_results(path)"
            )
        return _spec_data(text)

    @property
    def provenance(self) -> dict[str, Any]:
        """Versions, host, start and end times, git commit and the spec's hash, as stored."""
        attrs = self._ds.attrs
        return {k: attrs[k] for k in PROVENANCE if k in attrs}
