"""Nothing lost, nothing exposed: bad input answered in one line (exit 2) with nothing written
and nothing removed, rnnlab's own folders only ever replaced, the embedded cluster on
loopback, waits that end."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from .sweeps import SCALAR_SPEC, rnnlab, write_spec

SPEC = """
[model]
family = "rnn"
n = 1
activation = "tanh"
[grid]
w = [0.5, 1.5]
[run]
steps = 20
[store]
path = "%(path)s"
block_seconds = 0.001
"""


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes (what a bad command must leave alone)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def home(tmp_path):
    """A working directory with a user's files: a thesis, a folder of data, a spec."""
    (tmp_path / "thesis.tex").write_text("years of work")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.csv").write_text("1,2,3")
    (tmp_path / "notes.txt").write_text("a file")
    write_spec(tmp_path, SPEC, path="s.zarr")
    write_spec(tmp_path, SPEC, name="dot.toml", path=".")
    write_spec(tmp_path, SPEC, name="empty.toml", path="")
    write_spec(tmp_path, SPEC, name="up.toml", path="..")
    (tmp_path / "bomb.yaml").write_text(BOMB)
    (tmp_path / "steps.toml").write_text(
        SPEC.replace("steps = 20", 'steps = "100"') % {"path": "x"}
    )
    (tmp_path / "truth.toml").write_text(SPEC.replace("1.5]", "true]") % {"path": "x"})
    twice = SPEC.replace('activation = "tanh"\n', "").replace(
        "[grid]", '[grid]\nactivation = ["linear", "identity"]'
    )
    (tmp_path / "twice.toml").write_text(twice % {"path": "x"})
    (tmp_path / "list.yaml").write_text("- model\n- run\n")
    (tmp_path / "broken.toml").write_text("[model\nfamily = rnn\n")
    (tmp_path / "latin1.toml").write_bytes("[model]\nfamily = 'r\xe9seau'\n".encode("latin-1"))
    wide = SPEC.replace("n = 1", "n = 100000").replace("w = [0.5, 1.5]", "seed = [0, 1]")
    (tmp_path / "wide.toml").write_text(wide % {"path": "x"})
    with open(tmp_path / "big.toml", "wb") as f:
        f.truncate(1_100_000)
    return tmp_path


# a "billion laughs": 9 lines that expand to 9^9 strings
BOMB = "\n".join(
    [f'l0: &l0 ["{"ha" * 10}"]']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["model: {family: rnn, n: 1}", "grid: {w: *l8}", "run: {steps: 10}", "store: {path: b.zarr}"]
)


BAD = [
    # (arguments, what the one line must say)
    (("demo", "--out", "."), "--out: . is the working directory"),
    (("demo", "--out", "/"), "--out: / is the root folder"),
    (("demo", "--out", "~"), "--out: ~ is your home folder"),
    (("demo", "--out", ".."), "--out: .. is a parent of the working directory"),
    (("demo", "--out", ""), "--out: empty path"),
    (("demo", "--out", "mine"), "--out: mine exists and is not an rnnlab demo store"),
    (("demo", "--out", "notes.txt"), "--out: notes.txt is a file"),
    (("demo", "--steps", "0"), "--steps must be >= 1"),
    (("run", "spec.toml", "--sync", "--store", "."), "--store: . is the working directory"),
    (("run", "spec.toml", "--sync", "--store", ".", "--overwrite"), "is the working directory"),
    (("run", "spec.toml", "--sync", "--store", ""), "--store: empty path"),
    (("run", "spec.toml", "--sync", "--store", "/"), "--store: / is the root folder"),
    (("run", "spec.toml", "--sync", "--store", "notes.txt"), "--store: notes.txt is a file"),
    (("run", "spec.toml", "--sync", "--store", "mine"), "mine exists and is not an rnnlab store"),
    (("run", "spec.toml", "--sync", "--store", "mine", "--overwrite"), "is not an rnnlab store"),
    (("run", "dot.toml", "--sync"), "store.path: . is the working directory"),
    (("run", "dot.toml", "--sync", "--overwrite"), "store.path: . is the working directory"),
    (("run", "empty.toml", "--sync"), "store.path: empty path"),
    (("run", "up.toml", "--sync"), "store.path: .. is a parent of the working directory"),
    (("validate", "dot.toml"), "store.path: . is the working directory"),
    (("validate", "up.toml"), "store.path: .. is a parent of the working directory"),
    (("run", "spec.toml", "--timeout", "nan"), "--timeout: give a positive, finite number"),
    (("run", "spec.toml", "--timeout", "-1"), "--timeout: give a positive, finite number"),
    (("run", "spec.toml", "--timeout", "soon"), "--timeout: not a number of seconds"),
    (("run", "spec.toml", "--local", "0"), "--local must be >= 1"),
    (("run", "spec.toml", "--frobnicate"), "unrecognized arguments: --frobnicate"),
    (("report", "spec.toml", "--sync", "--out", "."), "--out: . is the working directory"),
    (("report", "spec.toml", "--sync", "--out", "mine"), "mine exists and is not an rnnlab"),
    (("report", "spec.toml", "--sync", "--out", "notes.txt"), "--out: notes.txt is a file"),
    (("validate", "bomb.yaml"), "YAML aliases (*name) are not allowed in a spec"),
    (("run", "bomb.yaml", "--sync"), "YAML aliases (*name) are not allowed in a spec"),
    (("validate", "latin1.toml"), "latin1.toml: not UTF-8 text"),
    (("validate", "big.toml"), "big.toml: 1,100,000 bytes is not a spec"),
    (("validate", "nothing.toml"), "nothing.toml: cannot read the spec"),
    (("validate", "steps.toml"), "run.steps: Input should be a valid integer, got '100'"),
    (("validate", "truth.toml"), "grid.w: mixes numbers and true/false"),
    (("validate", "twice.toml"), "grid.activation: repeated values"),
    (("validate", "list.yaml"), "list.yaml: the spec must be a table of tables"),
    (("validate", "broken.toml"), "broken.toml: not valid TOML"),
    (("status", "notes.txt"), "notes.txt: not an rnnlab sweep store"),
    (("status", "nowhere.zarr"), "nowhere.zarr: no such store"),
    (("figures", "nowhere.zarr", "--out", "r"), "no such store"),
    (("figures", "mine", "--out", "r"), "mine: not a Zarr store"),
    (("run", "spec.toml", "--local", "-3"), "--local must be >= 1"),
    (("run", "mine", "--sync"), "mine: a folder that is not an rnnlab store"),
    (("validate", "mine"), "mine: a folder that is not an rnnlab store"),
    (("status", "mine", "--verify"), "mine: not an rnnlab sweep store"),
    (("validate", "wide.toml"), "model.n: one case (n = 100000) needs about"),
    (("run", "wide.toml", "--sync"), "more than half of this machine's"),
    (("figures", "nowhere.zarr", "--out", "r", "--allow-incomplete"), "no such store"),
    (("run", "spec.toml", "--dashboard", "nonsense"), "--dashboard: give HOST:PORT"),
    (("run", "spec.toml", "--dashboard", "h:99999"), "--dashboard: give HOST:PORT"),
    (("run", "spec.toml", "--dashboard", "192.0.2.1:8787"), "--dashboard: cannot listen on"),
    (("report", "spec.toml", "--dashboard", "192.0.2.1:0"), "--dashboard: cannot listen on"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(home, args, message):
    before = _tree(home)
    out = rnnlab(*args, cwd=home)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error: "), out.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in out.stdout + out.stderr
    assert _tree(home) == before  # nothing written, nothing removed
    assert sorted(p.name for p in home.iterdir()) == sorted(before_names(before))


def before_names(tree: dict[str, bytes]) -> set[str]:
    return {Path(name).parts[0] for name in tree}


def test_only_rnnlab_folders_are_replaced(home):
    """A store, a report and a demo store are replaced by their own command; each refuses
    to replace the others (the markers differ)."""
    assert rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=home).returncode == 0
    again = rnnlab("run", "spec.toml", "--sync", "--no-progress", "--overwrite", cwd=home)
    assert again.returncode == 0, again.stderr
    assert rnnlab("figures", "s.zarr", "--out", "rep", cwd=home).returncode == 0
    assert rnnlab("figures", "s.zarr", "--out", "rep", cwd=home).returncode == 0  # replaced
    for args in (("demo", "--out", "s.zarr"), ("demo", "--out", "rep")):
        out = rnnlab(*args, "--steps", "5", cwd=home)
        assert out.returncode == 2 and "is not an rnnlab demo store" in out.stderr
    out = rnnlab("figures", "s.zarr", "--out", "s.zarr", cwd=home)
    assert out.returncode == 2 and "is not an rnnlab report" in out.stderr
    out = rnnlab("run", "spec.toml", "--sync", "--store", "rep", "--overwrite", cwd=home)
    assert out.returncode == 2 and "is not an rnnlab store" in out.stderr
    assert (home / "rep" / "index.html").is_file() and (home / "s.zarr" / "zarr.json").is_file()


def test_the_demo_replaces_its_own_store_and_writes_into_an_empty_folder(home):
    (home / "empty").mkdir()
    for _ in range(2):
        out = rnnlab("demo", "--out", "empty", "--steps", "5", cwd=home)
        assert out.returncode == 0, out.stderr
    assert (home / "empty" / "scalar_tanh").is_dir()
    assert not [p for p in home.iterdir() if ".partial-" in p.name]  # no staging left


def test_a_creation_killed_earlier_leaves_nothing_in_the_way(home):
    """A store is built beside its place and renamed into it: a folder left by a killed
    creation (its process gone) is neither the store nor in the way, and is cleaned up."""
    stale = home / f".s.zarr.creating-{_dead_pid()}"
    stale.mkdir()
    (stale / "zarr.json").write_text("{}")
    out = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=home)
    assert out.returncode == 0, out.stderr
    assert not stale.exists()
    assert not [p for p in home.iterdir() if ".creating-" in p.name]


def _dead_pid() -> int:
    pid = 2**22 - 1
    while psutil.pid_exists(pid):
        pid -= 1
    return pid


def test_a_missing_scheduler_file_waits_for_timeout_only(home):
    t0 = time.monotonic()
    out = rnnlab("run", "spec.toml", "--scheduler-file", "nowhere.json", "--timeout", "1", cwd=home)
    assert out.returncode == 2 and "no Dask scheduler answered at nowhere.json" in out.stderr
    assert time.monotonic() - t0 < 10
    assert not (home / "s.zarr").exists()


def test_a_cluster_that_does_not_start_ends_by_timeout(home):
    """Workers that take 60 s to start (a preload that sleeps): the embedded cluster's start
    ends after --timeout with one line (exit 1), nothing written, no process left."""
    (home / "slowstart.py").write_text(
        "import time\n\ndef dask_setup(worker):\n    time.sleep(60)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(home),
        "DASK_DISTRIBUTED__WORKER__PRELOAD": '["slowstart"]',
    }
    t0 = time.monotonic()
    out = rnnlab("run", "spec.toml", "--local", "1", "--timeout", "2", cwd=home, process=True,
                 env=env)  # fmt: skip
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert "the embedded cluster did not start within 2 s" in lines[0]
    assert time.monotonic() - t0 < 30
    assert not (home / "s.zarr").exists()
    assert not [p for p in psutil.process_iter() if "slowstart" in _environ(p)]  # all ended


def _environ(proc) -> str:
    try:
        return str(proc.environ())
    except (psutil.Error, OSError):
        return ""


def test_the_embedded_cluster_listens_on_loopback_only():
    """Every socket the scheduler, the nannies, the workers and the dashboard listen on is
    bound to 127.0.0.1 (read from the operating system, not from the printed link)."""
    from rnnlab.jobs.runner import embedded_client

    client = embedded_client(2)
    try:
        procs = [psutil.Process(os.getpid()), *psutil.Process(os.getpid()).children(True)]
        listening = [
            c.laddr for p in procs for c in p.net_connections("inet") if c.status == "LISTEN"
        ]
        link = client.dashboard_link
    finally:
        client.close()
        client.cluster.close()
    assert len(listening) >= 5, listening  # scheduler, dashboard, 2 nannies, 2 workers
    assert {a.ip for a in listening} == {"127.0.0.1"}, listening
    assert link.startswith("http://127.0.0.1:")
    assert int(link.split(":")[2].split("/")[0]) in {a.port for a in listening}


def test_the_dashboard_can_be_turned_off(home):
    out = rnnlab(
        "run", "spec.toml", "--local", "1", "--dashboard", "off", "--no-progress", cwd=home
    )
    assert out.returncode == 0, out.stderr
    assert "Dask dashboard" not in out.stdout


def test_figures_of_stores_with_the_same_name_keep_both(home):
    """a/s.zarr and b/s.zarr: each gets its own figures, labelled with its path."""
    from rnnlab.analysis import write_report
    from rnnlab.jobs.runner import run_sweep

    for sub in ("a", "b"):
        run_sweep(home / "spec.toml", store=home / sub / "s.zarr", sync=True)
    rep = write_report([home / "a" / "s.zarr", home / "b" / "s.zarr"], home / "r", formats=("png",))
    stores = {f["store"] for f in rep.figures}
    assert stores == {"a/s.zarr", "b/s.zarr"}, stores
    files = [x for f in rep.figures for x in f["files"]]
    assert len(files) == len(set(files)) and all((home / "r" / x).is_file() for x in files)
    html = (home / "r" / "index.html").read_text()
    assert f"Store: {home / 'a' / 's.zarr'}." in html and f"Store: {home / 'b' / 's.zarr'}." in html


def _unfinalise(store: Path) -> None:
    """The state a run killed after its last block leaves: every block done, no end time."""
    import zarr

    group = zarr.open_group(str(store), mode="r+", use_consolidated=False)
    group.attrs["end_time"] = ""
    zarr.consolidate_metadata(str(store))


@pytest.mark.filterwarnings("ignore:Consolidated metadata")
@pytest.mark.parametrize("command", ["run", "status"])
def test_a_run_killed_after_its_last_block_is_finalised_by_the_next_command(home, command):
    from rnnlab.analysis import open_results

    assert rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=home).returncode == 0
    _unfinalise(home / "s.zarr")
    assert not open_results(home / "s.zarr").attrs["end_time"]
    args = ("run", "spec.toml", "--sync") if command == "run" else ("status", "s.zarr")
    out = rnnlab(*args, cwd=home)
    assert out.returncode == 0, out.stderr
    assert "finalised (end time, metadata)" in out.stdout
    assert open_results(home / "s.zarr").attrs["end_time"]  # consolidated copy too
    again = rnnlab(*args, cwd=home)
    assert "finalised" not in again.stdout  # once


def test_a_flood_of_problems_is_cut_short(home):
    values = ", ".join(['"x"'] * 5000)
    (home / "many.toml").write_text(
        SPEC.replace("w = [0.5, 1.5]", f"w = [{values}]") % {"path": "m"}
    )
    out = rnnlab("validate", "many.toml", cwd=home)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 21, len(lines)
    assert lines[-1].startswith("rnnlab: error: ... and ") and "more problems" in lines[-1]
    assert max(map(len, lines)) < 600


def test_one_writer_per_store_and_a_killed_writers_lock_is_taken_over(tmp_path):
    """A run stopped mid-sweep (SIGSTOP at a fault point: alive, holding the lock) makes a
    second run on the store refuse in one line naming it; once the holder is killed
    (SIGKILL: no clean-up at all), the next run takes the lock over and finishes the store,
    equal to an uninterrupted run."""
    import signal
    import subprocess

    from .sweeps import assert_same_store

    for name in ("ref", "run"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "spec.toml").write_text(KILL_SPEC)
    assert rnnlab("run", "spec.toml", "--sync", cwd=tmp_path / "ref").returncode == 0
    folder = tmp_path / "run"
    env = {
        **os.environ,
        "RNNLAB_FAULT": "between_blocks:3",
        "RNNLAB_FAULT_SIGNAL": "STOP",
        "RNNLAB_FAULT_REACHED": str(folder / "reached.txt"),
    }
    code = "import sys; from rnnlab.jobs.cli import main; sys.exit(main(sys.argv[1:]))"
    first = subprocess.Popen(
        [sys.executable, "-c", code, "run", "spec.toml", "--sync", "--no-progress"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (folder / "reached.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (folder / "reached.txt").read_text() == "between_blocks:3"
        second = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=folder)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert f"is being written by another run (pid {first.pid} on " in lines[0]
        (folder / "link.zarr").symlink_to("s.zarr")  # the same store by another name
        for args in (("link.zarr",), ("spec.toml", "--store", "./link.zarr")):
            via = rnnlab("run", *args, "--sync", "--no-progress", cwd=folder)
            assert via.returncode == 2 and f"(pid {first.pid} on " in via.stderr, via.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(60)
    third = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=folder)
    assert third.returncode == 0, third.stderr
    assert "ran 5 blocks" in third.stdout and "(3 were done already)" in third.stdout
    assert_same_store(tmp_path / "ref" / "s.zarr", folder / "s.zarr", ignore=())
    assert not list(folder.glob(".*.lock.json"))  # released, and the note of its holder removed


HUGE = """
[model]
family = "rnn"
n = 1
[grid]
activation = ["tanh", "relu"]
w = {start = 0.5, stop = 1.5, num = 1000000}
bias = {start = -1, stop = 1, num = 1000}
amplitude = {start = -1, stop = 1, num = 500}
[run]
steps = 1000
record = "none"
[store]
path = "huge.zarr"
%(extra)s
"""


def _planned(path: Path):
    """open_sweep of a spec: (outcome, seconds, peak bytes traced)."""
    import tracemalloc

    from rnnlab.jobs.runner import open_sweep
    from rnnlab.jobs.spec import SpecError

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        outcome = open_sweep(path)
    except SpecError as err:
        outcome = err
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, seconds, peak


def test_a_grid_of_1e12_cases_is_answered_without_materialising_it(tmp_path):
    """10^12 cases: refused for its size (80 TB) in one line; with store.max_bytes raised,
    refused for its blocks (each holds at most BLOCK_BYTES of working memory, so it would
    take over MAX_BLOCKS of them); 10^11 cases are accepted within MAX_BLOCKS blocks. Each
    answer comes in well under a second, with a few MB traced."""
    from rnnlab.jobs.store import MAX_BLOCKS

    (tmp_path / "huge.toml").write_text(HUGE % {"extra": ""})
    out = rnnlab("validate", "huge.toml", cwd=tmp_path)
    assert out.returncode == 2 and "store.max_bytes: the store would hold about" in out.stderr
    (tmp_path / "huge.toml").write_text(HUGE % {"extra": "max_bytes = 1e15"})
    err, seconds, peak = _planned(tmp_path / "huge.toml")
    assert "blocks of at most" in str(err) and f"more than {MAX_BLOCKS:,}" in str(err)
    assert seconds < 1.0 and peak < 50e6, (seconds, peak)
    (tmp_path / "tenth.toml").write_text(
        HUGE.replace("num = 1000000", "num = 100000") % {"extra": "max_bytes = 1e15"}
    )
    (_, grid, plan, _), seconds, peak = _planned(tmp_path / "tenth.toml")
    assert grid.size == 10**11 and 0 < plan.nblocks <= MAX_BLOCKS
    assert seconds < 1.0 and peak < 50e6, (seconds, peak)
    assert not list(tmp_path.glob("huge.zarr*"))


def test_blocks_far_smaller_than_their_overhead_are_coarsened(tmp_path):
    from rnnlab.jobs.runner import open_sweep
    from rnnlab.jobs.store import MAX_BLOCKS

    text = SPEC.replace("w = [0.5, 1.5]", "w = {start = 0, stop = 1, num = 1000000}")
    (tmp_path / "tiny.toml").write_text(text.replace("0.001", "1e-9") % {"path": "t.zarr"})
    _, grid, plan, _ = open_sweep(tmp_path / "tiny.toml")
    assert grid.size == 10**6 and MAX_BLOCKS // 2 < plan.nblocks <= MAX_BLOCKS


# -- kills at every kind of moment: the same command again gives the uninterrupted store -----

# the scalar sweep of the sweep tests, cut into 8 blocks
KILL_SPEC = SCALAR_SPEC.replace('"scalar.zarr"', '"s.zarr"') % {"block_seconds": 0.00003}

# 20 kills: the creation, every kind of moment inside and between the 8 blocks (the last
# block's end included: a complete store not yet finalised), and the finalisation
KILLS = [("create", 1), ("finalise", 1)] + [
    (point, k)
    for point in ("block_data", "block_done", "between_blocks")
    for k in (1, 2, 3, 5, 7, 8)
]
# make test kills at every point once (the last block's end included); make test-all all 20
EACH_POINT = [
    ("create", 1),
    ("block_data", 2),
    ("block_done", 5),
    ("between_blocks", 8),
    ("finalise", 1),
]


def _killed_run(folder: str, point: str | None, k: int) -> None:
    """In a child process: ``rnnlab run`` with the fault armed (it kills itself), or
    without one (``point`` None: the same command again)."""
    from rnnlab.jobs.cli import main

    os.chdir(folder)
    if point is not None:
        os.environ["RNNLAB_FAULT"] = f"{point}:{k}"
        os.environ["RNNLAB_FAULT_REACHED"] = str(Path(folder) / "reached.txt")
    sys.exit(main(["run", "spec.toml", "--sync", "--no-progress"]))


def _kill_all(jobs: list[tuple[Path, str | None, int]]) -> list[int]:
    """Run every job in its own real process, 4 at a time; their exit codes.

    The processes are forked from a server that imported rnnlab once (no threads yet), so
    that each starts in milliseconds instead of seconds of imports.
    """
    import multiprocessing as mp

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests._preload_scalar"])
    codes = []
    for start in range(0, len(jobs), 4):
        procs = [
            ctx.Process(target=_killed_run, args=(str(f), p, k))
            for f, p, k in jobs[start : start + 4]
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(120)
            codes.append(proc.exitcode)
    return codes


@pytest.mark.parametrize(
    "kills",
    [
        pytest.param(EACH_POINT, id="each-point"),
        pytest.param(KILLS, id="20-kills", marks=pytest.mark.slow),
    ],
)
def test_a_run_killed_at_any_moment_is_finished_by_the_same_command(tmp_path, kills):
    """SIGKILL (no clean-up) at each named fault-injection point (20 times in all in the
    exhaustive tier, every point once in make test); each point
    is proven reached; the same command then finishes the store, equal bit for bit to an
    uninterrupted run, finalised, with nothing left behind."""
    from rnnlab.analysis import open_results
    from rnnlab.jobs.faults import POINTS
    from rnnlab.jobs.spec import load_spec
    from rnnlab.jobs.store import plan_blocks

    from .sweeps import assert_same_store

    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "spec.toml").write_text(KILL_SPEC)
    spec, grid = load_spec(tmp_path / "ref" / "spec.toml")
    assert plan_blocks(spec, grid).nblocks == 8
    assert {p for p, _ in kills} == set(POINTS) and len(KILLS) >= 20
    ref = rnnlab("run", "spec.toml", "--sync", "--no-progress", cwd=tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    folders = []
    for point, k in kills:
        folder = tmp_path / f"{point}-{k}"
        folder.mkdir()
        (folder / "spec.toml").write_text(KILL_SPEC)
        folders.append(folder)
    codes = _kill_all([(f, p, k) for f, (p, k) in zip(folders, kills, strict=True)])
    for folder, (point, k), code in zip(folders, kills, codes, strict=True):
        assert code == -9, (point, k, code)  # killed by SIGKILL, by itself
        assert (folder / "reached.txt").read_text() == f"{point}:{k}"
    again = _kill_all([(f, None, 0) for f in folders])  # the same command, unarmed
    for folder, (point, k), code in zip(folders, kills, again, strict=True):
        assert code == 0, (point, k, code)
        assert_same_store(tmp_path / "ref" / "s.zarr", folder / "s.zarr", ignore=())
        assert open_results(folder / "s.zarr").attrs["end_time"], (point, k)
        left = {p.name for p in folder.iterdir()} - {"spec.toml", "reached.txt", "s.zarr"}
        assert left <= {".s.zarr.lock"}, (point, k, left)


def test_a_closed_output_pipe_ends_a_command_quietly(tmp_path):
    """``rnnlab validate SPEC | head -1``: the console script stops at the closed pipe with
    no error line (SIGPIPE, as Unix tools do)."""
    import subprocess

    script = Path(sys.executable).parent / "rnnlab"
    spec = write_spec(tmp_path, SCALAR_SPEC)
    out = subprocess.run(f"'{script}' validate '{spec}' | head -c 10", shell=True, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout == "spec:     " and out.stderr == ""
