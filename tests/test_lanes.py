"""The small vector kernel (engine/_lanes.py: n <= 16, cases in SIMD lanes) against closed
forms and the NumPy reference at the lengths users run, its lane groups (partial groups,
threads, lanes blowing up while others go on) and which kernel runs what.

The reference tests of test_rnn_reference.py run both vector kernels too (``kernel``)."""

import numpy as np
import pytest

from rnnlab.engine import _lanes, recurrent_matrix, simulate_rnn
from rnnlab.engine._tracking import plan_outputs
from rnnlab.engine.rnn import rnn_outputs, split_kernels

from .conftest import random_cases, run_both


def _orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q


@pytest.mark.parametrize("n", [3, 16, 64])  # 64: the layered kernel's
def test_a_linear_rotation_decays_as_rho_to_the_t_over_ten_thousand_steps(n):
    """W = rho Q (Q orthogonal), identity, an impulse along a unit C: ||h(t)|| = rho^t and
    ||dh(t)/dh(0)|| = rho^t exactly, so the growth rate is ln rho. At rho = 0.95 the state
    reaches 1e-223 by t = 10^4: its sum of squares leaves the safe range of float64 after
    t = 6700, where the kernel's norms fall back to the scaled sum, lane by lane (n = 64: the
    layered kernel, forward only)."""
    rhos = np.array([0.95, 0.99, 0.999, 1.0])
    W = np.stack([r * _orthogonal(n, s) for s, r in enumerate(rhos)])
    C = np.zeros((4, n))
    C[:, 0] = 1.0
    steps = 10_000
    res = simulate_rnn(W, C, activation="identity", steps=steps, num_records=200,
                       gradient="exact" if n <= 16 else "none", weight_norms=False)  # fmt: skip
    want = rhos[:, None] ** res.time
    assert res.time[-1] == steps - 1
    np.testing.assert_allclose(res["state_norm"], want, rtol=1e-10)
    assert (res["blowup_step"] == -1).all()
    if n <= 16:
        np.testing.assert_allclose(10.0 ** res["log10_gradient_norm"], want, rtol=1e-10)
        np.testing.assert_allclose(res["growth_rate"], np.log(rhos), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lanes_that_blow_up_stop_while_the_others_go_on(dtype):
    """Cases of one lane group blow up at different steps (identity, rho up to 3) or never:
    each case's blow-up step, state norms (NaN after it) and summaries are the NumPy
    reference's, as if it had run alone."""
    rng = np.random.default_rng(5)
    rhos = np.array([0.5, 1.5, 3.0, 0.9, 2.0, 1.7])
    W = np.stack([r * _orthogonal(4, s) for s, r in enumerate(rhos)])
    C = rng.standard_normal((6, 4))
    b = 0.1 * rng.standard_normal((6, 4))
    amp = np.ones(6)
    steps = 1800 if dtype == "float64" else 300  # float32 overflows from 3.4e38
    res, refs = run_both(W, C, b, amp, "identity", "step", steps=steps, dtype=dtype)
    blown = [int(r["blowup_step"]) for r in refs]
    assert sum(s >= 0 for s in blown) == 4 and len(set(blown)) == 5  # four, all different
    rtol = 1e-12 if dtype == "float64" else 1e-4
    # float32: the sums of W h near the float32 maximum can overflow a step apart
    slack = 0 if dtype == "float64" else 1
    for i, ref in enumerate(refs):
        got, want = res["state_norm"][i].astype(float), ref["state_norm"]
        blow = ref["blowup_step"]
        if blow < 0:
            assert res["blowup_step"][i] == -1 and np.isfinite(got).all()
        else:
            assert abs(res["blowup_step"][i] - blow) <= slack, (i, res["blowup_step"][i], blow)
            last = int(res["blowup_step"][i])
            assert np.isnan(got[last + 1 :]).all()  # stopped there
            want = want[: min(last, blow)]
            got = got[: min(last, blow)]
        fin = np.isfinite(got) | (dtype == "float64")  # a float32 norm above 3.4e38 reads inf
        np.testing.assert_allclose(got[fin], want[fin], rtol=rtol)
        assert res["bounded"][i] == ref["bounded"]


def test_many_groups_on_threads_give_each_case_its_own_result(rng):
    """150 cases (two full lane groups and a partial one) on 2 threads and on one: identical
    to the bit, and each case the reference's (a sample across the groups' edges)."""
    W, C, b, amp = random_cases(rng, 6, ncase=150)
    kw = dict(activation="tanh", steps=200, input="step", amplitude=amp, record="all")
    one = simulate_rnn(W, C, b, parallel=False, **kw)
    two = simulate_rnn(W, C, b, parallel=2, **kw)
    for name in one.data:
        np.testing.assert_array_equal(one[name], two[name], err_msg=name)
    pick = [0, 63, 64, 127, 128, 149]
    _, refs = run_both(W[pick], C[pick], b[pick], amp[pick], "tanh", "step", steps=200)
    for i, ref in zip(pick, refs, strict=True):
        assert one["blowup_step"][i] == ref["blowup_step"]
        np.testing.assert_allclose(one["state_norm"][i], ref["state_norm"], rtol=1e-12)
        np.testing.assert_allclose(one["log10_gradient_norm"][i], ref["log10_gradient_norm"],
                                   atol=1e-12)  # fmt: skip


def test_the_hidden_state_of_the_lanes_is_the_reference_trajectory(rng):
    W, C, b, amp = random_cases(rng, 5, ncase=3, radius=(0.5, 0.9))
    res, refs = run_both(W, C, b, amp, "sigmoid", "impulse", steps=50,
                         outputs=["hidden_state", "state_norm"])  # fmt: skip
    for i, ref in enumerate(refs):
        np.testing.assert_allclose(res["hidden_state"][i], ref["h"], rtol=1e-13)


def test_which_kernel_runs_what():
    """The lanes run n <= 16 with a Jacobian product of at most 16^3 multiply-adds a step;
    the Lyapunov spectrum, the memory capacity, larger n and larger products are the
    layered kernel's; the weight norms go with the lanes unless they do not run."""
    available, default = rnn_outputs(8)
    plan = plan_outputs(None, available, default)
    grad = {"log10_gradient_norm", "growth_rate"}
    lanes, layered = split_kernels(plan, 16, 16)
    assert set(lanes) == set(default) and layered == []
    lanes, layered = split_kernels(plan, 12, 30)  # 4320 a step
    assert set(layered) == grad and set(lanes) == set(default) - grad
    assert split_kernels(plan, 16, 1) == (list(default), [])
    assert split_kernels(plan, 17, 0) == ([], list(default))
    both = plan_outputs(["lyapunov_exponents", "memory_capacity", "state_norm", "spectral_radius"],
                        available, default)  # fmt: skip
    lanes, layered = split_kernels(both, 8, 8)
    assert lanes == ["state_norm", "spectral_radius"]
    assert set(layered) == {"lyapunov_exponents", "memory_capacity"}
    alone = plan_outputs(["lyapunov_exponents", "spectral_radius"], available, default)
    assert split_kernels(alone, 8, 8) == ([], ["lyapunov_exponents", "spectral_radius"])


def test_a_large_case_count_matches_the_layered_kernel(rng, monkeypatch):
    """A cross-check of the two kernels (each is checked against the reference elsewhere)
    at n = 16 on 200 cases of every default output, forward only, tanh: agreement to
    rounding (the order of W h's sum differs), but the growth rate of a response that
    fell to rounding noise long before the end."""
    W = np.stack([recurrent_matrix(16, "gaussian", s, spectral_radius=0.9) for s in range(200)])
    kw = dict(activation="tanh", steps=500, input="noise", gradient="none", weight_norms=False)
    lanes = simulate_rnn(W, **kw)
    monkeypatch.setattr(_lanes, "MAX_N", 0)
    layered = simulate_rnn(W, **kw)
    for name in lanes.data:
        if name == "response_growth_rate":  # the response fell to rounding noise (1e-16)
            continue
        np.testing.assert_allclose(lanes[name], layered[name], rtol=1e-10, atol=1e-13,
                                   err_msg=name)  # fmt: skip


def test_blas_runs_on_one_thread_in_the_kernels_whatever_ran_first():
    """The kernel threads call SciPy's BLAS (Numba's np.dot) on small products with BLAS held
    to one thread. A process whose first run needs no BLAS (the lanes, or a scalar run) made
    the thread controller before SciPy's BLAS was loaded, which then ran on every CPU in
    each kernel thread (the layered kernel 1.6x slower, measured). In a new process: a
    lanes run first, then inside the same context every BLAS library is at one thread."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from rnnlab.engine import simulate_rnn\n"
        "from rnnlab.engine._parallel import one_blas_thread\n"
        "simulate_rnn(np.full((2, 3, 3), 0.1), steps=5)\n"
        "from threadpoolctl import threadpool_info\n"
        "with one_blas_thread():\n"
        "    print(sorted({i['num_threads'] for i in threadpool_info()"
        " if i['user_api'] == 'blas'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[1]", out.stdout + out.stderr
