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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ALTERED",
    "CONSOLIDATE",
    "DONE",
    "OVERWRITE",
    "RECORD",
    "Damage",
    "Report",
    "attributes_damage",
    "check",
    "codecs",
    "mark_not_done",
    "read_flags",
    "record_block",
    "record_coordinates",
    "record_metadata",
    "repair",
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


#: How a damage that recomputing a block cannot mend is mended (``Damage.block`` is the
#: block otherwise): the metadata consolidated again from the per-array documents (which
#: are checked), or the store recomputed (``--overwrite``).
CONSOLIDATE, OVERWRITE = -2, -3
#: What ``verify`` alone finds: a chunk whose bytes changed but not its size.
ALTERED = "altered: its checksum does not match its bytes"


@dataclass(frozen=True)
class Damage:
    """One damaged chunk or document: ``block`` is its block, or CONSOLIDATE or OVERWRITE
    for what recomputing a block cannot mend."""

    block: int
    array: str
    key: str
    what: str

    def __str__(self) -> str:
        where = f"block {self.block}: " if self.block >= 0 else ""
        name = f"{self.array}/{self.key}" if self.array else self.key
        return f"{where}{name} {self.what}"


@dataclass
class Report:
    """What :func:`check` found: the damage, the done flags as read (an unreadable flag is
    not done), and how many done blocks were compared with the record."""

    damage: list[Damage]
    checked_blocks: int
    done: np.ndarray

    @property
    def blocks(self) -> list[int]:
        """The damaged blocks (each once, in order)."""
        return sorted({d.block for d in self.damage if d.block >= 0})

    @property
    def unrepairable(self) -> list[Damage]:
        """Damage that recomputing blocks cannot mend (coordinates, metadata documents)."""
        return [d for d in self.damage if d.block == OVERWRITE]

    @property
    def stale_consolidation(self) -> bool:
        """Whether the consolidated copy of the metadata differs from the documents."""
        return any(d.block == CONSOLIDATE for d in self.damage)

    @property
    def intact(self) -> np.ndarray:
        """The done flags of the blocks that are done and undamaged."""
        out = self.done.copy()
        out[self.blocks] = False
        return out

    def counts(self) -> str:
        """How many damaged chunks, in how many blocks, and damaged documents."""
        docs = sum(d.key == "zarr.json" for d in self.damage)
        n, b = len(self.damage) - docs, len(self.blocks)
        parts = (
            [f"{n} damaged chunk{'s' * (n != 1)}" + (f" in {b} block{'s' * (b != 1)}" if b else "")]
            if n
            else []
        )
        if docs:
            parts.append(f"{docs} damaged metadata document{'s' * (docs != 1)}")
        return " and ".join(parts)

    @property
    def needs_verify(self) -> bool:
        """Whether only reading the chunks (``verify``) finds some of this damage."""
        return any(d.what == ALTERED for d in self.damage)

    def beyond_blocks(self, path) -> str:
        """The one line of damage that recomputing blocks cannot mend, with its fix."""
        return (
            f"{path}: damaged beyond its blocks ({self.unrepairable[0]}): recompute it with "
            f"`rnnlab run {path} --overwrite`"
        )

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


def _chunk_key(array, pos: tuple[int, ...]) -> str:
    """The key of ``array``'s chunk of the block at grid position ``pos`` (the trailing
    time and unit dimensions are one chunk)."""
    return array.metadata.encode_chunk_key((*pos, *(0,) * (array.ndim - len(pos))))


def _file_size(file: Path) -> int:
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


def record_block(path: Path, group, arrays: dict, pos: tuple[int, ...], index: int) -> None:
    """Record the size of every chunk block ``index`` (at block position ``pos``) wrote into
    ``arrays`` (name -> the Zarr array, in the record's order)."""
    sizes = [_file_size(path / name / _chunk_key(arr, pos)) for name, arr in arrays.items()]
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
    group.attrs["coordinate_bytes"] = json.dumps(sizes, sort_keys=True)


def _crc_ok(file: Path) -> bool:
    data = file.read_bytes()
    if len(data) < _CRC:
        return False
    return np.uint32(_crc(data[:-_CRC])).tobytes() == data[-_CRC:]


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
        return ALTERED
    return None


def _recorded_names(group) -> list[str]:
    """The grid variables of a store, in the record's order ([] for an older store)."""
    return list(json.loads(group.attrs.get("integrity_variables", "[]")))


def _crc(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def _attributes_crc(attrs: dict) -> int:
    """The CRC-32C of the root attributes that never change (all but the end time)."""
    kept = {k: v for k, v in attrs.items() if k not in ("end_time", "attributes_crc32c")}
    return _crc(json.dumps(kept, sort_keys=True, default=str).encode())


def record_metadata(path: Path, group) -> None:
    """Record, once at creation, the CRC-32C of every metadata document below the root
    and of the root's attributes (but its end time)."""
    path = Path(path)
    docs = {
        str(doc.parent.relative_to(path)): _crc(doc.read_bytes())
        for doc in sorted(path.rglob("zarr.json"))
        if doc.parent != path
    }
    group.attrs["metadata_crc32c"] = json.dumps(docs)
    group.attrs["attributes_crc32c"] = _attributes_crc(dict(group.attrs))


def attributes_damage(attrs: dict) -> Damage | None:
    """The root attributes' own damage: their checksum (rnnlab >= 0.2), and the spec's text
    against its sha256. Nothing else in them can be trusted while this is not None."""
    import hashlib

    if "attributes_crc32c" in attrs and attrs["attributes_crc32c"] != _attributes_crc(attrs):
        return Damage(OVERWRITE, "", "zarr.json", "attributes altered (their checksum)")
    text = attrs.get("spec")
    if not isinstance(text, str) or hashlib.sha256(text.encode()).hexdigest() != attrs.get(
        "spec_sha256"
    ):
        return Damage(OVERWRITE, "", "zarr.json", "spec altered (not its sha256)")
    return None


def _metadata_damage(path: Path, attrs: dict) -> list[Damage]:
    """Metadata documents gone or altered (against their recorded CRC-32C), and a
    consolidated copy that differs from the documents (names included). No consolidated
    copy at all is no damage: a run stopped before its finalisation, which consolidates."""
    if "metadata_crc32c" not in attrs:
        return []  # a store of rnnlab < 0.2
    out = []
    docs = {}
    for name, crc in json.loads(attrs["metadata_crc32c"]).items():
        try:
            data = (path / name / "zarr.json").read_bytes()
        except OSError:
            out.append(Damage(OVERWRITE, name, "zarr.json", "missing"))
            continue
        if _crc(data) != crc:
            out.append(Damage(OVERWRITE, name, "zarr.json", "altered: its checksum"))
        else:
            docs[name] = json.loads(data)
    try:
        root = json.loads((path / "zarr.json").read_bytes())
        copy = (root.get("consolidated_metadata") or {}).get("metadata")
    except (OSError, ValueError, AttributeError):
        copy = None
    if copy is None:
        return out

    def bare(doc):  # a group's copy holds its own (empty) consolidated metadata
        return {k: v for k, v in doc.items() if k != "consolidated_metadata"}

    recorded = set(json.loads(attrs["metadata_crc32c"]))
    stale = set(copy) != recorded or any(
        bare(copy.get(name) or {}) != bare(doc) for name, doc in docs.items()
    )
    if stale:
        out.append(Damage(CONSOLIDATE, "", "zarr.json", "consolidated copy differs"))
    return out


def check(path, plan, *, verify: bool = False) -> Report:
    """Compare a store with its record of what each done block wrote.

    Parameters
    ----------
    path : path
        An rnnlab store.
    plan : BlockPlan
        Its block plan (``rnnlab.jobs.store.stored_plan``).
    verify : bool
        Also read every chunk of every done block and check its CRC-32C (finds a flipped
        byte that leaves the size unchanged). Without it only file sizes are compared. The
        metadata documents and the coordinates (small) are always checked in full.

    Returns
    -------
    Report
        The damage found (none for an intact store) and the done flags. Blocks not done are
        not checked: they are recomputed anyway.
    """
    path = Path(path)
    group = _open(path)
    attrs = dict(group.attrs)
    if (bad := attributes_damage(attrs)) is not None:  # nothing else in them can be trusted
        return Report([bad], 0, np.zeros(plan.nblocks, dtype=bool))
    damage = _metadata_damage(path, attrs)
    try:
        flags, _ = read_flags(group[DONE])
    except (KeyError, ValueError, OSError):  # its metadata document is gone or garbled
        if not any(d.array == DONE for d in damage):
            damage.append(Damage(OVERWRITE, DONE, "zarr.json", "missing or unreadable"))
        return Report(damage, 0, np.zeros(plan.nblocks, dtype=bool))
    done = flags == 1
    damage += _coordinate_damage(path, attrs)
    names = _recorded_names(group)
    try:
        rows, unreadable = read_flags(group[RECORD]) if names else (None, [])
    except (KeyError, ValueError, OSError):  # its metadata is gone: reported above
        names = []
    if not names:  # nothing recorded (a store of rnnlab < 0.2), or the record is lost
        return Report(damage, 0, done)
    arrays = _arrays(group, names)
    blocks = np.flatnonzero(done)
    for index in blocks:
        if index in unreadable or rows[index, 0] < 0:
            damage.append(Damage(int(index), "integrity", "chunk_bytes", "not recorded"))
            continue
        damage += _block_damage(path, arrays, names, plan, int(index), rows[index], verify)
    return Report(damage, int(blocks.size), done)


def _block_damage(path, arrays, names, plan, index, sizes, verify) -> list[Damage]:
    """The damaged chunks of one done block, against its recorded sizes."""
    out = []
    pos = plan.position(index)
    for j, name in enumerate(names):
        if name not in arrays:
            continue  # reported as metadata damage
        key = _chunk_key(arrays[name], pos)
        what = _compare(path / name / key, int(sizes[j]), verify)
        if what is not None:
            out.append(Damage(index, name, key, what))
    return out


def _arrays(group, names: list[str]) -> dict:
    """The arrays among ``names`` whose metadata can be read."""
    out = {}
    for name in names:
        try:
            out[name] = group[name]
        except (KeyError, ValueError, OSError):
            continue
    return out


def _coordinate_damage(path: Path, attrs: dict) -> list[Damage]:
    """Damaged chunks of the coordinates (sizes and checksums: they are small)."""
    recorded = json.loads(attrs.get("coordinate_bytes", "{}"))
    out = []
    for key, size in recorded.items():
        what = _compare(path / key, int(size), verify=True)
        if what is not None:
            name, _, chunk = key.partition("/")
            out.append(Damage(OVERWRITE, name, chunk, what))
    return out


def mark_not_done(path, blocks) -> None:
    """Unset the done flags of ``blocks`` and the end time, so that ``run`` recomputes them,
    and consolidate the metadata again (from the per-array documents)."""
    import zarr

    from .store import quiet_consolidation

    group = _open(path, "r+")
    for index in blocks:
        group[DONE][int(index)] = 0
    if blocks:
        group.attrs["end_time"] = ""
    with quiet_consolidation():
        zarr.consolidate_metadata(str(path))


def repair(path, report: Report) -> None:
    """Mend what the same command can: mark the damaged blocks not done, and consolidate the
    metadata again if its copy is stale."""
    if report.blocks or report.stale_consolidation:
        mark_not_done(path, report.blocks)


def hidden_chunks(path, plan, blocks) -> set[str]:
    """The store keys of every grid variable's chunk of ``blocks`` (read as fill values by
    a reader that hides them; see ``rnnlab.analysis.open_results``)."""
    group = _open(path)
    arrays = _arrays(group, _recorded_names(group))
    return {
        f"{name}/{_chunk_key(arr, plan.position(int(index)))}"
        for index in blocks
        for name, arr in arrays.items()
    }
