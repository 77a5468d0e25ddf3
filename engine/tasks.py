"""Long-term-dependency tasks for training, with their chance-level baselines.

Every batch is a pure function of ``(seed, update, sequence index)`` through the counter-based
generator of the noise input (:func:`rnnlab.engine._numerics.noise_uniform`), so a case's data
do not depend on how the cases are blocked or batched, and no data set is stored.

=================  ======  =======================================  ====================
task               inputs  target                                   baseline
=================  ======  =======================================  ====================
``adding``         2       at the last step: the sum of the two     MSE 1/6 (predict 1)
                           marked values (values U[0, 1], one
                           marker in each half; Le et al. 2015,
                           Arjovsky et al. 2016)
``adding_hs97``    2       0.5 + (X1 + X2) / 4, values U[-1, 1],    MSE 1/24 (predict
                           the first marker among the first 10      0.5)
                           steps, the second among the first
                           T/2 - 1 (Hochreiter & Schmidhuber 1997)
``copy``           10      10 symbols of 8, T - 1 blanks, a         cross-entropy
                           delimiter, 10 blanks: blank until the    10 ln 8 / (T + 20)
                           last 10 steps, then the symbols
                           (Arjovsky et al. 2016); T + 20 steps
``parity``         1       the parity of the bits so far, each      cross-entropy ln 2
                           step (the lecture's example)             (accuracy 1/2)
``binary_addition``2       the bit of a + b at each step, least     cross-entropy ln 2
                           significant bit first, with the carry    (accuracy 1/2)
=================  ======  =======================================  ====================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import jit
from ._numerics import noise_uniform
from .rnn import noise_keys

__all__ = ["TASKS", "Task", "task_batch"]


@dataclass(frozen=True)
class Task:
    """One task: its sizes, loss and chance-level baseline.

    Attributes
    ----------
    name : str
    inputs : int
        Input channels per step.
    outputs : int
        Readout size: 1 for a regression, the number of classes for a classification.
    loss : {"mse", "cross_entropy"}
    every_step : bool
        Whether the loss is taken at every step (else at the last step only).
    code : int
        The generator's task code.
    solved : float
        The loss below which the task counts as solved (regressions: Pascanu et al.'s
        squared error 0.04 per sequence is looser; this is the mean).
    """

    name: str
    inputs: int
    outputs: int
    loss: str
    every_step: bool
    code: int
    solved: float

    def steps(self, length: int) -> int:
        """Sequence steps for a task of length T (copy: T + 20)."""
        return length + 20 if self.name == "copy" else length

    def loss_steps(self, length: int) -> np.ndarray:
        """The steps where the loss is taken."""
        n = self.steps(length)
        return np.arange(n) if self.every_step else np.array([n - 1])

    def baseline(self, length: int) -> float:
        """The loss of the best constant guess (the chance level)."""
        return {
            "adding": 1.0 / 6.0,
            "adding_hs97": 1.0 / 24.0,
            "copy": 10.0 * np.log(8.0) / (length + 20),
            "parity": np.log(2.0),
            "binary_addition": np.log(2.0),
        }[self.name]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("adding", 2, 1, "mse", False, 0, 0.01),
        Task("adding_hs97", 2, 1, "mse", False, 1, 0.0025),
        Task("copy", 10, 9, "cross_entropy", True, 2, 0.01),
        Task("parity", 1, 2, "cross_entropy", True, 3, 0.01),
        Task("binary_addition", 2, 2, "cross_entropy", True, 4, 0.01),
    )
}


_P1 = np.uint64(1_000_003)  # the counter of (update, sequence, draw): distinct for every
_P2 = np.uint64(1_000_033)  # sequence index < 10^6 and draw < 10^6


@jit
def _uniform(key, update, seq, draw):
    """The ``draw``-th uniform of sequence ``seq`` of update ``update`` (a pure counter, all
    in uint64: mixing in a signed integer would make Numba compute in float64)."""
    return noise_uniform(key, (update * _P1 + np.uint64(seq)) * _P2 + np.uint64(draw))


@jit
def _index(key, update, seq, draw, n):
    return min(int(_uniform(key, update, seq, draw) * n), n - 1)


@jit
def _fill(code, keys, update, first, x, y_real, y_class):
    """Sequences ``first .. first + batch - 1`` of ``update`` of every case (its key) into
    x (cases, batch, steps, I), y_real (cases, batch, 1, 1), y_class (cases, batch, steps)."""
    for c in range(keys.size):
        _fill_case(code, keys[c], update, first, x[c], y_real[c], y_class[c])


@jit
def _fill_case(code, key, update, first, x, y_real, y_class):
    """One case's sequences."""
    batch, steps = x.shape[0], x.shape[1]
    eight = 0 * steps + 8  # an int64, not a literal 8 (which would compile _index once more)
    for b in range(batch):
        s = first + np.uint64(b)
        if code <= 1:  # the adding problems
            lo = -1.0 if code == 1 else 0.0
            for t in range(steps):
                x[b, t, 0] = lo + (1.0 - lo) * _uniform(key, update, s, t)
                x[b, t, 1] = 0.0
            if code == 0:
                half = steps // 2
                m1 = _index(key, update, s, steps, half)
                m2 = half + _index(key, update, s, steps + 1, steps - half)
            else:
                m1 = _index(key, update, s, steps, min(10, steps))
                m2 = _index(key, update, s, steps + 1, max(steps // 2 - 1, 1))
                if m2 == m1:
                    m2 = (m1 + 1) % max(steps // 2 - 1, 2)
            x[b, m1, 1] = 1.0
            x[b, m2, 1] = 1.0
            total = x[b, m1, 0] + x[b, m2, 0]
            y_real[b, 0, 0] = total if code == 0 else 0.5 + total / 4.0
        elif code == 2:  # copy: 10 symbols, length - 1 blanks, the delimiter, 10 blanks
            for t in range(steps):
                for c in range(10):
                    x[b, t, c] = 0.0
            for t in range(steps):
                y_class[b, t] = 0
            for t in range(10):
                sym = 1 + _index(key, update, s, t, eight)
                x[b, t, sym] = 1.0
                y_class[b, steps - 10 + t] = sym
            for t in range(10, steps):
                x[b, t, 0] = 1.0
            x[b, steps - 11, 0] = 0.0
            x[b, steps - 11, 9] = 1.0
        elif code == 3:  # parity of the bits so far
            p = 0
            for t in range(steps):
                bit = 1 if _uniform(key, update, s, t) < 0.5 else 0
                x[b, t, 0] = bit
                p ^= bit
                y_class[b, t] = p
        else:  # binary addition, least significant bit first
            carry = 0
            for t in range(steps):
                a = 1 if _uniform(key, update, s, 2 * t) < 0.5 else 0
                c = 1 if _uniform(key, update, s, 2 * t + 1) < 0.5 else 0
                x[b, t, 0] = a
                x[b, t, 1] = c
                total = a + c + carry
                y_class[b, t] = total & 1
                carry = total >> 1


def task_batch(task: str, length: int, seed, update: int, batch: int, first: int = 0):
    """One batch of a task: the sequences ``first .. first + batch - 1`` of ``update``.

    Parameters
    ----------
    task : str
        A name of :data:`TASKS`.
    length : int
        T (copy: T blanks between the symbols and the delimiter; T + 20 steps in all).
    seed : int or array_like of int
        The case's seed, or one seed per case (a leading case axis on the results).
    update : int
        The update index: the data depend on the seed, the update and the sequence index
        only.
    batch, first : int
        How many sequences, from which index.

    Returns
    -------
    inputs : numpy.ndarray
        ([cases,] batch, steps, inputs), float64.
    targets : numpy.ndarray
        Regressions: ([cases,] batch, 1, 1) float64 (the target at the last step);
        classifications: ([cases,] batch, nloss) int64 classes at the task's loss steps.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    t = TASKS[task]
    minimum = 2 if t.name.startswith("adding") else 1
    if int(length) != length or length < minimum:
        raise ValueError(f"length must be an integer >= {minimum} for {task}, got {length!r}")
    if batch < 1 or update < 0 or first < 0:
        raise ValueError("batch must be >= 1, update and first >= 0")
    seeds = np.asarray(seed, dtype=np.int64)
    if seeds.ndim > 1 or seeds.size == 0:
        raise ValueError(f"seed: give one seed or a list of them, got shape {seeds.shape}")
    steps, nc = t.steps(int(length)), seeds.size
    keys = noise_keys(seeds.reshape(-1), 1000 + t.code)
    x = np.zeros((nc, batch, steps, t.inputs))
    y_real = np.zeros((nc, batch, 1, 1))
    y_class = np.zeros((nc, batch, steps), dtype=np.int64)
    _fill(t.code, keys, np.uint64(update), np.uint64(first), x, y_real, y_class)
    y = y_real if t.loss == "mse" else np.ascontiguousarray(y_class[..., t.loss_steps(int(length))])
    return (x[0], y[0]) if seeds.ndim == 0 else (x, y)
