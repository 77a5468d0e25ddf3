"""Run a kernel over chunks of cases on threads.

The kernels release the GIL (``nogil=True``), so a pool of Python threads runs chunks of
cases in parallel with no second, ``parallel=True`` compilation of every kernel (which
doubled the compile time and needed a thread-safe Numba threading layer under Dask). BLAS is
limited to one thread meanwhile: each kernel thread calls it on small products.
"""

from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["default_threads", "one_blas_thread", "run_chunks", "threads_for"]

_POOL: ThreadPoolExecutor | None = None
_BLAS: ThreadpoolController | None = None  # found once: scanning the libraries takes ms


def one_blas_thread():
    """A context in which BLAS runs on one thread."""
    global _BLAS
    if _BLAS is None:
        # the BLAS the kernels call (Numba's np.dot is SciPy's), loaded before the scan:
        # a controller made before it was loaded left it on every CPU in each kernel
        # thread (measured: the layered kernel 1.6x slower after a run of the lanes)
        import scipy.linalg.cython_blas  # noqa: F401

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def default_threads() -> int:
    """Threads for ``parallel=True``: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(parallel) -> int:
    """Threads for a ``parallel`` argument: True (every CPU), False (one) or a number."""
    if isinstance(parallel, bool | np.bool_):
        return default_threads() if parallel else 1
    if isinstance(parallel, numbers.Integral) and parallel >= 1:
        return int(parallel)
    raise ValueError(f"parallel must be True, False or a number of threads >= 1, got {parallel!r}")


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:
        _POOL = ThreadPoolExecutor(threads, thread_name_prefix="rnnlab")
    return _POOL


def run_chunks(kernel, args, sliced, ncase: int, threads: int, align: int = 1) -> None:
    """``kernel(*args)`` on every case, in chunks of cases on ``threads`` threads.

    ``sliced[j]`` says whether ``args[j]`` has the cases on its first axis (it is then cut
    into the chunk's rows; the kernel writes its outputs into those views). Chunks hold a
    multiple of ``align`` cases (the scalar kernel's lane groups).
    """
    threads = max(1, min(threads, -(-ncase // align)))
    with one_blas_thread():
        if threads == 1:
            kernel(*args)
            return
        nchunks = min(-(-ncase // align), 4 * threads)  # a few per thread balance the load
        size = -(-ncase // nchunks)
        size = -(-size // align) * align
        bounds = [(s, min(s + size, ncase)) for s in range(0, ncase, size)]

        def run(bound):
            s, e = bound
            kernel(*(a[s:e] if cut else a for a, cut in zip(args, sliced, strict=True)))

        for _ in _pool(threads).map(run, bounds):
            pass
