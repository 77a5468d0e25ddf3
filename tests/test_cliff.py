"""The cliff of Pascanu et al. (2013, section 2.3): the exact loss gradient against PyTorch's
autograd and finite differences, Doya's bistable band against simulated fixed points, and
descent with and without norm clipping against a step-by-step PyTorch run."""

import numpy as np
import pytest
import torch
import xarray as xr

from rnnlab.engine.cliff import basin_boundary, bistable_band, cliff_descent, cliff_loss, valley


def _torch_loss(w, b, length=50, x0=0.5, target=0.7):
    x = torch.tensor(x0, dtype=torch.float64)
    for _ in range(length):
        x = w * torch.sigmoid(x) + b
    return (torch.sigmoid(x) - target) ** 2


def test_gradient_matches_autograd_and_finite_differences():
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-2, 18, 60), rng.uniform(-12, 4, 60)])
    loss, gw, gb = cliff_loss(pts[:, 0], pts[:, 1])
    for (w, b), lo, dw, db in zip(pts, loss, gw, gb, strict=True):
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        ref = _torch_loss(wt, bt)
        ref.backward()
        assert lo == pytest.approx(ref.item(), rel=1e-13, abs=1e-300)
        assert dw == pytest.approx(wt.grad.item(), rel=1e-10, abs=1e-14)
        assert db == pytest.approx(bt.grad.item(), rel=1e-10, abs=1e-14)
    h = 1e-6
    w, b = 5.0, -2.5
    fd_w = (cliff_loss(w + h, b)[0] - cliff_loss(w - h, b)[0]) / (2 * h)
    fd_b = (cliff_loss(w, b + h)[0] - cliff_loss(w, b - h)[0]) / (2 * h)
    _, gw, gb = cliff_loss(w, b)
    assert gw == pytest.approx(fd_w, rel=1e-6) and gb == pytest.approx(fd_b, rel=1e-6)


def test_bistable_band_is_where_two_fixed_points_attract():
    """For w = 5 the band is (-2.656, -2.344) (fold points w sigmoid'(x) = 1); inside it,
    iterating from x = -10 and x = +10 ends at two different fixed points, outside at one."""
    lo, hi = bistable_band(5.0)
    assert (float(lo), float(hi)) == pytest.approx((-2.6556, -2.3444), abs=1e-4)
    for b, two in ((lo + 0.01, True), (hi - 0.01, True), (lo - 0.01, False), (hi + 0.01, False)):
        ends = []
        for x in (-10.0, 10.0):
            for _ in range(20000):
                x = 5.0 / (1 + np.exp(-x)) + b
            ends.append(x)
        assert (abs(ends[0] - ends[1]) > 0.5) == two, b
    assert np.isnan(bistable_band(4.0)[0]) and np.isnan(bistable_band(1.0)[1])


def _torch_descent(w, b, lr, clip, updates):
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    path = []
    for _ in range(updates):
        loss = _torch_loss(wt, bt)
        wt.grad = bt.grad = None
        loss.backward()
        path.append((wt.item(), bt.item(), loss.item()))
        if clip:
            torch.nn.utils.clip_grad_norm_([wt, bt], clip)
        with torch.no_grad():
            wt -= lr * wt.grad
            bt -= lr * bt.grad
    return np.array(path)


@pytest.mark.parametrize("clip", [0.0, 1.0])
def test_descent_matches_pytorch_step_by_step_and_clipping_bounds_every_step(clip):
    starts = [(7.0, -2.0), (7.0, -4.0), (3.0, -6.0)]
    res = cliff_descent([s[0] for s in starts], [s[1] for s in starts], learning_rate=1.0,
                        clip=clip, updates=30)  # fmt: skip
    for i, (w, b) in enumerate(starts):
        ref = _torch_descent(w, b, 1.0, clip, 30)
        got = np.column_stack([res["w"][i, :30], res["b"][i, :30], res["loss"][i, :30]])
        np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)
    # from (7, -2) the descent meets the wall after ~100 updates: thrown far away unless
    # clipped, when no step is longer than lr * clip
    far = cliff_descent(7.0, -2.0, learning_rate=1.0, clip=clip, updates=200)
    if clip:
        assert np.all(res["max_step"] <= 1.0 + 1e-12) and far["max_step"] <= 1.0 + 1e-12
        assert far["clipped_fraction"] > 0
    else:
        assert far["max_step"] > 50 and far["clipped_fraction"] == 0


def test_descent_records_overflow_and_refuses_bad_arguments():
    res = cliff_descent(7.0, -2.0, learning_rate=1e6, updates=50)
    assert res["loss"].shape == (51,)
    with pytest.raises(ValueError, match="clip must be >= 0"):
        cliff_descent(1.0, 1.0, clip=-1.0)
    with pytest.raises(ValueError, match="length must be a positive integer"):
        cliff_loss(1.0, 1.0, length=0)
    with pytest.raises(ValueError, match="updates must be a positive integer"):
        cliff_descent(1.0, 1.0, updates=0)
    with pytest.raises(ValueError, match="learning_rate must be finite"):
        cliff_descent(1.0, 1.0, learning_rate=np.nan)


CLIFF_SPEC = """
[model]
family = "cliff"
learning_rate = 1.0
[grid]
w = [6.0, 7.5, 9.0]
bias = [-5.0, -3.0]
clip = [0.0, 1.0]
[run]
steps = 301
record = "log"
num_records = 40
[store]
path = "c.zarr"
"""


def test_a_cliff_sweep_stores_the_descents_like_the_engine(tmp_path):
    """Through the sweep runner into a real Zarr store: every recorded update and summary
    equals cliff_descent called directly, bit for bit; run.steps = 1 is the landscape."""
    from rnnlab.engine import record_steps
    from rnnlab.jobs.runner import run_sweep

    from .sweeps import write_spec

    ds = xr.open_zarr(run_sweep(write_spec(tmp_path, CLIFF_SPEC), store=tmp_path / "c.zarr",
                                sync=True).path)  # fmt: skip
    W, B, C = np.meshgrid([6.0, 7.5, 9.0], [-5.0, -3.0], [0.0, 1.0], indexing="ij")
    d = cliff_descent(W, B, learning_rate=1.0, clip=C, updates=300)
    k = record_steps(301, "log", 40)
    np.testing.assert_array_equal(ds.time.values, k)
    np.testing.assert_array_equal(ds.loss.values, d["loss"][..., k])
    np.testing.assert_array_equal(ds.w_path.values, d["w"][..., k])
    np.testing.assert_array_equal(ds.max_step.values, d["max_step"])
    np.testing.assert_array_equal(ds.clipped_fraction.values, d["clipped_fraction"])
    solved = d["loss"] < 1e-4
    want = np.where(solved.any(-1), solved.argmax(-1), -1)
    np.testing.assert_array_equal(ds.solved_update.values, want)
    assert ds.time.attrs["long_name"] == "update" and ds.loss.attrs["units"] == "1"
    land = CLIFF_SPEC.replace("steps = 301", "steps = 1").replace('record = "log"', "")
    land = land.replace("num_records = 40", "")
    ls = xr.open_zarr(run_sweep(write_spec(tmp_path, land, "l.toml"), store=tmp_path / "l.zarr",
                                sync=True).path)  # fmt: skip
    np.testing.assert_array_equal(ls.loss.isel(time=0).values, cliff_loss(W, B)[0])
    np.testing.assert_array_equal(ls.final_loss.values, cliff_loss(W, B)[0])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[run]", '[run]\ndtype = "float32"'), "run.dtype: the cliff family computes in float64"),
        (("[run]", '[run]\ninput = "noise"'), "run.input: the cliff network has no input"),
        (("clip = [0.0, 1.0]", "clip = [0.0, -1.0]"), "grid.clip[1]: must be >= 0.0"),
        (("learning_rate = 1.0", 'learning_rate = "fast"'), "model.learning_rate: expected float"),
    ],
)
def test_bad_cliff_specs_are_refused_in_one_line(tmp_path, edit, message):
    from .sweeps import rnnlab, write_spec

    spec = write_spec(tmp_path, CLIFF_SPEC.replace(*edit))
    out = rnnlab("validate", spec, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_the_wall_and_the_valley_are_where_the_closed_forms_put_them():
    """Across b at fixed w the loss jumps exactly at b = x0 - w sigmoid(x0) (inside Doya's
    band), and its minimum lies on b = logit(0.7) - 0.7 w for w < 1 / (0.7 * 0.3)."""
    for w in (6.0, 8.0, 12.0):
        b = np.linspace(-10, 0, 200_001)
        loss = cliff_loss(w, b)[0]
        jump = b[np.argmax(np.abs(np.diff(loss)))]
        assert jump == pytest.approx(float(basin_boundary(w)), abs=1e-4)
        lo, hi = bistable_band(w)
        assert lo < basin_boundary(w) < hi
    for w in (2.0, 3.0, 4.0):
        b = np.linspace(-8, 2, 200_001)
        best = b[np.argmin(cliff_loss(w, b)[0])]
        assert best == pytest.approx(float(valley(w)), abs=1e-3)
    assert np.isnan(valley(5.0))
