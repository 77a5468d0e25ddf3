"""Sweep specs: a TOML (or YAML) file becomes a validated :class:`Spec` and an orthogonal grid.

A spec has four tables::

    [model]            # the family and its fixed settings
    family = "rnn"
    n = 1

    [grid]             # each key a dimension: a list, or a range table
    activation = ["identity", "sigmoid", "tanh", "relu"]
    w = {start = -1.5, stop = 1.5, num = 13}
    amplitude = [-1.0, 1.0]
    seed = {range = 4}

    [run]              # steps, recording, precision, input
    steps = 1000
    record = "log"

    [store]
    path = "results/scalar.zarr"

Every problem is reported as one line ``<table>.<key>: <what is wrong and the fix>``.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .families import get_family

__all__ = ["Grid", "RangeSpec", "RunSpec", "Spec", "SpecError", "load_spec", "parse_spec"]

#: The number of cases must fit an int64 with room (the size of the store is what limits a
#: grid in practice: store.max_bytes).
MAX_CASES = 2**62


class SpecError(ValueError):
    """Spec problems; ``str(err)`` has one line per problem, each naming its field."""

    def __init__(self, problems: list[str]):
        shown = [_short(p, 500) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS:,} more problems")
        self.problems = shown
        super().__init__("\n".join(self.problems))


class _Strict(BaseModel):
    # strict: true is not 1, "100" is not 100 (TOML and YAML have numbers; ints are floats)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RangeSpec(_Strict):
    """``{start, stop, num}`` (linear), ``{start, stop, num, log = true}``, or ``{range = N}``."""

    start: float | None = None
    stop: float | None = None
    num: Annotated[int, Field(ge=1)] | None = None
    log: bool = False
    range: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.range is not None:
            if any(v is not None for v in (self.start, self.stop, self.num)) or self.log:
                raise ValueError("use either {range = N} or {start, stop, num}, not both")
            return self
        if self.start is None or self.stop is None or self.num is None:
            raise ValueError("a range table needs start, stop and num (or range = N)")
        if self.log and (self.start <= 0 or self.stop <= 0):
            raise ValueError("a log range needs start > 0 and stop > 0")
        return self

    def values(self) -> np.ndarray:
        if self.range is not None:
            return np.arange(self.range, dtype=np.int64)
        f = np.geomspace if self.log else np.linspace
        return f(self.start, self.stop, self.num)


GridValue = list[bool | int | float | str] | RangeSpec


class RunSpec(_Strict):
    """How each case runs (see :func:`rnnlab.engine.simulate_rnn` for the meaning)."""

    steps: Annotated[int, Field(ge=1, le=10**9)]
    record: Literal["all", "log", "none"] = "log"
    num_records: Annotated[int, Field(ge=2, le=100_000)] = 100
    dtype: Literal["float64", "float32"] = "float64"
    input: Literal["impulse", "step", "noise"] = "impulse"
    memory_rtol: Annotated[float, Field(gt=0, lt=1)] = 1e-3
    saturation_tol: Annotated[float, Field(gt=0)] | None = None
    bound: Annotated[float, Field(gt=0)] = 1e6
    gradient: Literal["auto", "exact", "estimate", "none"] = "auto"
    gradient_probes: Annotated[int, Field(ge=1)] = 16
    num_exponents: Annotated[int, Field(ge=1, le=100_000)] = 16  # k of lyapunov_exponents
    num_delays: Annotated[int, Field(ge=1, le=100_000)] | None = None  # K of memory_capacity
    fixed_point_starts: Annotated[int, Field(ge=1, le=100_000)] = 64  # Newton's starts
    num_fixed_points: Annotated[int, Field(ge=1, le=100_000)] = 16  # stored per case at most
    outputs: list[str] | None = None  # the variables to store (default: the family's)

    @field_validator("outputs", mode="before")
    @classmethod
    def _a_list_of_names(cls, value):
        if value is not None and not isinstance(value, list):
            raise ValueError(
                f"got {value!r}: give a list of variable names, for example "
                'outputs = ["growth_rate"], or leave it out to store every variable'
            )
        return value


class StoreSpec(_Strict):
    """Where the sweep is written, and how it is cut into blocks."""

    path: str
    block_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    #: A store larger than this (uncompressed) is refused unless raised here.
    max_bytes: Annotated[float, Field(gt=0)] = 10e9


class Spec(_Strict):
    """A validated sweep spec. Build it with :func:`load_spec` or :func:`parse_spec`."""

    model: dict[str, Any]
    grid: dict[str, GridValue] = Field(default_factory=dict)
    run: RunSpec
    store: StoreSpec
    text: str = ""  # the spec's own text, stored as provenance

    @property
    def family(self) -> str:
        return str(self.model.get("family", ""))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Grid:
    """The orthogonal grid of a spec: dimension names and their coordinate values, in order."""

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(self.coords[d]) for d in self.dims)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.dims else 1


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("list[union[bool,int,float,str]]", "RangeSpec"):
            continue  # pydantic's union branch names say nothing to a user
        else:
            out += ("." if out else "") + str(part)
    return out


#: A spec file larger than this is refused unread.
MAX_SPEC_BYTES = 1_000_000
#: At most this many problems are listed (then how many more there are).
MAX_PROBLEMS = 20


def _yaml(text: str):
    """YAML without aliases: ``*name`` could expand a few lines into gigabytes."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"line {mark.line + 1}: YAML aliases (*name) are not allowed in a spec: "
                    "write the values out"
                )
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliases)  # NoAliases is a SafeLoader


def _short(text: str, limit: int = 200) -> str:
    """At most ``limit`` characters of a message, so that no value floods the terminal."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _pydantic_problems(err: ValidationError, prefix: str) -> list[str]:
    problems = []
    for e in err.errors():
        loc = _format_loc((prefix, *e["loc"]) if prefix else e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key: remove it (see docs/sweeps.md for the spec's keys)"
        elif e["type"] in ("int_type", "float_type", "bool_type", "string_type"):
            msg += f", got {_short(repr(e['input']), 40)}"
            if e["type"] == "float_type" and isinstance(e["input"], str):
                msg += " (in YAML, write 1.0e-3: PyYAML reads 1e-3 as text)"
        problems.append(f"{loc}: {msg}" if loc else msg)
    return sorted(set(problems), key=problems.index)


_TABLES = {"model": None, "grid": None, "run": RunSpec, "store": StoreSpec}


def parse_spec(data: dict, text: str = "") -> tuple[Spec, Grid]:
    """Validate a spec given as a dict; return it with its grid.

    Each table is checked on its own, so that one run reports every problem of the spec.

    Raises
    ------
    SpecError
        Listing every problem found, one line each, each naming its field.
    """
    problems: list[str] = []
    for key in data:
        if key not in _TABLES:
            problems.append(f"{key}: unknown table: use [model], [grid], [run] and [store]")
    for key in ("model", "run", "store"):
        if key not in data:
            problems.append(f"{key}: missing table: add [{key}]")
    parts: dict[str, Any] = {}
    for key, model in (("run", RunSpec), ("store", StoreSpec)):
        if key in data:
            try:
                parts[key] = model.model_validate(data[key])
            except ValidationError as err:
                problems += _pydantic_problems(err, key)
    model_table = data.get("model", {})
    if not isinstance(model_table, dict):
        problems.append("model: must be a table")
        model_table = {}
    grid_table = data.get("grid", {})
    if not isinstance(grid_table, dict):
        problems.append("grid: must be a table of dimensions")
        grid_table = {}
    grid_values: dict[str, GridValue] = {}
    for name, value in grid_table.items():
        try:
            if isinstance(value, dict):
                grid_values[name] = RangeSpec.model_validate(value)
            elif isinstance(value, list):
                grid_values[name] = _GRID_LIST.validate_python(value)
                kinds = sorted({_KIND[type(v)] for v in grid_values[name]})
                if len(kinds) > 1:
                    problems.append(
                        f"grid.{name}: mixes {' and '.join(kinds)}: give values of one kind "
                        '(true is not 1, and "1" is not a number)'
                    )
            else:
                problems.append(
                    f"grid.{name}: give a list of values or a range table "
                    "({start, stop, num} or {range = N}), not a single value"
                )
        except ValidationError as err:
            problems += _pydantic_problems(err, f"grid.{name}")
    family = get_family(str(model_table.get("family", "")), problems)
    size = 1
    for value in grid_values.values():
        size *= len(value) if isinstance(value, list) else (value.range or value.num or 1)
    if size > MAX_CASES:  # checked before any coordinate array is made
        problems.append(f"grid: {size:.3g} cases is more than {MAX_CASES:.2g}: shrink a dimension")
        raise SpecError(problems)
    coords: dict[str, np.ndarray] = {}
    for name, value in grid_values.items():
        if name == "activation" and isinstance(value, list):  # one name per model
            value = ["identity" if v == "linear" else v for v in value]
        values = value.values() if isinstance(value, RangeSpec) else np.asarray(value)
        if values.size == 0:
            problems.append(f"grid.{name}: empty list: give at least one value")
            continue
        if len(np.unique(values)) != values.size:
            problems.append(f"grid.{name}: repeated values: each value must appear once")
        coords[name] = values
    if family is not None:
        fixed = {k: v for k, v in model_table.items() if k != "family"}
        family.validate(fixed, coords, parts.get("run"), problems)
    grid = Grid(tuple(coords), coords)
    if problems:
        raise SpecError(problems)
    spec = Spec(
        model=model_table, grid=grid_values, run=parts["run"], store=parts["store"], text=text
    )
    return spec, grid


_GRID_LIST = TypeAdapter(list[bool | int | float | str])
_KIND = {bool: "true/false", int: "numbers", float: "numbers", str: "names"}


def load_spec(path: str | Path) -> tuple[Spec, Grid]:
    """Read and validate a TOML (``.toml``) or YAML (``.yaml``/``.yml``) spec file.

    Raises
    ------
    SpecError
        For a file that cannot be read or parsed, or a spec with problems.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(
                [
                    f"{path}: {path.stat().st_size:,} bytes is not a spec (a spec is "
                    f"a few lines; at most {MAX_SPEC_BYTES:,} bytes)"
                ]
            )
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError([f"{path}: cannot read the spec ({err.strerror})"]) from None
    except UnicodeDecodeError:
        raise SpecError([f"{path}: not UTF-8 text: save the spec as UTF-8"]) from None
    try:
        data = _yaml(text) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)
    except Exception as err:
        what = path.suffix.lstrip(".").upper()
        raise SpecError([f"{path}: not valid {what}: {_short(str(err))}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{path}: the spec must be a table of tables"])
    return parse_spec(data, text)
