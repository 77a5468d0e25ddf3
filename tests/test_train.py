"""Training: every update equal to the same network trained step by step by PyTorch
(torch.optim's SGD, momentum, Nesterov and Adam, clipping by Pascanu et al.'s rule and by
value), divergence recorded, not raised, and a small adding problem actually learnt."""

import numpy as np
import pytest
import torch

from rnnlab.engine.tasks import TASKS, task_batch
from rnnlab.engine.train import init_network, train


def _torch_train(cell, task, seed, *, hidden, length, updates, batch, opt, lr, clip, thr):
    t = TASKS[task]
    layers, readout = init_network(cell, hidden, 1, t.inputs, t.outputs, seed=seed)
    mod = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        t.inputs, hidden, batch_first=True, dtype=torch.float64
    )
    lin = torch.nn.Linear(hidden, t.outputs, dtype=torch.float64)
    with torch.no_grad():
        for k, v in layers[0].items():
            getattr(mod, f"{k}_l0").copy_(torch.from_numpy(v))
        lin.weight.copy_(torch.from_numpy(readout["weight"]))
        lin.bias.copy_(torch.from_numpy(readout["bias"]))
    params = [*mod.parameters(), *lin.parameters()]
    make = {"sgd": lambda: torch.optim.SGD(params, lr=lr),
            "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
            "nesterov": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
            "adam": lambda: torch.optim.Adam(params, lr=lr)}[opt]  # fmt: skip
    optim = make()
    losses = []
    for k in range(updates):
        x, y = task_batch(task, length, seed, k, batch)
        out = lin(mod(torch.from_numpy(x))[0])
        if t.loss == "mse":
            loss = torch.nn.functional.mse_loss(out[:, -1:], torch.from_numpy(y))
        else:
            loss = torch.nn.functional.cross_entropy(
                out.reshape(-1, t.outputs), torch.from_numpy(y).reshape(-1)
            )
        optim.zero_grad()
        loss.backward()
        losses.append(loss.item())
        if clip == "norm":  # Pascanu et al.'s algorithm 1, exactly
            norm = torch.sqrt(sum((p.grad**2).sum() for p in params))
            if norm > thr:
                for p in params:
                    p.grad *= thr / norm
        elif clip == "value":
            torch.nn.utils.clip_grad_value_(params, thr)
        optim.step()
    return np.array(losses), mod, lin


@pytest.mark.parametrize(
    ("cell", "task", "opt", "clip"),
    [
        ("rnn", "adding", "sgd", "norm"),
        ("rnn", "parity", "momentum", "value"),
        ("lstm", "adding", "nesterov", "none"),
        ("gru", "copy", "adam", "norm"),
    ],
)
def test_training_matches_pytorch_update_by_update(cell, task, opt, clip):
    lr = 0.001 if opt == "adam" else 0.1
    kw = dict(hidden=8, length=12, updates=25, batch=5)
    res = train(cell, task, seeds=[3], optimizer=opt, learning_rate=lr, clip=clip,
                clip_threshold=0.05, num_records=25, keep_weights=True, **kw)  # fmt: skip
    ref, mod, lin = _torch_train(cell, task, 3, opt=opt, lr=lr, clip=clip, thr=0.05, **kw)
    np.testing.assert_allclose(res["loss"][0], ref[res["update"]], rtol=1e-9)
    for k, v in res["layers"][0].items():
        np.testing.assert_allclose(v[0], getattr(mod, f"{k}_l0").detach().numpy(), rtol=1e-8,
                                   atol=1e-12, err_msg=k)  # fmt: skip
    np.testing.assert_allclose(res["readout"]["weight"][0], lin.weight.detach().numpy(),
                               rtol=1e-8, atol=1e-12)  # fmt: skip
    if clip != "none":
        assert res["clipped_fraction"][0] > 0


def test_many_networks_train_as_each_alone():
    kw = dict(hidden=6, length=10, updates=15, batch=4, learning_rate=[0.05, 0.2, 0.1])
    together = train("lstm", "adding", seeds=[0, 1, 2], **kw)
    alone = train("lstm", "adding", seeds=[1], hidden=6, length=10, updates=15, batch=4,
                  learning_rate=0.2)  # fmt: skip
    np.testing.assert_array_equal(together["loss"][1], alone["loss"][0])
    np.testing.assert_array_equal(together["final_loss"][1], alone["final_loss"][0])


def test_a_diverging_run_is_recorded_and_frozen():
    """An identity-initialised relu RNN with a huge learning rate blows up: its loss turns
    NaN from there on, diverged is True, the other case trains on unharmed."""
    res = train("rnn", "adding", seeds=[0, 1], hidden=8, length=20, updates=40, batch=5,
                activation="relu", init="identity", learning_rate=[1e3, 0.01])  # fmt: skip
    assert res["diverged"].tolist() == [True, False]
    assert np.isnan(res["loss"][0, -1]) and np.isfinite(res["loss"][1]).all()
    assert np.isnan(res["final_loss"][0]) and np.isfinite(res["final_loss"][1])


def test_an_lstm_learns_the_short_adding_problem_and_the_baseline_is_stored():
    """T = 10, H = 16, Adam: well below the 1/6 baseline, most test sequences right."""
    res = train("lstm", "adding", seeds=[0], hidden=16, length=10, updates=600, batch=20,
                optimizer="adam", learning_rate=0.01)  # fmt: skip
    assert res["baseline"] == pytest.approx(1 / 6)
    assert res["final_loss"][0] < 0.1 * res["baseline"]
    assert res["final_accuracy"][0] > 0.8
    assert res["solved_update"][0] > 0


def test_bad_training_arguments_are_refused():
    with pytest.raises(ValueError, match="optimizer"):
        train("rnn", "adding", optimizer="rmsprop")
    with pytest.raises(ValueError, match="clip"):
        train("rnn", "adding", clip="soft")
    with pytest.raises(ValueError, match="unknown task"):
        train("rnn", "sorting")
    with pytest.raises(ValueError, match="learning_rate must be >= 0"):
        train("rnn", "adding", learning_rate=-1.0)
    with pytest.raises(ValueError, match="init 'identity' is for the rnn cell"):
        train("lstm", "adding", init="identity", updates=1)


TRAIN_SPEC = """
[model]
family = "train"
task = "parity"
n = 6
optimizer = "momentum"
learning_rate = 0.05
test_length = 16
[grid]
cell = ["rnn", "gru"]
length = [4, 8]
seed = {range = 2}
[run]
steps = 30
record = "log"
num_records = 10
[store]
path = "t.zarr"
"""


def test_a_train_sweep_stores_each_run_like_the_engine(tmp_path):
    """Through the sweep runner into a real Zarr store: every case equals train() called
    alone with its seed, bit for bit, with the baseline and the test length's measures."""
    import xarray as xr

    from rnnlab.engine import record_steps
    from rnnlab.jobs.runner import run_sweep

    from .sweeps import write_spec

    ds = xr.open_zarr(run_sweep(write_spec(tmp_path, TRAIN_SPEC), store=tmp_path / "t.zarr",
                                sync=True).path)  # fmt: skip
    rec = record_steps(30, "log", 10)
    np.testing.assert_array_equal(ds.time.values, rec)
    for cell in ("rnn", "gru"):
        for length in (4, 8):
            for seed in (0, 1):
                want = train(cell, "parity", seeds=[seed], hidden=6, length=length,
                             optimizer="momentum", learning_rate=0.05, clip="norm", updates=30,
                             records=rec, eval_lengths=[16], parallel=False)  # fmt: skip
                one = ds.sel(cell=cell, length=length, seed=seed)
                np.testing.assert_array_equal(one.train_loss.values, want["loss"][0])
                np.testing.assert_array_equal(one.final_accuracy.values, want["final_accuracy"][0])
                np.testing.assert_array_equal(one.test_loss.values, want["eval_loss"][0, 0])
    assert float(ds.baseline.max()) == pytest.approx(np.log(2))
    assert ds.time.attrs["long_name"] == "update"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[run]", '[run]\ninput = "noise"'), "run.input: the task makes the input"),
        (('task = "parity"', 'task = "sorting"'), "model.task: 'sorting' is not allowed"),
        (
            ('task = "parity"', 'task = "parity"\nclip_threshold = 0.0'),
            "model.clip_threshold: must be > 0",
        ),
        (('cell = ["rnn", "gru"]', 'cell = ["rnn", "transformer"]'), "grid.cell[1]"),
    ],
)
def test_bad_train_specs_are_refused_in_one_line(tmp_path, edit, message):
    from .sweeps import rnnlab, write_spec

    out = rnnlab("validate", write_spec(tmp_path, TRAIN_SPEC.replace(*edit)), cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2


def test_test_lengths_share_one_trained_network(tmp_path):
    """A grid over test_length trains each network once: the runs of one seed have the same
    training history bit for bit, and each test length's accuracy is train()'s."""
    import xarray as xr

    from rnnlab.jobs.runner import run_sweep

    from .sweeps import write_spec

    spec = TRAIN_SPEC.replace("test_length = 16\n", "").replace(
        "length = [4, 8]", "length = [4]\ntest_length = [8, 32]"
    )
    ds = xr.open_zarr(run_sweep(write_spec(tmp_path, spec), store=tmp_path / "t.zarr",
                                sync=True).path)  # fmt: skip
    one = ds.sel(cell="rnn", seed=1, length=4)
    np.testing.assert_array_equal(one.train_loss.sel(test_length=8),
                                  one.train_loss.sel(test_length=32))  # fmt: skip
    want = train("rnn", "parity", seeds=[1], hidden=6, length=4, optimizer="momentum",
                 learning_rate=0.05, updates=30, records=ds.time.values, eval_lengths=[32],
                 parallel=False)  # fmt: skip
    assert float(one.test_accuracy.sel(test_length=32)) == want["eval_accuracy"][0, 0]


def _torch_loss(net, x, y):
    """Cross-entropy of a network from rnnlab.analysis.trained_network, run by PyTorch."""
    cell = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[net["cell"]]
    w = net["layers"][0]
    mod = cell(w["weight_ih"].shape[1], w["weight_hh"].shape[1], batch_first=True,
               dtype=torch.float64)  # fmt: skip
    mod.load_state_dict({f"{k}_l0": torch.from_numpy(v) for k, v in w.items()})
    out = mod(torch.from_numpy(x))[0] @ torch.from_numpy(net["readout"]["weight"]).T
    out = out + torch.from_numpy(net["readout"]["bias"])
    return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]),
                                             torch.from_numpy(y).reshape(-1)).item()  # fmt: skip


def test_stored_trained_weights_are_the_networks_pytorch_runs(tmp_path):
    """run.outputs with trained_weights: each case's row (NaN-padded to the grid's largest
    network) rebuilt by trained_network is the trained network: PyTorch running it on the
    evaluation sequences gets the stored final_loss, and the network before training
    (initial=True) the stored loss of the first batch."""
    from rnnlab.analysis import open_results, trained_network
    from rnnlab.engine.train import _EVAL
    from rnnlab.jobs.runner import run_sweep

    from .sweeps import write_spec

    spec = TRAIN_SPEC.replace("num_records = 10", 'num_records = 10\noutputs = ["train_loss", '
                              '"final_loss", "trained_weights"]')  # fmt: skip
    ds = open_results(run_sweep(write_spec(tmp_path, spec), store=tmp_path / "t.zarr",
                                sync=True).path)  # fmt: skip
    assert "final_accuracy" not in ds and ds.trained_weights.dims[-1] == "parameter"
    nans = np.isnan(ds.trained_weights).sum("parameter")
    gates_of_h6 = 6 * (1 + 6) + 2 * 6  # a gate's W_ih, W_hh and biases (H = 6, I = 1)
    assert (nans.sel(cell="gru") == 0).all() and (nans.sel(cell="rnn") == 2 * gates_of_h6).all()
    for cell, length, seed in (("rnn", 8, 1), ("gru", 4, 0)):
        one = ds.sel(cell=cell, length=length, seed=seed)
        x, y = task_batch("parity", length, seed, _EVAL + length, 200)
        net = trained_network(one)
        assert net["cell"] == cell and net["task"] == "parity"
        assert _torch_loss(net, x, y) == pytest.approx(float(one.final_loss), rel=1e-12)
        x0, y0 = task_batch("parity", length, seed, 0, 20)
        first = _torch_loss(trained_network(one, initial=True), x0, y0)
        assert first == pytest.approx(float(one.train_loss[0]), rel=1e-12)
    from rnnlab.analysis.report import _key_numbers

    assert any("8 cases over cell (2), length (2), seed (2)," in x for x in _key_numbers("t", ds))
    with pytest.raises(ValueError, match="select one case first"):
        trained_network(ds)
    with pytest.raises(ValueError, match="no trained_weights"):
        trained_network(ds.drop_vars("trained_weights").sel(cell="rnn", length=4, seed=0))


FIXED_SPEC = """
[model]
family = "train"
task = "adding"
length = 4
n = 5
optimizer = "adam"
learning_rate = 0.01
[grid]
cell = ["rnn", "lstm", "gru"]
seed = {range = 1}
[run]
steps = 40
record = "none"
fixed_point_starts = 24
num_fixed_points = 1
outputs = ["final_loss", "trained_weights", "fixed_points_count", "fixed_points_outside",
           "fixed_points_state", "fixed_points_eigenvalues", "fixed_points_kind",
           "fixed_points_residual", "fixed_points_starts"]
[store]
path = "f.zarr"
"""


def _torch_step(net):
    """The trained network's step without input as PyTorch's own module: s -> F(s) (the
    LSTM's s = (h, c))."""
    w = net["layers"][0]
    H, I = np.shape(w["weight_hh"])[1], np.shape(w["weight_ih"])[1]
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[net["cell"]](I, H)
    mod = mod.double()
    mod.load_state_dict({f"{k}_l0": torch.from_numpy(np.asarray(v)) for k, v in w.items()})
    x = torch.zeros(1, 1, I, dtype=torch.float64)

    def step(s):
        if net["cell"] == "lstm":
            _, (h, c) = mod(x, (s[:H].view(1, 1, H), s[H:].view(1, 1, H)))
            return torch.cat([h.ravel(), c.ravel()])
        return mod(x, s.view(1, 1, H))[1].ravel()

    return step


def test_stored_fixed_points_are_fixed_under_pytorch_with_its_jacobian(tmp_path):
    """run.outputs with the fixed_points_* variables: every stored point of every cell is
    mapped to itself by PyTorch's module loaded with the stored trained weights (1e-9), its
    stored eigenvalues are those of torch.autograd's Jacobian of that step (1e-8) and its
    class theirs; states NaN-padded to the grid's largest (the LSTM's 2 H); counts and
    starts consistent (one point stored: a dimension of size 1); a bad num_fixed_points is
    one line, exit 2."""
    from rnnlab.analysis import open_results, stored_fixed_points, trained_network
    from rnnlab.engine import FIXED_POINT_KINDS
    from rnnlab.engine.fixedpoints import classify_fixed_point
    from rnnlab.jobs.runner import run_sweep

    from .sweeps import rnnlab, write_spec

    ds = open_results(run_sweep(write_spec(tmp_path, FIXED_SPEC), store=tmp_path / "f.zarr",
                                sync=True).path)  # fmt: skip
    assert ds.fixed_points_state.dims == ("cell", "seed", "point", "component")
    assert ds.sizes["point"] == 1 and ds.sizes["component"] == 10
    assert ds.fixed_points_kind.attrs["flag_meanings"].split() == list(FIXED_POINT_KINDS)
    for cell, width in (("rnn", 5), ("lstm", 10), ("gru", 5)):
        one = ds.sel(cell=cell, seed=0)
        fp = stored_fixed_points(one)
        assert len(fp.points) == 1 <= int(one.fixed_points_count)
        assert fp.points.shape[1] == width
        assert np.isnan(one.fixed_points_state.values[:, width:]).all()
        assert fp.starts.sum() + int(one.fixed_points_outside) <= 24
        step = _torch_step(trained_network(one))
        for s, lam, kind in zip(fp.points, fp.eigenvalues, fp.kind, strict=True):
            st = torch.from_numpy(s)
            np.testing.assert_allclose(step(st).detach().numpy(), s, atol=1e-9)
            J = torch.autograd.functional.jacobian(step, st).numpy()
            want = np.linalg.eigvals(J)
            gap = np.abs(want[:, None] - lam[None, :]).min(axis=1)
            assert gap.max() < 1e-8 and len(lam) == len(want)
            assert kind == classify_fixed_point(want)
    for value in ("0", "25"):  # at least 1, at most fixed_point_starts
        bad = FIXED_SPEC.replace("num_fixed_points = 1", f"num_fixed_points = {value}")
        out = rnnlab("validate", write_spec(tmp_path, bad), cwd=tmp_path)
        assert out.returncode == 2 and "run.num_fixed_points" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "cec"])
def test_a_network_vector_round_trips_and_counts_every_weight(cell):
    """network_vector's row has parameter_count entries (the arrays init_network makes),
    network_from_vector gives back the same arrays from it (NaN padding after it allowed),
    and refuses a row of another size in one line."""
    from rnnlab.engine.train import (
        _stack_cases,
        network_from_vector,
        network_vector,
        parameter_count,
    )

    net = init_network(cell, 5, 2, 3, 4, seed=7)
    sizes = sum(a.size for w in net[0] for a in w.values()) + net[1]["weight"].size + 4
    row = network_vector(*_stack_cases([net]))[0]
    assert row.size == parameter_count(cell, 5, 2, 3, 4) == sizes
    layers, readout = network_from_vector(cell, 5, 2, 3, 4, np.r_[row, np.nan, np.nan])
    for mine, theirs in zip(layers, net[0], strict=True):
        assert mine.keys() == theirs.keys()
        for k in mine:
            np.testing.assert_array_equal(mine[k], theirs[k])
    np.testing.assert_array_equal(readout["weight"], net[1]["weight"])
    with pytest.raises(ValueError, match=r"^vector: .* has \d+ finite weights"):
        network_from_vector(cell, 5, 1, 3, 4, row)
