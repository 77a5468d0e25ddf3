"""Named fault-injection points, for the tests that kill a run at every kind of moment.

``RNNLAB_FAULT=POINT:K`` makes the process kill itself with SIGKILL (no clean-up of any kind)
the K-th time it reaches ``POINT``, after writing the point's name to the file named by
``RNNLAB_FAULT_REACHED`` (the proof that the moment was reached). ``RNNLAB_FAULT_SIGNAL=STOP``
stops it there instead (alive, holding what it holds, until the test kills it). Unset, a
point costs one dictionary lookup.

Points: ``create`` (the new store written beside its place, not yet renamed in),
``block_data`` (a block's first variable written, the others not), ``block_done`` (a
block's data written, its done flag not), ``between_blocks`` (a block done, the next not
begun), ``finalise`` (every block done, the end time written, the metadata not
consolidated).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["POINTS", "fault_point"]

POINTS = ("create", "block_data", "block_done", "between_blocks", "finalise")
_SEEN: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Die here if ``RNNLAB_FAULT`` names this point and this is its K-th visit."""
    wanted = os.environ.get("RNNLAB_FAULT")
    if not wanted:
        return
    point, _, k = wanted.partition(":")
    if point != name:
        return
    _SEEN[name] = _SEEN.get(name, 0) + 1
    if _SEEN[name] == int(k or 1):
        Path(os.environ["RNNLAB_FAULT_REACHED"]).write_text(f"{name}:{_SEEN[name]}")
        how = os.environ.get("RNNLAB_FAULT_SIGNAL", "KILL")
        os.kill(os.getpid(), signal.SIGSTOP if how == "STOP" else signal.SIGKILL)
