"""Damage after the fact: chunks deleted, truncated, grown or altered (one byte, size
unchanged), garbage completion flags and records, lost metadata, damaged coordinates, a
read-only store. Each is found (by ``status``, ``run`` or ``--verify``), said in one line,
and repaired by the same command: the repaired store equals an undamaged one bit for bit."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zarr

from .sweeps import SCALAR_SPEC, assert_same_store, rnnlab

# the scalar sweep of the sweep tests, 168 cases cut into 8 blocks; no case blows up, so no
# block writes a blowup_step chunk (all -1, the fill value): a legitimate absence
SPEC = SCALAR_SPEC.replace('"scalar.zarr"', '"s.zarr"') % {"block_seconds": 0.00003}
BLOCK = 3  # the block the tests damage


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An undamaged store (made once), and its spec."""
    folder = tmp_path_factory.mktemp("ref")
    (folder / "spec.toml").write_text(SPEC)
    out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=folder)
    assert out.returncode == 0, out.stderr
    return folder / "s.zarr"


@pytest.fixture
def store(reference, tmp_path) -> Path:
    """A copy of the reference store (to damage), with its spec beside it."""
    shutil.copytree(reference, tmp_path / "s.zarr")
    (tmp_path / "spec.toml").write_text(SPEC)
    return tmp_path / "s.zarr"


def chunk(store: Path, name: str, block: int = BLOCK) -> Path:
    """The file of variable ``name``'s chunk in ``block``."""
    from rnnlab.jobs.store import plan_of

    group = zarr.open_group(str(store), mode="r", use_consolidated=False)
    arr = group[name]
    if name == "block_done":
        return store / name / arr.metadata.encode_chunk_key((block,))
    sizes = dict(zip(arr.metadata.dimension_names, arr.shape, strict=True))
    plan = plan_of(dict(group.attrs), sizes)
    pos = np.unravel_index(block, plan.nblocks_per_dim)
    coords = (*(int(p) for p in pos), *(0,) * (arr.ndim - len(pos)))
    return store / name / arr.metadata.encode_chunk_key(coords)


def _flip(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x10
    file.write_bytes(bytes(data))


DAMAGE = {
    "deleted": lambda f: f.unlink(),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[:-9]),
    "grown": lambda f: f.write_bytes(f.read_bytes() + b"\0" * 7),
    "garbage": lambda f: f.write_bytes(os.urandom(f.stat().st_size + 3)),
    "emptied": lambda f: f.write_bytes(b""),
}


def test_an_undamaged_store_is_intact_and_a_chunk_left_unwritten_is_no_damage(reference):
    out = rnnlab("status", reference, "--verify", cwd=reference.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "damaged:  none (done blocks checked: 8; sizes and checksums)" in out.stdout
    assert not (reference / "blowup_step" / "c").exists()  # every value the fill value
    assert chunk(reference, "state_norm").is_file()


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_chunk_is_found_by_run_and_recomputed(store, reference, how):
    """The same command again finds the chunk (its size differs from the block's record),
    says so, recomputes exactly its block, and the store equals the undamaged one."""
    DAMAGE[how](chunk(store, "state_norm"))
    out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=store.parent)
    assert out.returncode == 0, out.stderr
    assert f"found 1 damaged chunk in 1 block (block {BLOCK}: state_norm/" in out.stdout
    assert "ran 1 blocks" in out.stdout and "(7 were done already)" in out.stdout
    assert_same_store(reference, store, ignore=())


def test_one_flipped_byte_is_found_by_verify_then_recomputed(store, reference):
    """A changed byte, size unchanged: sizes agree, the CRC-32C does not. xarray refuses to
    read the chunk; status --verify finds it, marks its block not done (exit 1), and
    `rnnlab run STORE` recomputes it."""
    import xarray as xr

    _flip(chunk(store, "response"))
    plain = rnnlab("status", "s.zarr", cwd=store.parent)
    assert plain.returncode == 0 and "damaged:  none" in plain.stdout  # sizes only
    with pytest.raises(ValueError, match="checksum"):
        xr.open_zarr(store, consolidated=False).response.values  # noqa: B018
    from rnnlab.analysis import DamagedStoreError, open_results

    with pytest.raises(DamagedStoreError, match=r"s\.zarr --verify` then `rnnlab run "):
        open_results(store, verify=True)
    out = rnnlab("status", "s.zarr", "--verify", cwd=store.parent)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"block {BLOCK}: response/" in out.stdout and "altered: its checksum" in out.stdout
    assert "marked not done: `rnnlab run s.zarr` recomputes them" in out.stdout
    assert "done:     7 of 8 blocks" in out.stdout
    again = rnnlab("run", "s.zarr", "--sync", "--no-progress", cwd=store.parent)
    assert again.returncode == 0, again.stderr
    assert "ran 1 blocks" in again.stdout
    assert_same_store(reference, store, ignore=())
    assert "damaged:  none" in rnnlab("status", "s.zarr", "--verify", cwd=store.parent).stdout


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_analysis_refuses_a_damaged_store_or_draws_what_there_is(store, reference):
    """open_results and `figures` refuse it (one line); allowed, the damaged block's cases
    read as NaN, every other value is the undamaged one, and the figures say so."""
    from rnnlab.analysis import DamagedStoreError, open_results
    from rnnlab.analysis.figures import scalar_nonlinear

    DAMAGE["truncated"](chunk(store, "state"))
    with pytest.raises(DamagedStoreError, match=f"block {BLOCK}: state/"):
        open_results(store)
    out = rnnlab("figures", "s.zarr", "--out", "rep", cwd=store.parent)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "damaged: 1 damaged chunk in 1 block" in lines[0] and "--allow-incomplete" in lines[0]
    ds = open_results(store, allow_incomplete=True).load()
    ref = open_results(reference).load()
    assert ds.attrs["missing_blocks"] == f"[{BLOCK}]" == ds.attrs["damaged_blocks"]
    for name in ("state", "state_norm", "growth_rate"):
        got, want = ds[name].values, ref[name].values
        lost = np.isnan(got) & ~np.isnan(want)
        assert lost.any(), name  # the block's cases, in every variable
        np.testing.assert_array_equal(got[~lost], want[~lost])
    fig = scalar_nonlinear(ds)
    assert "Incomplete store: 1 of 8 blocks missing (1 damaged)" in fig.get_suptitle()
    drawn = rnnlab("figures", "s.zarr", "--out", "rep", "--allow-incomplete", cwd=store.parent)
    assert drawn.returncode == 0, drawn.stderr
    page = (store.parent / "rep" / "index.html").read_text()
    assert "Incomplete store: 1 of 8 blocks missing" in page


def test_garbage_in_the_done_flags_or_the_record_means_recompute(store, reference):
    """A block_done chunk or a record row that fails its checksum is no traceback: the
    block is not done (or not recorded: damaged) and is recomputed."""
    chunk(store, "block_done", 2).write_bytes(b"\x07garbage")
    (store / "integrity" / "chunk_bytes" / "c" / "5" / "0").write_bytes(b"nonsense!")
    out = rnnlab("status", "s.zarr", cwd=store.parent)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "block 5: integrity/chunk_bytes not recorded" in out.stdout
    assert "missing:  2 blocks: 2, 5" in out.stdout
    again = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=store.parent)
    assert again.returncode == 0 and "ran 2 blocks" in again.stdout, again.stdout + again.stderr
    assert_same_store(reference, store, ignore=())


def _flip_in(file: Path, old: bytes, new: bytes) -> None:
    data = file.read_bytes()
    assert old in data
    file.write_bytes(data.replace(old, new, 1))


BEYOND = {
    # a variable's document lost; one bit of another's flipped (fill value -1 -> -0: every
    # case would read "blew up at step 0")
    "metadata lost": lambda s: (s / "state_norm" / "zarr.json").unlink(),
    "metadata flipped": lambda s: _flip_in(
        s / "blowup_step" / "zarr.json", b'"fill_value": -1', b'"fill_value": -0'
    ),
    "coordinate metadata lost": lambda s: (s / "w" / "zarr.json").unlink(),
    "done metadata lost": lambda s: (s / "block_done" / "zarr.json").unlink(),
    "record metadata lost": lambda s: (s / "integrity" / "zarr.json").unlink(),
    "coordinate truncated": lambda s: DAMAGE["truncated"](s / "w" / "c" / "0"),
    "coordinate flipped": lambda s: _flip(s / "w" / "c" / "0"),
}

ATTRIBUTES = {
    # the spec's text changed (its sha256 not): --overwrite from it would compute another sweep
    "spec": (b"steps = 300", b"steps = 900"),
    "plan": (b'"nblocks": 8', b'"nblocks": 9'),
    "record of the documents": (b'"metadata_crc32c": "{', b'"metadata_crc32c": "{{'),
    "block chunks": (b'{\\"activation\\": 1', b'{\\"activation\\": 2'),
}


@pytest.mark.parametrize("what", sorted(BEYOND))
def test_damage_beyond_the_blocks_is_repaired_by_overwrite(store, reference, what):
    """A metadata document lost or altered, a damaged coordinate, altered root attributes:
    recomputing blocks cannot mend them. status says so (sizes only, no --verify needed)
    with the command that repairs it, run and open_results refuse in one line, and that
    command (run --overwrite) gives the undamaged store back."""
    from rnnlab.analysis import DamagedStoreError, open_results

    BEYOND[what](store)
    out = rnnlab("status", "s.zarr", cwd=store.parent)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "`rnnlab run s.zarr --overwrite` recomputes it" in out.stdout, out.stdout
    assert "Traceback" not in out.stderr
    run = rnnlab("run", "s.zarr", "--sync", "--no-progress", cwd=store.parent)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert "damaged beyond its blocks" in lines[0] and "--overwrite" in lines[0]
    with pytest.raises(DamagedStoreError, match="--overwrite"):
        open_results(store, allow_incomplete=True)
    fixed = rnnlab("run", "s.zarr", "--sync", "--no-progress", "--overwrite", cwd=store.parent)
    assert fixed.returncode == 0, fixed.stderr
    assert_same_store(reference, store, ignore=())


@pytest.mark.parametrize("what", sorted(ATTRIBUTES))
def test_altered_root_attributes_are_not_trusted(store, reference, what):
    """The root's attributes (the spec, the plan, the integrity records) fail their checksum:
    nothing reads them (one line, no traceback), and the store's own spec is not used to
    recompute it: the spec file is (`run SPEC --store STORE --overwrite`)."""
    from rnnlab.analysis import DamagedStoreError, open_results

    _flip_in(store / "zarr.json", *ATTRIBUTES[what])
    fix = "recompute it from the spec file with `rnnlab run SPEC --store s.zarr --overwrite`"
    for args, code in ((("status", "s.zarr"), 1), (("run", "s.zarr", "--sync"), 2),
                       (("run", "spec.toml", "--sync"), 2),
                       (("figures", "s.zarr", "--out", "rep"), 2)):  # fmt: skip
        out = rnnlab(*args, cwd=store.parent)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == code and len(lines) == 1, (args, out.stdout, out.stderr)
        assert "attributes altered (their checksum)" in lines[0] or "spec altered" in lines[0]
        assert fix in lines[0], lines[0]
    with pytest.raises(DamagedStoreError, match="its own spec cannot be trusted"):
        open_results(store, allow_incomplete=True)
    out = rnnlab("run", "spec.toml", "--store", "s.zarr", "--sync", "--no-progress",
                 "--overwrite", cwd=store.parent)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert_same_store(reference, store, ignore=())


def _consolidated(store: Path, change) -> None:
    """Change the root document's consolidated copy of the metadata (parsed JSON)."""
    doc = json.loads((store / "zarr.json").read_bytes())
    change(doc["consolidated_metadata"]["metadata"])
    (store / "zarr.json").write_text(json.dumps(doc, indent=2))


CONSOLIDATED = {
    "a fill value": lambda m: m["blowup_step"].update(fill_value=7),
    "a made-up variable": lambda m: m.update(fake_var=dict(m["blowup_step"])),
}


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
@pytest.mark.parametrize("what", sorted(CONSOLIDATED))
def test_a_stale_consolidated_copy_is_not_read_and_is_consolidated_again(store, reference, what):
    """The root's consolidated copy of the documents altered: readers use the checked
    documents instead, and status consolidates the copy again."""
    from rnnlab.analysis import open_results

    _consolidated(store, CONSOLIDATED[what])
    ds = open_results(store)
    np.testing.assert_array_equal(ds.blowup_step.values, open_results(reference).blowup_step)
    assert set(ds.variables) == set(open_results(reference).variables)
    out = rnnlab("status", "s.zarr", cwd=store.parent)
    assert out.returncode == 1 and "consolidated copy differs" in out.stdout, out.stdout
    assert "consolidated again from its documents (checked): repaired" in out.stdout
    assert rnnlab("status", "s.zarr", cwd=store.parent).returncode == 0
    assert_same_store(reference, store, ignore=())


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
def test_missing_cases_are_nan_in_every_variable_never_a_fill_value(store):
    """Allowed to draw what there is, a missing block's integer and boolean summaries are NaN
    too: their fill values (-1, False) would read "never forgot", "never blew up"."""
    from rnnlab.analysis import classify, open_results
    from rnnlab.analysis.figures import memory_phase

    chunk(store, "block_done", 2).unlink()
    ds = open_results(store, allow_incomplete=True)
    lost = ds.growth_rate.isnull().compute()
    assert 0 < int(lost.sum()) < lost.size
    for name in ("memory_horizon", "blowup_step", "saturation_step", "bounded"):
        np.testing.assert_array_equal(ds[name].isnull().values, lost.values, err_msg=name)
    assert (classify(ds).values[lost.values] == -1).all()  # undetermined, not "stable memory"
    fig = memory_phase(ds, select={"bias": 0.0, "amplitude": 1.0})
    hidden = lost.sel(bias=0.0, amplitude=1.0).transpose("activation", "w").values
    assert len(fig.axes[0].texts) == hidden.size - int(hidden.sum())  # no label on a gap
    import matplotlib.pyplot as plt

    plt.close(fig)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for this process: by its permissions for a user, by a
    read-only bind mount for root (whom permissions do not bind)."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
        return
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_store_is_refused_in_one_line_and_left_alone(store, reference):
    """Resuming into a store that cannot be written: one line with the fix, exit 2, the
    store unchanged; status still reads it, and reports its damage without marking it."""
    from rnnlab.jobs import integrity

    from .test_faults import _tree

    integrity.mark_not_done(store, [6, 7])
    DAMAGE["deleted"](chunk(store, "state_norm", 1))
    before = _tree(store)
    with read_only(store):
        out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=store.parent)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert "store.path: s.zarr cannot be written (" in lines[0]
        assert "make it writable (chmod -R u+w s.zarr)" in lines[0]
        status = rnnlab("status", "s.zarr", cwd=store.parent)
        assert status.returncode == 1 and not status.stderr, status.stdout + status.stderr
        assert "block 1: state_norm/" in status.stdout and "not marked (" in status.stdout
        assert "done:     5 of 8 blocks" in status.stdout
    assert _tree(store) == before  # nothing written, nothing removed
    out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=store.parent)
    assert out.returncode == 0 and "ran 3 blocks" in out.stdout, out.stdout + out.stderr
    assert_same_store(reference, store, ignore=())


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A file system of ``size`` mounted on ``folder`` (tmpfs; root only), unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield lambda new: subprocess.run(
            ["mount", "-o", f"remount,size={new}", str(folder)], check=True
        )
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("size", ["48k", "400k"])
def test_a_full_disk_is_one_line_and_the_same_command_resumes(reference, tmp_path, size):
    """The disk fills up while the store is created (48 kB) or between blocks (400 kB):
    one line, exit 1, nothing half-made under the store's name; with room again the same
    command finishes the store, equal to one that never ran out."""
    disk = tmp_path / "disk"
    with small_disk(disk, size) as resize:
        (disk / "spec.toml").write_text(SPEC)
        out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=disk)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 1 and len(lines) == 1, out.stderr
        assert "No space left on device" in lines[0] and "run the same command again" in lines[0]
        assert not [p for p in disk.iterdir() if ".creating-" in p.name]
        if size == "48k":
            assert not (disk / "s.zarr").exists()
        else:
            assert "block " in lines[0] and "the blocks done are kept" in lines[0]
        resize("20m")
        again = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=disk)
        assert again.returncode == 0, again.stderr
        assert_same_store(reference, disk / "s.zarr", ignore=())


def test_a_run_killed_while_it_finalised_is_finalised_by_status(store, reference, tmp_path):
    """Killed between the end time and the consolidated metadata (the root document then
    has no consolidated copy at all): status finalises it, exit 0, no damage reported."""
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "spec.toml").write_text(SPEC)
    env = {**os.environ, "RNNLAB_FAULT": "finalise:1", "RNNLAB_FAULT_REACHED": str(folder / "r")}
    out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=folder, process=True, env=env)
    assert out.returncode == -9 and (folder / "r").read_text() == "finalise:1"
    status = rnnlab("status", "s.zarr", cwd=folder)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "finalised (end time, metadata)" in status.stdout and "damaged:  none" in status.stdout
    assert_same_store(reference, folder / "s.zarr", ignore=())
