"""Integrity of a store: checksummed chunks, a record of what each block wrote, the check.

Every chunk rnnlab writes ends with the CRC-32C of its bytes (Zarr 3's ``crc32c`` codec,
after zstd): any reader, xarray included, refuses an altered chunk instead of decoding it.
A chunk whose values all equal the fill value (an all-NaN block after a blow-up, say) is not
written at all, which Zarr reads back as the fill value; so that a *lost* chunk can be told
from such a legitimate absence, each block records, before its ``block_done`` flag, the size
of every chunk it wrote (0 for none) in ``integrity/chunk_bytes`` (a small array in a
subgroup, outside the Dataset that xarray opens). The coordinates' chunks are recorded once,
at creation, in the root attribute ``coordinate_bytes``.

:func:`check` compares a store with its record: a done block whose chunk is missing, has
another size, or (``verify=True``, every byte read) fails its checksum is *damaged*. Damaged
blocks are marked not done by :func:`mark_not_done`, so the next ``rnnlab run`` recomputes
exactly them; a damaged coordinate or metadata document cannot be recomputed block by block
and is reported with ``--overwrite`` as the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DONE",
    "RECORD",
    "Damage",
    "Report",
    "check",
    "codecs",
    "mark_not_done",
    "read_flags",
    "record_block",
    "record_coordinates",
]

#: The completion flags (one element per block, written last by each block).
DONE = "block_done"
#: The array of the chunk sizes each block wrote: (block, variable), -1 until recorded.
RECORD = "integrity/chunk_bytes"
_CRC = 4  # bytes of the CRC-32C at the end of every chunk


def codecs() -> dict:
    """The Zarr encoding of every array rnnlab writes: zstd, then a CRC-32C of the result."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return {"compressors": (ZstdCodec(level=0, checksum=False), Crc32cCodec())}


@dataclass(frozen=True)
class Damage:
    """One damaged chunk (``block`` -1 for a coordinate or a metadata document)."""

    block: int
    array: str
    key: str
    what: str

    def __str__(self) -> str:
        where = f"block {self.block}: " if self.block >= 0 else ""
        return f"{where}{self.array}/{self.key} {self.what}"


@dataclass
class Report:
    """What :func:`check` found: the damage, and the blocks it makes not done."""

    damage: list[Damage]
    checked_blocks: int
    verified: bool

    @property
    def blocks(self) -> list[int]:
        """The damaged blocks (each once, in order)."""
        return sorted({d.block for d in self.damage if d.block >= 0})

    @property
    def unrepairable(self) -> list[Damage]:
        """Damage that recomputing blocks cannot mend (coordinates, metadata)."""
        return [d for d in self.damage if d.block < 0]

    def counts(self) -> str:
        """How many damaged chunks, in how many blocks."""
        n, b = len(self.damage), len(self.blocks)
        return f"{n} damaged chunk{'s' * (n != 1)} in {b} block{'s' * (b != 1)}"

    def summary(self, limit: int = 3) -> str:
        """One line: the counts, and the first few chunks named."""
        shown = "; ".join(str(d) for d in self.damage[:limit])
        more = f"; and {len(self.damage) - limit} more" if len(self.damage) > limit else ""
        return f"{self.counts()} ({shown}{more})"


def _open(path: Path, mode: str = "r"):
    import zarr

    return zarr.open_group(str(path), mode=mode, use_consolidated=False)


def read_flags(array) -> tuple[np.ndarray, list[int]]:
    """The values of a chunks-of-one-row array, and the rows whose chunk cannot be read.

    A chunk that fails its checksum (or cannot be decoded at all) is not an error here: its
    row reads as the fill value and is listed, so that a damaged ``block_done`` element or
    record row means "not done" or "not recorded", to be recomputed.
    """
    try:
        return np.asarray(array[...]), []
    except Exception:
        out = np.full(array.shape, array.fill_value, dtype=array.dtype)
        bad = []
        for i in range(array.shape[0]):
            try:
                out[i] = array[i]
            except Exception:
                bad.append(i)
        return out, bad


def _chunk_file(path: Path, array, name: str, coords: tuple[int, ...]) -> Path:
    return path / name / array.metadata.encode_chunk_key(coords)


def _file_size(file: Path) -> int:
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


def record_block(path: Path, group, arrays: dict, pos: tuple[int, ...], index: int) -> None:
    """Record the size of every chunk block ``index`` (at block position ``pos``) wrote into
    ``arrays`` (name -> the Zarr array, in the record's order)."""
    sizes = []
    for name, arr in arrays.items():
        coords = (*pos, *(0,) * (arr.ndim - len(pos)))
        sizes.append(_file_size(_chunk_file(path, arr, name, coords)))
    group[RECORD][index] = np.asarray(sizes, dtype=np.int64)


def create_record(group, nblocks: int, names: list[str]) -> None:
    """The empty record of a new store (every row -1: not recorded)."""
    sub = group.require_group("integrity")
    arr = sub.create_array(
        "chunk_bytes",
        shape=(nblocks, len(names)),
        chunks=(1, len(names)),
        dtype="int64",
        fill_value=-1,
        dimension_names=("block", "variable"),
        **codecs(),
    )
    arr.attrs["description"] = (
        "Stored bytes of each variable's chunk of each block (variables in the order of the "
        "root attribute integrity_variables), written by the block before its block_done "
        "flag; 0: no chunk (every value the fill value); -1: not recorded."
    )
    group.attrs["integrity_variables"] = json.dumps(list(names))


def record_coordinates(path: Path, group) -> None:
    """Record, once at creation, the size of every chunk of the 1-D coordinates."""
    sizes = {}
    for name, arr in group.arrays():
        if name == DONE or arr.ndim != 1 or arr.metadata.dimension_names != (name,):
            continue
        for i in range(arr.cdata_shape[0]):
            key = arr.metadata.encode_chunk_key((i,))
            sizes[f"{name}/{key}"] = _file_size(path / name / key)
    group.attrs["coordinate_bytes"] = json.dumps(sizes)


def _crc_ok(file: Path) -> bool:
    import google_crc32c

    data = file.read_bytes()
    if len(data) < _CRC:
        return False
    crc = np.uint32(google_crc32c.value(data[:-_CRC])).tobytes()
    return crc == data[-_CRC:]


def _compare(file: Path, expected: int, verify: bool) -> str | None:
    """What is wrong with one chunk file, or None."""
    size = _file_size(file)
    if expected == 0:
        return None if size == 0 else "exists, but its block wrote no chunk there"
    if size == 0:
        return "missing" if not file.exists() else "empty"
    if size != expected:
        what = "truncated" if size < expected else "grown"
        return f"{what}: {size} bytes, {expected} written"
    if verify and not _crc_ok(file):
        return "altered: its checksum does not match its bytes"
    return None


def _recorded_names(group) -> list[str]:
    """The grid variables of a store, in the record's order ([] for an older store)."""
    return list(json.loads(group.attrs.get("integrity_variables", "[]")))


def _metadata_damage(path: Path, group) -> list[Damage]:
    """Arrays whose metadata document is gone or unreadable."""
    out = []
    names = _recorded_names(group)
    for name in [*names, DONE, *([RECORD] if names else [])]:
        doc = path / name / "zarr.json"
        try:
            json.loads(doc.read_bytes())
        except (OSError, ValueError):
            out.append(Damage(-1, name, "zarr.json", "missing or unreadable"))
    return out


def check(path, plan, *, verify: bool = False, done: np.ndarray | None = None) -> Report:
    """Compare a store with its record of what each done block wrote.

    Parameters
    ----------
    path : path
        An rnnlab store.
    plan : BlockPlan
        Its block plan (``rnnlab.jobs.store.stored_plan``).
    verify : bool
        Also read every chunk of every done block and check its CRC-32C (finds a flipped
        byte that leaves the size unchanged). Without it only file sizes are compared.
    done : array of bool, optional
        The done flags, if already read.

    Returns
    -------
    Report
        The damaged chunks (none for an intact store). Blocks not done are not checked:
        they are recomputed anyway.
    """
    path = Path(path)
    group = _open(path)
    damage = _metadata_damage(path, group)
    if done is None:
        flags, _ = read_flags(group[DONE])
        done = flags == 1
    damage += _coordinate_damage(path, group, verify)
    names = _recorded_names(group)
    if not names:
        return Report(damage, 0, verify)  # a store of rnnlab < 0.2: nothing recorded
    try:
        rows, unreadable = read_flags(group[RECORD])
    except KeyError:  # its metadata is gone: reported above
        return Report(damage, 0, verify)
    arrays = _arrays(group, names)
    blocks = np.flatnonzero(done)
    for index in blocks:
        if index in unreadable or rows[index, 0] < 0:
            damage.append(Damage(int(index), "integrity", "chunk_bytes", "not recorded"))
            continue
        pos = _block_position(plan, int(index))
        for j, name in enumerate(names):
            if name not in arrays:
                continue  # reported as metadata damage
            arr = arrays[name]
            coords = (*pos, *(0,) * (arr.ndim - len(pos)))
            file = _chunk_file(path, arr, name, coords)
            what = _compare(file, int(rows[index, j]), verify)
            if what is not None:
                key = arr.metadata.encode_chunk_key(coords)
                damage.append(Damage(int(index), name, key, what))
    return Report(damage, int(blocks.size), verify)


def _arrays(group, names: list[str]) -> dict:
    """The arrays among ``names`` whose metadata can be read."""
    out = {}
    for name in names:
        try:
            out[name] = group[name]
        except (KeyError, ValueError, OSError):
            continue
    return out


def _coordinate_damage(path: Path, group, verify: bool) -> list[Damage]:
    recorded = json.loads(group.attrs.get("coordinate_bytes", "{}"))
    out = []
    for key, size in recorded.items():
        what = _compare(path / key, int(size), verify)
        if what is not None:
            name, _, chunk = key.partition("/")
            out.append(Damage(-1, name, chunk, what))
    return out


def _block_position(plan, index: int) -> tuple[int, ...]:
    if not plan.shape:
        return ()
    return tuple(int(p) for p in np.unravel_index(index, plan.nblocks_per_dim))


def mark_not_done(path, blocks) -> None:
    """Unset the done flags of ``blocks`` and the end time, so that ``run`` recomputes them."""
    import zarr

    from .store import quiet_consolidation

    group = _open(path, "r+")
    for index in blocks:
        group[DONE][int(index)] = 0
    group.attrs["end_time"] = ""
    with quiet_consolidation():
        zarr.consolidate_metadata(str(path))


def hidden_chunks(path, plan, blocks) -> set[str]:
    """The store keys of every grid variable's chunk of ``blocks`` (read as fill values by
    a reader that hides them; see ``rnnlab.analysis.open_results``)."""
    group = _open(path)
    arrays = _arrays(group, _recorded_names(group))
    out = set()
    for index in blocks:
        pos = _block_position(plan, int(index))
        for name, arr in arrays.items():
            coords = (*pos, *(0,) * (arr.ndim - len(pos)))
            out.add(f"{name}/{arr.metadata.encode_chunk_key(coords)}")
    return out


def chunk_bytes_total(path) -> int:
    """Bytes of every chunk file under ``path`` (what ``verify`` reads)."""
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total
