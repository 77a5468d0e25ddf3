"""The first block's overhead on a fresh embedded cluster: with an empty Numba cache (cold)
and with a warm one, for the README's sweep (examples/lecture_vector.toml, 160 cases).

Each measurement runs in a new Python process (and so starts new Dask workers), with the
cache in a temporary folder: the cold run starts from nothing, the warm run in a second
process finds what the first wrote. Prints the seconds from ``run_sweep``'s start to the
first finished block and to the end.

    python benchmarks/bench_first_block.py [SPEC]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, sys, time
from rnnlab.jobs.runner import embedded_client, run_sweep

if __name__ == "__main__":
    client = embedded_client(2)
    times = []
    t0 = time.perf_counter()
    run_sweep(sys.argv[1], client, store=sys.argv[2], overwrite=True,
              progress=lambda done, total, cases, elapsed: times.append(time.perf_counter() - t0))
    total = time.perf_counter() - t0
    client.close()
    client.cluster.close()
    print(json.dumps({"first": times[0], "total": total, "blocks": len(times)}))
"""


def _run(spec: Path, cache: str, store: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "child.py"
        script.write_text(_CHILD)
        out = subprocess.run(
            [sys.executable, str(script), str(spec.absolute()), store],
            env=env, capture_output=True, text=True, cwd=folder,
        )  # fmt: skip
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    spec = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "examples/lecture_vector.toml"
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        for label in ("cold", "warm"):
            r = _run(spec, cache, str(Path(out) / f"{label}.zarr"))
            print(
                f"{label}: first block after {r['first']:.1f} s, all {r['blocks']} blocks "
                f"after {r['total']:.1f} s"
            )


if __name__ == "__main__":
    main()
