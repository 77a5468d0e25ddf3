"""The code in the README and in docs/ runs: every Python block (in order, one namespace per
file, in a folder where ``examples/`` and the ``results/`` stores it reads exist; the README's
tour, its one Python block, as a plain script in a new process: ``tests/test_scripts.py``),
and every TOML block that is a sweep spec validates. A block that cannot run here is marked in the
Markdown with ``<!-- test: skip (reason) -->`` on the line before it; the skips are counted."""

import re
import shutil
import textwrap
import tomllib
from pathlib import Path

import matplotlib
import pytest

from rnnlab.jobs.runner import run_sweep
from rnnlab.jobs.spec import parse_spec

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"(?:<!-- test: skip \((?P<skip>[^)]*)\) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S
)

#: The blocks that cannot run on this machine, and why (the test fails if this changes).
EXPECTED_SKIPS = {("docs/sweeps.md", "needs a SLURM cluster and dask-jobqueue")}


def blocks(name: str, lang: str):
    """(code, skip reason or None) of every ``lang`` block of a Markdown file, in order."""
    text = (ROOT / name).read_text()
    return [
        (textwrap.dedent(m["code"]), m["skip"]) for m in _BLOCK.finditer(text) if m["lang"] == lang
    ]


def test_the_skipped_blocks_are_the_expected_ones():
    skips = {
        (f, reason)
        for f in FILES
        for lang in ("python", "toml")
        for _, reason in blocks(f, lang)
        if reason
    }
    assert skips == EXPECTED_SKIPS


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder with the examples, where blocks write their results/."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _stores_read_by(code: str) -> set[str]:
    return set(re.findall(r"results/(lecture_\w+)\.zarr", code))


@pytest.mark.parametrize("name", [f for f in FILES if blocks(f, "python") and f != "README.md"])
def test_python_blocks_run(name, workdir):
    import matplotlib.pyplot as plt

    code = [(c, skip) for c, skip in blocks(name, "python")]
    for store in sorted(set().union(*(_stores_read_by(c) for c, _ in code))):
        if not (workdir / "results" / f"{store}.zarr").exists():
            run_sweep(workdir / "examples" / f"{store}.toml", sync=True)
    namespace = {"__name__": "__main__"}
    ran = 0
    for i, (source, skip) in enumerate(code):
        if skip:
            continue
        try:
            exec(compile(source, f"{name}, Python block {i + 1}", "exec"), namespace)
        finally:
            plt.close("all")
        ran += 1
    assert ran >= 1


@pytest.mark.parametrize("name", [f for f in FILES if blocks(f, "toml")])
def test_toml_specs_validate(name):
    for source, skip in blocks(name, "toml"):
        if skip:
            continue
        data = tomllib.loads(source)
        if {"model", "run", "store"} <= set(data):  # a whole spec, not a fragment
            parse_spec(data, source)


def test_the_outputs_table_of_the_docs_is_the_engines():
    from rnnlab.engine import OUTPUTS

    text = (ROOT / "docs" / "engine.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (per step|per case)[^|]* \| ([\w, -]+) \|$", text, re.M)
    documented = {name: tuple(t.strip() for t in needs.split(",")) for name, _, needs in rows}
    documented = {k: () if v == ("-",) else v for k, v in documented.items()}
    assert documented == {name: o.needs for name, o in OUTPUTS.items()}
