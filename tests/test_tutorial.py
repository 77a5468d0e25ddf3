"""The tutorial notebook runs from top to bottom in a real Jupyter kernel (nbclient), in a
fresh folder, and is kept without outputs in the repository. Its cells assert every claim
its text makes, so a claim that stops being true fails here."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from rnnlab.jobs.runner import UNGUARDED_NOTICE

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tutorial.ipynb"


def test_the_tutorial_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_the_tutorial_runs_in_a_kernel(tmp_path):
    """Every cell, in order, in a python3 kernel started in an empty folder (the sweep
    writes its store there): no error, no warning, and the sweep's embedded cluster on
    worker processes (a kernel's main module is guarded)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    stderr = [
        o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr"
    ]  # fmt: skip
    assert not any("Warning" in s or "Traceback" in s for s in stderr), stderr
    assert not any(UNGUARDED_NOTICE in s for s in stderr)  # a kernel gets worker processes
    assert (tmp_path / "results" / "tutorial.zarr").is_dir()
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if "image/png" in o.get("data", {})]  # fmt: skip
    assert len(figures) >= 3
