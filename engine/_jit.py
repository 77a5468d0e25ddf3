"""Numba options in one place, the engine's compile cache, and one low-level intrinsic.

Every kernel of the engine is compiled through :func:`jit`, so that the options that make
the lane loops vectorise are set once:

- ``error_model="numpy"``: a float division by zero gives inf/NaN instead of raising. Python's
  model inserts a branch before every division, which stops LLVM from vectorising the loop
  (measured: the lane loop of the tanh kernel went from scalar ``xmm`` code to ``zmm`` code).
- ``fastmath={"contract"}``: allow fused multiply-add only. No reassociation, no
  reciprocal approximation: results stay within a few ulp of the NumPy references. (One
  exception, stated where it is: the sum of squares that renormalises the Jacobian product
  is reassociated so that it vectorises; it only sets a scale factor.)
- ``nogil=True``: kernels run in threads (the engine's own, or Dask's).
- ``cache=True``: a new process loads machine code from disk in milliseconds.
- No ``inline="always"`` by default: Numba's IR-level inlining re-types the callee at every
  call site (measured: it made the layered kernel take 38 s to compile). LLVM inlines small
  helpers anyway, and each helper is compiled once per signature and shared by every kernel
  that calls it. The one exception is the scalar kernel's per-step lane helpers
  (``engine/_scalar.py``): a call there with array arguments costs reference-count updates
  every step, which made that kernel 2x slower (measured), so they are inlined by Numba.

The compile cache. Numba checks only the modification time of the file that defines a
kernel, not of the files it calls (an edited cell module would leave a stale kernel in the
cache). So the engine keeps its cache in a folder named after a hash of every source file
of the engine: any edit gives a new folder. The folder is ``engine/__pycache__/rnnlab-<hash>``
(where the folders of earlier sources are removed when a new one is made), or, if the
package folder is not writable, ``~/.cache/rnnlab/rnnlab-<hash>``; a ``NUMBA_CACHE_DIR`` set by
the user is honoured as the parent folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numba
from llvmlite import ir
from numba.core import event, types
from numba.extending import intrinsic

__all__ = [
    "CACHE_DIR",
    "FASTMATH",
    "CompileRecorder",
    "borrowed",
    "compile_stats",
    "dispatchers",
    "float64_bits_as_int64",
    "fma",
    "hold",
    "int64_bits_as_float64",
    "jit",
    "source_hash",
]

FASTMATH = {"contract"}

_DEFAULTS = {"nogil": True, "cache": True, "fastmath": set(FASTMATH), "error_model": "numpy"}
_ENGINE = Path(__file__).resolve().parent


def source_hash() -> str:
    """A hash of every Python source file of the engine (its folder and sub-folders)."""
    h = hashlib.sha256()
    for path in sorted(_ENGINE.rglob("*.py")):
        h.update(str(path.relative_to(_ENGINE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def _cache_dir() -> Path | None:
    name = f"rnnlab-{source_hash()}"
    user = os.environ.get("NUMBA_CACHE_DIR")
    in_tree = _ENGINE / "__pycache__"
    parents = [Path(user)] if user else [in_tree, Path.home() / ".cache" / "rnnlab"]
    for parent in parents:
        folder = parent / name
        if folder.is_dir() or _writable(folder):
            if parent == in_tree:  # this checkout's own: earlier sources' caches are stale
                _remove_stale(parent, name)
            return folder
    return None  # nowhere to write: Numba's own fallbacks apply


def _remove_stale(parent: Path, keep: str) -> None:
    for old in parent.glob("rnnlab-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


#: The folder of the engine's compiled kernels (None: Numba's default locations).
CACHE_DIR = _cache_dir()


@contextlib.contextmanager
def _engine_cache():
    """Numba reads its cache folder when a function is decorated: point it at ours meanwhile
    (and only meanwhile, so that other libraries' caches are left where they were)."""
    old = numba.config.CACHE_DIR
    if CACHE_DIR is not None:
        numba.config.CACHE_DIR = str(CACHE_DIR)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = old


_DISPATCHERS: list = []


def jit(func=None, **options):
    """``numba.njit`` with the engine's default options (overridable by keyword)."""
    opts = {**_DEFAULTS, **options}

    def decorate(f):
        with _engine_cache():
            d = numba.njit(**opts)(f)
        _DISPATCHERS.append(d)
        return d

    return decorate if func is None else decorate(func)


def dispatchers() -> list:
    """Every jitted function of the engine (kernels and the helpers they call)."""
    return list(_DISPATCHERS)


def _name(d) -> str:
    f = d.py_func
    return f"{f.__module__.removeprefix('rnnlab.engine.')}.{f.__qualname__}"


def compile_stats() -> dict[str, dict[str, int]]:
    """What this process compiled and what it loaded from the cache, per jitted function.

    Returns ``{name: {"compiled": n, "loaded": m}}`` for every function with at least one
    specialisation (a closure kernel is named by its factory, e.g.
    ``_driver.make_kernel.<locals>.run_block``; one entry per closure is summed).
    """
    out: dict[str, dict[str, int]] = {}
    for d in _DISPATCHERS:
        compiled = sum(d.stats.cache_misses.values())
        loaded = sum(d.stats.cache_hits.values())
        if compiled or loaded:
            row = out.setdefault(_name(d), {"compiled": 0, "loaded": 0})
            row["compiled"] += compiled
            row["loaded"] += loaded
    return out


@intrinsic
def borrowed(typingctx, a):
    """The array ``a`` without its reference count: views of it and calls with it then
    update no count (Numba counts a reference for every view and many calls, an atomic
    instruction each: 55% of the layered kernel's time at n = 64 before its arguments were
    borrowed, measured with perf).

    Only for arrays that outlive every use of the borrowed one and are not returned or
    stored: a kernel's arguments, which its caller holds for the whole call.
    """
    if not isinstance(a, types.Array):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        for field in (0, 1):  # the meminfo and the parent object: null
            value = builder.insert_value(
                value, ir.Constant(value.type.elements[field], None), field
            )
        return value

    return a(a), codegen


@intrinsic
def hold(typingctx, owners):
    """Nothing, but a use of ``owners``: Numba frees an array after its last use, so a kernel
    that borrows arrays it made (:func:`borrowed`) holds them with this at its end."""

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(owners), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's ``llvm.fma``), for float64 or float32 arguments.

    Written where an expression has two products (``w h + c x + b``): with contraction
    allowed, LLVM may fuse either product depending on the loop around the expression, so
    two loops computing the same formula could round differently. An explicit FMA rounds the
    same everywhere.
    """
    if not all(isinstance(t, types.Float) for t in (a, b, c)):
        return None
    ty = max((a, b, c), key=lambda t: t.bitwidth)
    sig = ty(ty, ty, ty)

    def codegen(context, builder, signature, args):
        lty = context.get_value_type(ty)
        vals = [context.cast(builder, v, t, ty) for v, t in zip(args, signature.args, strict=True)]
        fnty = ir.FunctionType(lty, [lty, lty, lty])
        fn = builder.module.declare_intrinsic("llvm.fma", [lty], fnty)
        return builder.call(fn, vals)

    return sig, codegen


@intrinsic
def int64_bits_as_float64(typingctx, x):
    """Reinterpret the bits of an int64 as a float64 (C++ ``std::bit_cast``).

    Used to build 2**n from its exponent field; LLVM vectorises the bitcast, unlike a call
    to ``ldexp``.
    """
    if not isinstance(x, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def float64_bits_as_int64(typingctx, x):
    """Reinterpret the bits of a float64 as an int64 (the inverse of
    :func:`int64_bits_as_float64`).

    Used to read an integer held in a float's mantissa: AVX2 has no vector float64 -> int64
    conversion (AVX-512DQ's ``vcvttpd2qq``), so ``np.int64(x)`` there is a scalar
    conversion per lane, while a bitcast and an integer subtraction vectorise on both.
    """
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def float32_bits_as_int32(typingctx, x):
    """Reinterpret the bits of a float32 as an int32 (:func:`float64_bits_as_int64` in
    single precision)."""
    if not isinstance(x, types.Float) or x.bitwidth != 32:
        return None
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def int32_bits_as_float32(typingctx, x):
    """Reinterpret the bits of an int32 as a float32 (:func:`int64_bits_as_float64` in
    single precision)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 32:
        return None
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


class CompileRecorder(event.Listener):
    """Every Numba compilation in this process while registered, with its duration.

    ``rows`` holds ``(dispatcher, name, signature, seconds, own_seconds, depth)`` per
    compiled specialisation: ``seconds`` includes the functions it compiled on the way (its
    callees), ``own_seconds`` does not, ``depth`` 0 is a compilation started from Python (a
    kernel's first call). Use :meth:`register` once, early (``tests/conftest.py`` does).
    """

    def __init__(self):
        self.rows: list[tuple] = []
        self._stack: list[list[float]] = []

    def register(self) -> CompileRecorder:
        event.register("numba:compile", self)
        return self

    def on_start(self, ev):
        self._stack.append([time.perf_counter(), 0.0])

    def on_end(self, ev):
        t0, children = self._stack.pop()
        seconds = time.perf_counter() - t0
        if self._stack:
            self._stack[-1][1] += seconds
        d = ev.data["dispatcher"]
        name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
        sig = tuple(ev.data["args"])
        self.rows.append((d, name, sig, seconds, seconds - children, len(self._stack)))

    def literal_specialisations(self, allowed=("rnnlab.engine.activations.activate",)):
        """Engine functions compiled for a literal argument (each such value compiles the
        function again), except the intended ones (the scalar kernel's activation code)."""
        return [
            (name, sig)
            for _, name, sig, *_ in self.rows
            if name.startswith("rnnlab.engine")
            and name not in allowed
            and any(isinstance(a, types.Literal) for a in sig)
        ]
