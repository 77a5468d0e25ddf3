"""Scripts just work: the README's tour, pasted into a file without a main guard and run
with ``python``, finishes with exit 0 and no traceback (its sweep's embedded cluster runs
its workers as threads, with a one-line notice); and how a script's main guard is found."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnnlab.jobs.runner import UNGUARDED_NOTICE

from .test_docs import ROOT, blocks

_PROBE = """
from rnnlab.jobs.runner import unguarded_main

def via_function():
    return unguarded_main()

print("top", unguarded_main())
print("top-function", via_function())
if __name__ == "__main__":
    print("guarded", unguarded_main())
    print("guarded-function", via_function())
"""


def _python(args, cwd, timeout=600):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_the_main_guard_is_found_from_the_running_statement(tmp_path):
    """Module-level code outside ``if __name__ == "__main__":`` (directly or through a
    function) is unguarded; inside it, guarded; ``python -c`` has no file to re-run."""
    (tmp_path / "probe.py").write_text(_PROBE)
    out = _python(["probe.py"], tmp_path)
    assert out.returncode == 0, out.stderr
    seen = dict(line.split() for line in out.stdout.splitlines())
    assert seen == {"top": "True", "top-function": "True", "guarded": "False",
                    "guarded-function": "False"}  # fmt: skip
    c = _python(["-c", "from rnnlab.jobs.runner import unguarded_main; print(unguarded_main())"],
                tmp_path)  # fmt: skip
    assert c.stdout.strip() == "False", c.stderr


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_readme_tour_runs_as_a_plain_script(tmp_path):
    """The tour (the README's first Python block) as ``tour.py``, no main guard, in a folder
    with the examples: exit 0, no traceback, the notice once, and the sweep's store whole."""
    import shutil

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    code = blocks("README.md", "python")
    assert len(code) == 1 and code[0][1] is None  # the tour is the README's one Python block
    tour = code[0][0]
    assert "run_sweep(" in tour and "__main__" not in tour
    (tmp_path / "tour.py").write_text(textwrap.dedent(tour))
    out = _python(["tour.py"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.stderr.count(UNGUARDED_NOTICE) == 1, out.stderr[-3000:]
    assert (Path(tmp_path) / "results" / "lecture_vector.zarr").is_dir()
