"""Training tasks: every target recomputed by hand from its inputs, the chance-level
baselines against Monte Carlo estimates, and data that depend on (seed, update, sequence)
only, not on how a batch is cut."""

import numpy as np
import pytest

from rnnlab.engine.tasks import TASKS, task_batch


@pytest.mark.parametrize("task", list(TASKS))
def test_a_sequence_does_not_depend_on_its_batch(task):
    x, y = task_batch(task, 30, seed=3, update=7, batch=20)
    x2, y2 = task_batch(task, 30, seed=3, update=7, batch=5, first=5)
    np.testing.assert_array_equal(x[5:10], x2)
    np.testing.assert_array_equal(y[5:10], y2)
    other = task_batch(task, 30, seed=4, update=7, batch=20)[0]
    later = task_batch(task, 30, seed=3, update=8, batch=20)[0]
    assert not np.array_equal(x, other) and not np.array_equal(x, later)
    steps = TASKS[task].steps(30)
    assert x.shape == (20, steps, TASKS[task].inputs)
    xs, ys = task_batch(task, 30, seed=[4, 3], update=7, batch=20)  # a case axis
    np.testing.assert_array_equal(xs, np.stack([other, x]))
    np.testing.assert_array_equal(ys[1], y)


def test_adding_targets_markers_and_baseline():
    """One marker in each half, the target the sum of the marked values; predicting 1 gives
    MSE Var(X1 + X2) = 2/12 = 1/6."""
    x, y = task_batch("adding", 50, seed=0, update=0, batch=20000)
    marks = x[:, :, 1]
    assert (marks[:, :25].sum(1) == 1).all() and (marks[:, 25:].sum(1) == 1).all()
    np.testing.assert_allclose(y[:, 0, 0], (x[:, :, 0] * marks).sum(1))
    mse = np.mean((y[:, 0, 0] - 1.0) ** 2)
    assert mse == pytest.approx(TASKS["adding"].baseline(50), abs=4 * 0.12 / np.sqrt(20000))
    assert 0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1


def test_hochreiter_schmidhuber_adding_convention():
    """Values in [-1, 1], the first marker among the first 10 steps, the second among the
    first T/2 - 1, target 0.5 + (X1 + X2)/4; predicting 0.5 gives MSE 2 (1/3) / 16 = 1/24."""
    x, y = task_batch("adding_hs97", 100, seed=1, update=2, batch=20000)
    marks = x[:, :, 1]
    pos = [np.flatnonzero(m) for m in marks]
    assert all(len(p) == 2 and max(p) < 49 and min(p) < 10 for p in pos)
    assert x[:, :, 0].min() < -0.99 and x[:, :, 0].max() > 0.99
    np.testing.assert_allclose(y[:, 0, 0], 0.5 + (x[:, :, 0] * marks).sum(1) / 4)
    mse = np.mean((y[:, 0, 0] - 0.5) ** 2)
    assert mse == pytest.approx(1 / 24, abs=4 * 0.04 / np.sqrt(20000))


def test_copy_layout_and_baseline():
    """10 symbols of 1..8, T - 1 blanks, the delimiter, 10 blanks; the targets are blank but
    for the last 10 steps, which repeat the symbols: the best constant guess costs ln 8 on
    those steps only, 10 ln 8 / (T + 20) on average."""
    T = 40
    x, y = task_batch("copy", T, seed=2, update=0, batch=4000)
    sym = x[:, :10].argmax(2)
    assert sym.min() == 1 and sym.max() == 8
    np.testing.assert_array_equal(y[:, -10:], sym)
    assert (y[:, :-10] == 0).all()
    assert (x[:, T + 9, 9] == 1).all() and (x[:, 10 : T + 9, 0] == 1).all()
    freq = np.bincount(sym.ravel(), minlength=9)[1:] / sym.size
    np.testing.assert_allclose(freq, 1 / 8, atol=4 * np.sqrt(1 / 8 * 7 / 8 / sym.size))
    assert TASKS["copy"].baseline(T) == pytest.approx(10 * np.log(8) / (T + 20))


def test_parity_and_binary_addition_targets_by_hand():
    x, y = task_batch("parity", 64, seed=5, update=1, batch=50)
    np.testing.assert_array_equal(y, np.cumsum(x[:, :, 0], axis=1).astype(int) % 2)
    assert abs(x.mean() - 0.5) < 0.05
    x, y = task_batch("binary_addition", 16, seed=5, update=1, batch=50)
    for row, want in zip(x, y, strict=True):
        a = sum(int(v) << i for i, v in enumerate(row[:, 0]))
        b = sum(int(v) << i for i, v in enumerate(row[:, 1]))
        bits = [((a + b) >> i) & 1 for i in range(16)]
        np.testing.assert_array_equal(want, bits)


def test_bad_task_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown task 'sorting'"):
        task_batch("sorting", 10, 0, 0, 1)
    with pytest.raises(ValueError, match="length must be an integer >= 2"):
        task_batch("adding", 1, 0, 0, 1)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        task_batch("parity", 10, 0, 0, 0)
    with pytest.raises(ValueError, match="seed: give one seed or a list"):
        task_batch("parity", 10, [], 0, 1)
