"""The scalar kernels and the small vector kernel (float64 and float32) vectorise on AVX2 and
on AVX-512, whatever CPU runs the tests.

A session runs on one CPU, so each target is compiled in a subprocess with Numba's
``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` set to it (and an empty cache, so that the
machine code is generated, not loaded), and the assertions read the generated assembly:
the lane loops' arithmetic in packed instructions of that width, and no float-integer
conversion (AVX2 has no vector one; the exp and the noise read integers from bits instead).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Haswell's features (AVX2 and FMA, no AVX-512), as LLVM names them.
AVX2 = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fsgsbase,+fxsr,+lzcnt,+mmx,"
    "+movbe,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt,"
    "-avx512f,-avx512dq,-avx512vl,-avx512bw,-avx512cd"
)
#: Skylake-X's AVX-512 on top; LLVM's tuning for it prefers 256-bit vectors unless told
#: otherwise (docs/engine.md: how to turn it off, and what it gains).
AVX512 = AVX2.split(",-avx512f")[0] + ",+avx512f,+avx512dq,+avx512cd,+avx512bw,+avx512vl"
TARGETS = {
    "avx2": ("haswell", AVX2, "ymm"),
    "avx512": ("skylake-avx512", AVX512 + ",-prefer-256-bit", "zmm"),
}
#: The host feature each target's code needs to run (the subprocess runs the kernel once).
NEEDS = {"avx2": "+avx2", "avx512": "+avx512f"}

_SCRIPT = r"""
import collections, json, os, re
os.nice(10)  # the suite's own tests come first
import numpy as np
from rnnlab.engine import simulate_rnn
from rnnlab.engine.activations import ACTIVATIONS
from rnnlab.engine.rnn import KERNELS

from rnnlab.engine import _lanes

def count(asm):
    counts = collections.Counter()
    for line in asm.splitlines():
        m = re.match(r"\s+(v\w+)\s+(.*)", line)
        if m:
            for reg in set(re.findall(r"%([xyz]mm)", m[2])) or {"none"}:
                counts[f"{m[1]} {reg}"] += 1
    return counts

out = {}
for dtype in ("float64", "float32"):
    simulate_rnn(np.full(4, 0.5), activation="tanh", steps=10, dtype=dtype)
    kernel = KERNELS[ACTIVATIONS["tanh"].code, np.dtype(dtype)]
    out[dtype] = count("\n".join(kernel.inspect_asm().values()))
    simulate_rnn(np.full((3, 4, 4), 0.1), activation="tanh", steps=10, dtype=dtype)
for sig in _lanes.run_block.signatures:
    out["lanes " + str(sig[0].dtype)] = count(_lanes.run_block.inspect_asm(sig))
print(json.dumps(out))
"""


#: The targets' subprocesses, started by :func:`start_compiling`.
_RUNS: dict[str, subprocess.Popen] = {}


def start_compiling(folder: Path) -> None:
    """Start compiling every target this CPU can run, each in a subprocess at low priority.

    ``conftest.py`` calls this as soon as the collection ends, so that they compile on the
    core the suite leaves idle while its first tests run (they took 68 s of the suite's wall
    time when started by the first test of this module); the fixture starts them otherwise.
    """
    import llvmlite.binding as ll

    host = ll.get_host_cpu_features().flatten().split(",")
    for target, (cpu, features, _) in TARGETS.items():
        if NEEDS[target] in host and target not in _RUNS:
            cache = Path(folder) / target
            cache.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": features,
                   "NUMBA_CACHE_DIR": str(cache)}  # fmt: skip
            pipe = subprocess.PIPE
            _RUNS[target] = subprocess.Popen([sys.executable, "-c", _SCRIPT], env=env, text=True,
                                             stdout=pipe, stderr=pipe)  # fmt: skip


def stop_compiling() -> None:
    """Kill the subprocesses still running (a session that ended before this module)."""
    for proc in _RUNS.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def assembly(tmp_path_factory):
    """{target: {dtype: {"instruction register-kind": count}}} of the scalar tanh kernels,
    each target compiled once in a subprocess (None: this CPU cannot run its code)."""
    start_compiling(tmp_path_factory.mktemp("isa"))  # nothing if conftest started them
    out = dict.fromkeys(TARGETS)
    for target, proc in _RUNS.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr[-3000:]
        out[target] = json.loads(stdout.strip().splitlines()[-1])
    return out


def _count(counts, prefix: str, reg: str) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix) and k.endswith(reg))


def _target(assembly, target, dtype):
    if assembly[target] is None:
        pytest.skip(f"this CPU cannot run {target} code (the subprocess runs the kernel once)")
    return assembly[target][dtype], TARGETS[target][2]


def _packed_fma(counts, suffix: str, reg: str) -> int:
    return sum(v for k, v in counts.items()
               if k.startswith("vf") and f"{suffix} " in k and k.endswith(reg))  # fmt: skip


@pytest.mark.parametrize("target", TARGETS)
def test_the_scalar_kernel_vectorises_at_the_targets_width(target, assembly):
    """The tanh kernel's fused multiply-adds (the recursion, the exp's polynomial, the
    gradient) and its divisions (tanh = E / (E + 2)) are packed at the target's width; on
    AVX2 nothing uses the 512-bit registers it does not have; no float64 -> int64 conversion
    is left, and int64 -> float64 ones only outside the lane loops (the step counter: 7 on
    AVX2; the noise's np.float64(z >> 11) made 132, one per lane and loop)."""
    counts, reg = _target(assembly, target, "float64")
    assert _packed_fma(counts, "pd", reg) >= 40, counts
    assert _count(counts, "vdivpd", reg) >= 1, counts
    if target == "avx2":
        assert not any(k.endswith("zmm") for k in counts), counts
    for conv in ("vcvttsd2si", "vcvttpd2qq", "vcvtqq2pd", "vcvtuqq2pd"):
        assert _count(counts, conv, "") == 0, (conv, counts)
    assert _count(counts, "vcvtsi2sd", "") <= 16, counts


@pytest.mark.parametrize("target", TARGETS)
def test_the_float32_kernel_is_float32_at_the_targets_width(target, assembly):
    """The float32 tanh kernel computes in float32: its FMAs and divisions packed single
    precision at the target's width (16 lanes per AVX-512 register, 8 per AVX2 one), and
    packed float32 <-> float64 conversions only where the float64 inputs (amplitudes, noise,
    arrays) enter outside the recursion's lane loops (measured 16 on AVX-512, 5 on AVX2;
    float64 activations and trackers made over 60)."""
    counts, reg = _target(assembly, target, "float32")
    assert _packed_fma(counts, "ps", reg) >= 40, counts
    assert _packed_fma(counts, "pd", reg) <= 8, counts
    assert _count(counts, "vdivps", reg) >= 1, counts
    wide = ("ymm", "zmm")
    packed = sum(_count(counts, c, r) for c in ("vcvtps2pd", "vcvtpd2ps") for r in wide)
    assert packed <= 24, counts
    if target == "avx2":
        assert not any(k.endswith("zmm") for k in counts), counts


@pytest.mark.parametrize("target", TARGETS)
def test_the_small_vector_kernel_vectorises_across_its_lanes(target, assembly):
    """engine/_lanes.py runs its cases in SIMD lanes: the matrix-vector product, the
    Jacobian product and the float64 tanh as packed FMAs at the target's width (at least 60
    in float64; in float32 the products as packed single-precision FMAs, 6 measured on
    AVX-512, and the tanh in float64 as documented); nothing 512 bits wide on AVX2."""
    _, reg = _target(assembly, target, "float64")
    lanes64, lanes32 = assembly[target]["lanes float64"], assembly[target]["lanes float32"]
    assert _packed_fma(lanes64, "pd", reg) >= 60, lanes64
    assert _packed_fma(lanes32, "ps", reg) >= 4, lanes32
    assert _packed_fma(lanes32, "pd", reg) >= 40, lanes32
    if target == "avx2":
        for c in (lanes64, lanes32):
            assert not any(k.endswith("zmm") for k in c), c
