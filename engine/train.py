"""Training many recurrent networks at once: exact BPTT (:func:`rnnlab.engine.bptt`), gradient
clipping and the usual optimisers, on the tasks of :mod:`rnnlab.engine.tasks`.

Every case is its own network (its seed draws its weights and its data), and all cases of a
call take their update together: one :func:`~rnnlab.engine.bptt` call per update computes
every case's loss and gradient (the cases run in parallel in the kernel); clipping and the
optimiser step are array operations over the case axis. A case whose loss or gradient stops
being finite has diverged: it is frozen there and recorded as such, never raised.

Clipping (Pascanu et al. 2013): ``"norm"`` rescales the whole gradient (every weight of the
network and the readout) to the threshold when its norm exceeds it (their algorithm 1);
``"value"`` clips each element to [-threshold, threshold]. Optimisers: ``"sgd"``,
``"momentum"`` (heavy ball, v <- mu v - lr g), ``"nesterov"`` (Sutskever et al. 2013's form,
as torch.optim.SGD(nesterov=True)) and ``"adam"`` (Kingma & Ba 2015, torch's defaults).
"""

from __future__ import annotations

import numpy as np

from ._validate import check_choice
from .bptt import bptt
from .rnn import record_steps
from .tasks import TASKS, task_batch
from .weights import CELL_GATES, case_rng, init_layers

__all__ = [
    "CLIPS",
    "OPTIMIZERS",
    "TRAIN_INITS",
    "evaluate",
    "init_network",
    "network_from_vector",
    "network_shapes",
    "network_vector",
    "parameter_count",
    "train",
]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
CLIPS = ("none", "norm", "value")
#: init_layers' initialisations, and "identity" (W_hh = scale I, Le et al. 2015's relu RNN).
TRAIN_INITS = ("pytorch", "normal", "uniform", "orthogonal", "identity")
#: The scale of "normal" and "uniform" initialisations when none is given (small weights).
SMALL_SCALE = 0.1
#: The update counter of evaluation data: far from every training update, so never seen.
_EVAL = 2**40
#: Pascanu et al.'s criterion: a real-valued answer is wrong when its squared error > 0.04.
WRONG_SQUARED_ERROR = 0.04


def init_network(
    cell: str,
    hidden: int,
    layers: int,
    inputs: int,
    outputs: int,
    *,
    seed: int,
    init: str = "pytorch",
    scale=None,
    forget_bias: float = 0.0,
):
    """The weights of one network: ``(layers, readout)`` in PyTorch's layout.

    ``init="identity"``: W_hh = scale I (default 1), the other weights as PyTorch's default
    (Le et al. 2015, for relu RNNs). Otherwise :func:`rnnlab.engine.init_layers`'
    initialisations, with a training default for the scale: 0.1 for ``"normal"`` and
    ``"uniform"`` (small random weights, N(0, 0.01) or U(-0.1, 0.1)), 1 for
    ``"orthogonal"``. The readout is U(-1/sqrt(H), 1/sqrt(H)) with zero bias (nn.Linear's
    weight), from the seed's own stream.
    """
    check_choice("init", init, TRAIN_INITS)
    if scale is None and init in ("normal", "uniform"):
        scale = SMALL_SCALE
    if init == "identity":
        ws = init_layers(cell, hidden, layers, input_size=inputs, seed=seed,
                         forget_bias=forget_bias)  # fmt: skip
        for w in ws:
            w["weight_hh"] = np.eye(hidden) * (1.0 if scale is None else float(scale))
            if cell != "rnn":
                raise ValueError("init 'identity' is for the rnn cell (Le et al. 2015)")
    else:
        ws = init_layers(cell, hidden, layers, input_size=inputs, seed=seed, init=init,
                         scale=scale, forget_bias=forget_bias)  # fmt: skip
    rng = case_rng(seed, hidden, "readout", str(outputs))
    a = 1.0 / np.sqrt(hidden)
    readout = {"weight": rng.uniform(-a, a, (outputs, hidden)), "bias": np.zeros(outputs)}
    return ws, readout


def network_vector(layers, readout) -> np.ndarray:
    """Every weight of networks with a leading case axis, flattened: (cases, parameters).

    The order: layer after layer, each layer's arrays by name (``bias_hh``, ``bias_ih``,
    ``weight_hh``, ``weight_ih``, ...), then the readout's (``bias``, ``weight``), each in C
    order. :func:`network_from_vector` inverts it.
    """
    return np.concatenate([a.reshape(a.shape[0], -1) for a in _arrays(layers, readout)], 1)


def network_shapes(cell, hidden, layers, inputs, outputs):
    """The array shapes of :func:`init_network`'s network, ``(layers, readout)`` as dicts of
    shapes: per layer ``weight_ih`` (G H, I), ``weight_hh`` (G H, H), ``bias_ih`` and
    ``bias_hh`` (G H,), I the layer's input size and G the cell's gate count; the readout's
    ``weight`` (O, H) and ``bias`` (O,)."""
    check_choice("cell", cell, tuple(CELL_GATES))
    h = int(hidden)
    gh = CELL_GATES[cell] * h
    ins = [int(inputs)] + [h] * (int(layers) - 1)
    per = [{"weight_ih": (gh, i), "weight_hh": (gh, h), "bias_ih": (gh,), "bias_hh": (gh,)}
           for i in ins]  # fmt: skip
    return per, {"weight": (int(outputs), h), "bias": (int(outputs),)}


def parameter_count(cell, hidden, layers, inputs, outputs) -> int:
    """The number of weights of :func:`init_network`'s network (the length of its
    :func:`network_vector` row): per layer G H (I + H + 2), and the readout's O (H + 1)."""
    per, readout = network_shapes(cell, hidden, layers, inputs, outputs)
    return sum(int(np.prod(shape)) for arrays in [*per, readout] for shape in arrays.values())


def network_from_vector(cell, hidden, layers, inputs, outputs, vector):
    """The ``(layers, readout)`` of one network from its :func:`network_vector` row.

    Parameters
    ----------
    cell, hidden, layers, inputs, outputs :
        The network's sizes, as for :func:`init_network`.
    vector : array_like
        (parameters,), or longer with NaN padding after them (a store's row).

    Returns
    -------
    (layers, readout)
        In PyTorch's layout, as :func:`rnnlab.engine.simulate_network` takes them.
    """
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    need = parameter_count(cell, hidden, layers, inputs, outputs)
    given = int(np.flatnonzero(~np.isnan(vector)).max(initial=-1)) + 1  # before the padding
    if given != need or not np.isfinite(vector[:need]).all():
        raise ValueError(
            f"vector: a {cell} network with H = {hidden}, {layers} layer(s), "
            f"{inputs} inputs and {outputs} outputs has {need} finite weights "
            f"(then only NaN padding), got {given} values before the padding"
        )
    per, readout = network_shapes(cell, hidden, layers, inputs, outputs)
    pos, out = 0, ([{} for _ in per], {})
    for where, shapes in [*zip(out[0], per, strict=True), (out[1], readout)]:
        for k in sorted(shapes):
            size = int(np.prod(shapes[k]))
            where[k] = vector[pos : pos + size].reshape(shapes[k]).copy()
            pos += size
    return out


def _stack_cases(nets):
    """Per-case (layers, readout) -> one (layers, readout) with a leading case axis."""
    layers = [{k: np.stack([n[0][l][k] for n in nets]) for k in nets[0][0][l]}
              for l in range(len(nets[0][0]))]  # fmt: skip
    readout = {k: np.stack([n[1][k] for n in nets]) for k in nets[0][1]}
    return layers, readout


def _arrays(layers, readout):
    return [w[k] for w in layers for k in sorted(w)] + [readout[k] for k in sorted(readout)]


def _grad_arrays(grads, layers, readout):
    return [grads["layers"][l][k] for l, w in enumerate(layers) for k in sorted(w)] + [
        grads["readout"][k] for k in sorted(readout)
    ]


def _per_case(x, ncase, name="value"):
    """One value, or one per case (seed)."""
    try:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (ncase,)).copy()
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be one number or one per seed ({ncase}), got {np.shape(x) or x!r}"
        ) from None


def _case_axis(v, a):
    return v.reshape((-1,) + (1,) * (a.ndim - 1))


class _Optimizer:
    """The state of one optimiser over a list of arrays with a leading case axis."""

    def __init__(self, name, params, lr, mu):
        self.name, self.lr, self.mu, self.k = name, lr, mu, 0
        self.v = [np.zeros_like(p) for p in params]
        self.m = [np.zeros_like(p) for p in params] if name == "adam" else None

    def steps(self, grads):
        """The parameter steps for these gradients (the arrays' changes)."""
        self.k += 1
        out = []
        for j, g in enumerate(grads):
            lr = _case_axis(self.lr, g)
            mu = _case_axis(self.mu, g)
            if self.name == "sgd":
                out.append(-lr * g)
            elif self.name in ("momentum", "nesterov"):
                self.v[j] = mu * self.v[j] + g  # torch.optim.SGD's buffer
                d = g + mu * self.v[j] if self.name == "nesterov" else self.v[j]
                out.append(-lr * d)
            else:  # adam, betas (0.9, 0.999), eps 1e-8
                self.m[j] = 0.9 * self.m[j] + 0.1 * g
                self.v[j] = 0.999 * self.v[j] + 0.001 * g * g
                mh = self.m[j] / (1 - 0.9**self.k)
                vh = self.v[j] / (1 - 0.999**self.k)
                out.append(-lr * mh / (np.sqrt(vh) + 1e-8))
        return out


def _clip(grads, kind, thr):
    """(clipped gradients, per-case norm before clipping, per-case clipped flag)."""
    norm = np.sqrt(sum((g.reshape(g.shape[0], -1) ** 2).sum(1) for g in grads))
    if kind == "none":
        return grads, norm, np.zeros(norm.shape, bool)
    if kind == "norm":
        hit = norm > thr
        scale = np.where(hit, thr / np.where(norm > 0, norm, 1.0), 1.0)
        return [g * _case_axis(scale, g) for g in grads], norm, hit
    hit = np.zeros(norm.shape, bool)
    out = []
    for g in grads:
        t = _case_axis(thr, g)
        hit |= (np.abs(g) > t).reshape(g.shape[0], -1).any(1)
        out.append(np.clip(g, -t, t))
    return out, norm, hit


def train(
    cell: str,
    task: str,
    *,
    seeds=(0,),
    hidden: int = 32,
    layers: int = 1,
    length: int = 50,
    activation: str = "tanh",
    variant: str = "vanilla",
    init: str = "pytorch",
    init_scale=None,
    forget_bias: float = 0.0,
    optimizer: str = "sgd",
    learning_rate=0.01,
    momentum=0.9,
    clip: str = "none",
    clip_threshold=1.0,
    batch: int = 20,
    updates: int = 1000,
    num_records: int = 50,
    records=None,
    eval_lengths=(),
    eval_batch: int = 200,
    keep_weights: bool = False,
    parallel: bool | int = True,
) -> dict:
    """Train one network per seed on ``task`` and measure it.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "cec"}
    task : str
        A name of :data:`rnnlab.engine.tasks.TASKS`.
    seeds : sequence of int
        One network per seed (its weights and its data).
    hidden, layers, length :
        Units per layer, stacked layers, the task's length T.
    activation, variant :
        As in :func:`rnnlab.engine.bptt`.
    init, init_scale, forget_bias :
        See :func:`init_network`.
    optimizer : {"sgd", "momentum", "nesterov", "adam"}
    learning_rate, momentum, clip_threshold : float or array_like
        Per case (broadcast over the seeds).
    clip : {"none", "norm", "value"}
    batch, updates :
        Sequences per update, number of updates.
    num_records : int
        The training loss and gradient norm are kept at this many log-spaced updates...
    records : array_like of int, optional
        ...or at these updates (increasing, in [0, updates - 1]).
    eval_lengths : sequence of int
        Further lengths to test the trained networks on (fresh sequences).
    eval_batch : int
        Test sequences per length.
    keep_weights : bool
        Return the trained weights (``"layers"``, ``"readout"``, with a case axis).

    Returns
    -------
    dict
        ``update`` (records,); ``loss``, ``grad_norm`` (cases, records): the batch's training
        loss and the gradient norm before clipping at those updates (NaN after divergence);
        ``clipped_fraction``, ``max_step`` (the largest parameter step's norm),
        ``diverged``, ``solved_update`` (the first update whose batch loss fell below the
        task's solved level, -1 if none), ``final_loss``, ``final_accuracy`` (cases,) on
        fresh sequences of the trained length; ``eval_loss``, ``eval_accuracy`` (cases,
        len(eval_lengths)); ``baseline`` (the task's chance level at the trained length);
        optionally the weights.
    """
    t, seeds, (lr, mu, thr), rec = _checked(task, updates, seeds, learning_rate, momentum,
                                            clip_threshold, optimizer, clip, num_records,
                                            records)  # fmt: skip
    nets = [init_network(cell, hidden, layers, t.inputs, t.outputs, seed=int(s), init=init,
                         scale=init_scale, forget_bias=forget_bias) for s in seeds]  # fmt: skip
    net_layers, readout = _stack_cases(nets)
    kw = dict(loss=t.loss, loss_steps=t.loss_steps(length), variant=variant,
              activation=activation, parallel=parallel)  # fmt: skip

    def gradient(k):
        x, y = task_batch(task, length, seeds, k, batch)
        loss, grads = bptt(cell, net_layers, readout, x, y, **kw)
        return loss, _grad_arrays(grads, net_layers, readout)

    params = _arrays(net_layers, readout)
    out = _descend(gradient, params, _Optimizer(optimizer, params, lr, mu), clip, thr,
                   int(updates), rec, t.solved)  # fmt: skip
    out["baseline"] = t.baseline(length)
    lengths = [int(length), *map(int, eval_lengths)]
    res = [evaluate(cell, task, net_layers, readout, seeds, n, eval_batch, **kw) for n in lengths]
    nc, alive = seeds.size, ~out["diverged"]
    out["final_loss"], out["final_accuracy"] = res[0]
    out["eval_loss"] = np.stack([r[0] for r in res[1:]], 1) if res[1:] else np.zeros((nc, 0))
    out["eval_accuracy"] = np.stack([r[1] for r in res[1:]], 1) if res[1:] else np.zeros((nc, 0))
    for key in ("final_loss", "final_accuracy", "eval_loss", "eval_accuracy"):
        out[key] = np.where(_case_axis(alive, out[key]), out[key], np.nan)
    if keep_weights:
        out["layers"], out["readout"] = net_layers, readout
    return out


def _checked(task, updates, seeds, lr, mu, thr, optimizer, clip, num_records, records):
    """The validated task, seeds, per-case (learning rate, momentum, threshold) and the
    recorded updates."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("clip", clip, CLIPS)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    if int(updates) != updates or updates < 1:
        raise ValueError(f"updates must be a positive integer, got {updates!r}")
    seeds = np.atleast_1d(np.asarray(seeds, dtype=np.int64))
    names = ("learning_rate", "momentum", "clip_threshold")
    per = tuple(_per_case(v, seeds.size, k) for v, k in zip((lr, mu, thr), names, strict=True))
    if np.any(per[0] < 0) or np.any(per[2] <= 0) or not np.all(np.isfinite(np.r_[per])):
        raise ValueError("learning_rate must be >= 0 and clip_threshold > 0, both finite")
    rec = record_steps(int(updates), "log", num_records) if records is None else records
    rec = np.asarray(rec, dtype=np.int64)
    if rec.size and (rec.min() < 0 or rec.max() >= updates or np.any(np.diff(rec) <= 0)):
        raise ValueError("records must be increasing updates in [0, updates - 1]")
    return TASKS[task], seeds, per, rec


def _descend(gradient, params, opt, clip, thr, updates, rec, solved_level) -> dict:
    """The updates: ``gradient(k)`` gives (loss, gradient arrays) of update k; clipping and
    the optimiser's step follow, for every case still alive (finite loss and gradient)."""
    nc = params[0].shape[0]
    out = {"update": rec, "loss": np.full((nc, rec.size), np.nan),
           "grad_norm": np.full((nc, rec.size), np.nan)}  # fmt: skip
    alive, clipped, max_step = np.ones(nc, bool), np.zeros(nc), np.zeros(nc)
    solved = np.full(nc, -1, dtype=np.int64)
    j = 0
    with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is data: frozen below
        for k in range(updates):
            loss, grads = gradient(k)
            g, norm, hit = _clip(grads, clip, thr)
            alive &= np.isfinite(loss) & np.isfinite(norm)
            if j < rec.size and rec[j] == k:
                out["loss"][:, j] = np.where(alive, loss, np.nan)
                out["grad_norm"][:, j] = np.where(alive, norm, np.nan)
                j += 1
            solved = np.where((solved < 0) & alive & (loss < solved_level), k, solved)
            clipped += hit & alive
            steps = opt.steps(g)
            size = np.sqrt(sum((d.reshape(nc, -1) ** 2).sum(1) for d in steps))
            max_step = np.where(alive, np.maximum(max_step, size), max_step)
            for p, d in zip(params, steps, strict=True):
                p += np.where(_case_axis(alive, d), d, 0.0)
    out.update(clipped_fraction=clipped / updates, max_step=max_step, diverged=~alive,
               solved_update=solved)  # fmt: skip
    return out


def evaluate(cell, task, layers, readout, seeds, length, batch=200, **kw):
    """(loss, accuracy) per case on fresh sequences of ``length`` (never trained on).

    Accuracy: regressions, the share of sequences whose squared error is at most 0.04
    (Pascanu et al.'s criterion); classifications, the share of correct classes over the
    loss steps and sequences.
    """
    t = TASKS[task]
    kw = {**kw, "loss_steps": t.loss_steps(length)}
    x, y = task_batch(task, length, seeds, _EVAL + length, batch)
    loss, _, pred = bptt(cell, layers, readout, x, y, return_outputs=True, **kw)
    if t.loss == "mse":
        err = ((pred - y) ** 2).sum(-1).mean(-1)  # (cases, batch)
        acc = (err <= WRONG_SQUARED_ERROR).mean(-1)
    else:
        acc = (pred.argmax(-1) == y).mean((-1, -2))
    return loss, acc
