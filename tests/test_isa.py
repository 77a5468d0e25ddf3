"""The scalar kernel vectorises on AVX2 and on AVX-512, whatever CPU runs the tests.

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
import collections, json, re
import numpy as np
from rnnlab.engine import simulate_rnn
from rnnlab.engine.activations import ACTIVATIONS
from rnnlab.engine.rnn import KERNELS

simulate_rnn(np.full(4, 0.5), activation="tanh", steps=10)
asm = "\n".join(KERNELS[ACTIVATIONS["tanh"].code].inspect_asm().values())
counts = collections.Counter()
for line in asm.splitlines():
    m = re.match(r"\s+(v\w+)\s+(.*)", line)
    if m:
        for reg in set(re.findall(r"%([xyz]mm)", m[2])) or {"none"}:
            counts[f"{m[1]} {reg}"] += 1
print(json.dumps(counts))
"""


def _assembly_counts(cpu: str, features: str, cache) -> dict[str, int]:
    """{"instruction register-kind": count} of the scalar tanh kernel compiled for a CPU."""
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": features,
           "NUMBA_CACHE_DIR": str(cache)}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _count(counts, prefix: str, reg: str) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix) and k.endswith(reg))


@pytest.mark.parametrize("target", TARGETS)
def test_the_scalar_kernel_vectorises_at_the_targets_width(target, tmp_path):
    """The tanh kernel's fused multiply-adds (the recursion, the exp's polynomial, the
    gradient) and its divisions (tanh = E / (E + 2)) are packed at the target's width; on
    AVX2 nothing uses the 512-bit registers it does not have; no float64 -> int64 conversion
    is left, and int64 -> float64 ones only outside the lane loops (the step counter: 7 on
    AVX2; the noise's np.float64(z >> 11) made 132, one per lane and loop)."""
    import llvmlite.binding as ll

    if NEEDS[target] not in ll.get_host_cpu_features().flatten().split(","):
        pytest.skip(f"this CPU cannot run {target} code (the subprocess runs the kernel once)")
    cpu, features, reg = TARGETS[target]
    counts = _assembly_counts(cpu, features, tmp_path)
    packed_fma = sum(v for k, v in counts.items()
                     if k.startswith("vf") and "pd " in k and k.endswith(reg))  # fmt: skip
    assert packed_fma >= 40, counts
    assert _count(counts, "vdivpd", reg) >= 1, counts
    if target == "avx2":
        assert not any(k.endswith("zmm") for k in counts), counts
    for conv in ("vcvttsd2si", "vcvttpd2qq", "vcvtqq2pd", "vcvtuqq2pd"):
        assert _count(counts, conv, "") == 0, (conv, counts)
    assert _count(counts, "vcvtsi2sd", "") <= 16, counts
