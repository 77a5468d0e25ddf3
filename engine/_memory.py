"""The memory guard of the public API: refuse, before allocating, what cannot fit."""

from __future__ import annotations

import os

__all__ = ["check_memory", "memory_limit"]


def memory_limit() -> int:
    """Half of the machine's memory (8 GiB if it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def check_memory(nbytes: float, fix: str) -> None:
    """Refuse, before allocating, arrays larger than half of the machine's memory."""
    limit = memory_limit()
    if nbytes > limit:
        raise ValueError(
            f"this run needs {nbytes / 2**30:,.1f} GiB of arrays, more than half of this "
            f"machine's memory ({limit / 2**30:,.1f} GiB): {fix}"
        )
