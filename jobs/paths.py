"""What rnnlab may write over or remove: only folders it wrote itself, never a user's.

Every command that replaces a folder (a store with ``--overwrite``, a report, the demo's
store) goes through :func:`check_target` before touching anything, and removes a folder only
through :func:`remove_own`, which asks the caller's test of rnnlab's own marker first. New
folders are written beside their final place under a temporary name and renamed into it
(:func:`staging`), so that a killed command leaves no half-made folder under the user's name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["PathError", "check_target", "remove_own", "replacing", "staging"]


class PathError(ValueError):
    """A path rnnlab refuses to write over; ``str(err)`` is one line naming the field."""


def _reason(p: Path) -> str | None:
    cwd = Path.cwd().resolve()
    if p == Path(p.anchor):
        return "the root folder"
    if p == Path.home().resolve():
        return "your home folder"
    if p == cwd:
        return "the working directory"
    if p in cwd.parents:
        return "a parent of the working directory"
    return None


def check_target(path, field: str) -> Path:
    """``path`` as given, after refusing a path that rnnlab must never write over.

    Refused: an empty path, the root folder, the home folder, the working directory or any
    parent of it, and an existing file (the target is a folder).

    Raises
    ------
    PathError
        One line: ``field``, the path, why, and what to do.
    """
    text = str(path)
    if not text.strip():
        raise PathError(f"{field}: empty path: name a new folder, for example results/run.zarr")
    p = Path(text).expanduser()
    why = _reason(p.resolve())
    if why is not None:
        raise PathError(
            f"{field}: {text} is {why}, which rnnlab never writes over: name a new folder "
            "inside it, for example results/run.zarr"
        )
    if p.exists() and not p.is_dir():
        raise PathError(f"{field}: {text} is a file, not a folder: name a new folder")
    return p


def remove_own(path: Path, is_ours: Callable[[Path], bool], field: str, what: str) -> None:
    """Remove the folder ``path`` if ``is_ours(path)`` says rnnlab wrote it; refuse otherwise.

    An empty folder is left in place (there is nothing to remove).
    """
    path = check_target(path, field)
    if not path.exists() or not any(path.iterdir()):
        return
    if not is_ours(path):
        raise PathError(
            f"{field}: {path} exists and is not {what}: rnnlab removes only what it wrote; "
            "choose a new or empty folder"
        )
    shutil.rmtree(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging(path: Path, kind: str) -> Path:
    """A new temporary folder beside ``path`` to build it in (``.NAME.KIND-PID``).

    Temporary folders of the same kind left by killed processes of this host are removed
    first: their names say that rnnlab made them.
    """
    path = Path(path)
    path.absolute().parent.mkdir(parents=True, exist_ok=True)
    for old in path.absolute().parent.glob(f".{path.name}.{kind}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.{kind}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


@contextlib.contextmanager
def replacing(path: Path, is_ours: Callable[[Path], bool], field: str, what: str) -> Iterator[Path]:
    """Build a folder in a staging folder; at the end put it in ``path``'s place.

    ``path`` may be missing, empty, or a folder that ``is_ours`` recognises (``what`` names
    it in the error otherwise). On any error, or Ctrl-C, the staging folder is removed and
    ``path`` is left as it was.
    """
    try:
        tmp = staging(path, "partial")
    except OSError as err:
        raise PathError(f"{field}: {path}: cannot write there ({err.strerror})") from None
    try:
        yield tmp
        remove_own(path, is_ours, field, what)
        if path.exists():
            path.rmdir()  # an empty folder
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
