"""Analysis: stores opened lazily, derived quantities against closed forms on linear systems,
figures from small real stores made by the sweep runner, and the report."""

import json
import re
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import xarray as xr
import zarr

from rnnlab.analysis import (
    CLASSES,
    FIGURES,
    IncompleteStoreError,
    MissingData,
    NotAStoreError,
    classify,
    gradient_crossing_step,
    growth_rate_theory,
    memory_horizon,
    open_results,
    phase_boundary,
    write_report,
)
from rnnlab.analysis import figures as F
from rnnlab.jobs.runner import run_sweep

from .sweeps import rnnlab

matplotlib.use("Agg")

SPECS = {
    "scalar": """
[model]
family = "rnn"
n = 1
[grid]
activation = ["identity", "sigmoid", "tanh", "relu"]
w = [-0.5, 0.5, 0.9, 1.0, 1.5, 3.0]
bias = [0.0, 0.5]
amplitude = [-1.0, 1.0]
[run]
steps = 120
record = "all"
""",
    "vector": """
[model]
family = "rnn"
n = 8
weights = "symmetric"
[grid]
activation = ["identity", "sigmoid", "tanh", "relu"]
spectral_radius = [0.5, 0.8, 1.0, 1.2, 1.5]
remove_dominant = [false, true]
seed = {range = 2}
[run]
steps = 120
""",
    "deep": """
[model]
family = "mlp"
n = 16
[grid]
activation = ["tanh", "relu"]
gain = [0.5, 1.0, 2.0]
seed = {range = 2}
[run]
steps = 30
record = "all"
""",
    "lstm_memory": """
[model]
family = "lstm"
n = 6
init = "normal"
init_scale = 0.1
peepholes = true
[grid]
variant = ["vanilla", "NFG", "CIFG"]
forget_bias = [0.0, 2.0, 4.0]
seed = {range = 2}
[run]
steps = 150
input = "noise"
""",
}
SPECS["noise"] = (
    SPECS["vector"]
    .replace("remove_dominant = [false, true]\n", "")
    .replace("steps = 120", 'steps = 120\ninput = "noise"')
)
SPECS["bibo"] = """
[model]
family = "rnn"
n = 8
weights = "symmetric"
[grid]
activation = ["identity", "tanh"]
spectral_radius = [0.5, 0.9, 1.5]
[run]
steps = 400
input = "noise"
outputs = ["max_state_norm", "bounded", "blowup_step"]
"""
SPECS["nonnormal"] = """
[model]
family = "rnn"
n = 16
activation = "identity"
[grid]
weights = ["gaussian", "symmetric"]
spectral_radius = [0.9]
seed = {range = 2}
[run]
steps = 40
record = "all"
outputs = ["log10_gradient_norm", "spectral_radius", "max_singular_value"]
"""
SPECS["phases"] = """
[model]
family = "rnn"
n = 1
[grid]
activation = ["tanh"]
w = {start = -4.0, stop = 4.0, num = 64}
bias = {start = -3.0, stop = 3.0, num = 64}
amplitude = [-20.0, 20.0]
[run]
steps = 300
record = "none"
outputs = ["saturation_step", "fixed_point", "bounded", "blowup_step", "memory_horizon"]
"""
SPECS["cec"] = """
[model]
family = "cec"
n = 8
init = "normal"
init_scale = 1.0
[grid]
activation = ["tanh", "sigmoid"]
seed = {range = 2}
[run]
steps = 2000
record = "log"
input = "noise"
"""
SPECS["stacked"] = """
[model]
family = "rnn"
n = 6
weights = "symmetric"
[grid]
activation = ["identity", "tanh"]
layers = [1, 3]
spectral_radius = [0.9, 1.1]
seed = {range = 2}
[run]
steps = 300
record = "log"
"""
SPECS["cliff_landscape"] = """
[model]
family = "cliff"
[grid]
w = {start = 3.0, stop = 14.0, num = 40}
bias = {start = -10.0, stop = 0.0, num = 40}
[run]
steps = 1
record = "all"
"""
SPECS["cliff"] = """
[model]
family = "cliff"
learning_rate = 1.0
[grid]
w = {start = 5.0, stop = 12.0, num = 8}
bias = {start = -8.0, stop = -1.0, num = 8}
clip = [0.0, 1.0]
[run]
steps = 1001
record = "log"
num_records = 60
"""
SPECS["training"] = """
[model]
family = "train"
task = "adding"
n = 8
optimizer = "adam"
learning_rate = 0.01
[grid]
cell = ["rnn", "lstm"]
length = [4, 8]
seed = {range = 2}
[run]
steps = 40
record = "log"
num_records = 10
"""
SPECS["clipping"] = """
[model]
family = "train"
cell = "rnn"
task = "adding"
n = 8
length = 20
init = "normal"
init_scale = 0.6
learning_rate = 0.05
[grid]
clip = ["none", "norm"]
seed = {range = 2}
[run]
steps = 60
record = "log"
num_records = 20
"""
SPECS["generalisation"] = """
[model]
family = "train"
length = 4
n = 6
optimizer = "adam"
learning_rate = 0.01
[grid]
task = ["parity", "binary_addition"]
cell = ["rnn"]
test_length = [4, 16]
seed = {range = 2}
[run]
steps = 30
record = "log"
num_records = 8
"""
SPECS["initialisation"] = """
[model]
family = "train"
cell = "rnn"
task = "adding"
n = 6
length = 6
[grid]
activation = ["tanh", "relu"]
init = ["identity", "normal"]
optimizer = ["sgd", "momentum"]
seed = {range = 2}
[run]
steps = 20
record = "log"
num_records = 5
"""
SPECS["order_to_chaos"] = """
[model]
family = "mlp"
n = 32
[grid]
gain = [0.5, 1.0, 1.5, 2.5]
bias_std = [0.0, 0.3, 1.0]
[run]
steps = 40
record = "none"
outputs = ["growth_rate", "q_star", "chi_1", "signal_depth_scale", "gradient_depth_scale"]
"""
SPECS["capacity"] = """
[model]
family = "rnn"
n = 10
[grid]
activation = ["identity", "tanh"]
spectral_radius = [0.5, 0.9, 1.0, 1.3]
amplitude = [0.01, 1.0]
[run]
steps = 2001
record = "none"
input = "noise"
num_delays = 30
outputs = ["memory_capacity", "memory_capacity_by_delay"]
"""
SPECS["fixed_points"] = """
[model]
family = "train"
task = "adding"
length = 4
n = 4
[grid]
cell = ["rnn", "gru"]
seed = {range = 1}
[run]
steps = 20
record = "log"
num_records = 4
outputs = ["train_loss", "final_loss", "trained_weights", "fixed_points_count",
           "fixed_points_outside", "fixed_points_state", "fixed_points_eigenvalues",
           "fixed_points_kind", "fixed_points_residual", "fixed_points_starts"]
"""
SPECS["lyapunov"] = """
[model]
family = "rnn"
n = 20
[grid]
gain = [0.5, 1.5, 2.0, 3.0]
seed = {range = 2}
[run]
steps = 400
record = "none"
outputs = ["spectral_radius", "lyapunov_exponents", "kaplan_yorke_dimension", "entropy_rate"]
num_exponents = 20
"""
for fam, extra, grid in (("rnn", 'gain = 0.8\ninput_weight = 0.8\nactivation = "tanh"', ""),
                         ("lstm", 'init = "normal"\ninit_scale = 0.1',
                          'variant = ["vanilla", "NFG"]'),  # a grid of names, too
                         ("gru", 'init = "normal"\ninit_scale = 0.1', "")):  # fmt: skip
    SPECS[f"{fam}_gradients"] = f"""
[model]
family = "{fam}"
n = 8
loss_step = 30
{extra}
[grid]
{grid}
seed = {{range = 3}}
[run]
steps = 31
record = "all"
input = "noise"
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Small real stores, made by the sweep runner (in process, no Dask)."""
    root = tmp_path_factory.mktemp("stores")
    out = {}
    for name, text in SPECS.items():
        spec = root / f"{name}.toml"
        spec.write_text(text + f'[store]\npath = "{name}.zarr"\nblock_seconds = 0.0002\n')
        out[name] = run_sweep(spec, store=root / f"{name}.zarr", sync=True).path
    return out


def _lines(ax):
    return [ln for ln in ax.lines if len(ln.get_xdata())]


def test_open_results_is_lazy_and_keeps_coordinates_and_attributes(stores):
    ds = open_results(stores["scalar"])
    assert ds.response.chunks is not None  # dask-backed
    assert list(ds.w.values) == [-0.5, 0.5, 0.9, 1.0, 1.5, 3.0]
    assert ds.attrs["family"] == "rnn" and "spec" in ds.attrs and ds.attrs["spec_sha256"]
    assert ds.response.attrs["units"] == "1"


def test_open_results_refuses_what_is_not_a_complete_store(stores, tmp_path):
    with pytest.raises(NotAStoreError, match="no such store"):
        open_results(tmp_path / "nothing.zarr")
    (tmp_path / "folder").mkdir()
    with pytest.raises(NotAStoreError):
        open_results(tmp_path / "folder")
    xr.Dataset({"a": ("x", np.arange(3))}).to_zarr(
        tmp_path / "other.zarr", zarr_format=3, consolidated=False
    )
    with pytest.raises(NotAStoreError, match="not one written by rnnlab"):
        open_results(tmp_path / "other.zarr")
    # an unfinished block: its block_done flag is still 0 (the writer sets it last)
    import shutil

    path = tmp_path / "partial.zarr"
    shutil.copytree(stores["vector"], path)
    done = zarr.open_group(str(path), mode="r+", use_consolidated=False)["block_done"]
    done[2] = 0
    with pytest.raises(IncompleteStoreError, match=r"1 of \d+ blocks missing \(block 2: ") as err:
        open_results(path)
    assert "allow_incomplete=True" in str(err.value)
    assert err.value.missing[0]["block"] == 2
    ds = open_results(path, allow_incomplete=True)
    assert json.loads(ds.attrs["missing_blocks"]) == [2]


def test_memory_horizon_and_gradient_crossing_match_closed_forms(stores):
    ds = open_results(stores["scalar"]).sel(activation="identity", bias=0.0, amplitude=1.0)
    for w in (-0.5, 0.5, 0.9):
        sub = ds.sel(w=w)
        # response |w|^t: the first t with |w|^t <= rtol
        for rtol in (1e-2, 1e-3):
            want = int(np.ceil(np.log(rtol) / np.log(abs(w)) - 1e-12))
            assert int(memory_horizon(sub, rtol)) == want
        assert int(memory_horizon(sub, 1e-3)) == int(sub.memory_horizon)
        # log10 gradient t log10|w| goes below -6 at the first t > 6 / -log10|w|
        want = int(np.floor(6 / -np.log10(abs(w)))) + 1
        want = want if want < 120 else -1  # beyond the run (w = 0.9: 132)
        assert int(gradient_crossing_step(sub, 1e-6)) == want
    assert int(memory_horizon(ds.sel(w=1.0))) == -1
    assert int(gradient_crossing_step(ds.sel(w=0.5), 1e6, kind="above")) == -1
    want = int(np.floor(6 / np.log10(1.5))) + 1
    assert int(gradient_crossing_step(ds.sel(w=1.5), 1e6, kind="above")) == want
    # the result keeps the grid and stays lazy
    full = memory_horizon(open_results(stores["scalar"]))
    assert full.dims == ("activation", "w", "bias", "amplitude")


def test_growth_rates_against_theory(stores):
    th = growth_rate_theory(open_results(stores["vector"])).load()
    lin = th.sel(activation="identity")
    assert lin.is_exact.all()
    # symmetric W is normal: ||W^t|| = rho^t exactly, the rate is ln rho
    np.testing.assert_allclose(
        lin.measured, np.log(lin.spectral_radius).broadcast_like(lin.measured), atol=1e-9
    )
    np.testing.assert_allclose(
        lin.theory, np.log(lin.spectral_radius).broadcast_like(lin.theory), atol=1e-12
    )
    non = th.sel(activation=["sigmoid", "tanh", "relu"])
    m, t = non.measured.values, non.theory.broadcast_like(non.measured).values
    ok = np.isfinite(m)
    assert (m[ok] <= t[ok] + 1e-9).all()
    smax = open_results(stores["vector"]).max_singular_value.sel(activation="sigmoid")
    np.testing.assert_allclose(th.theory.sel(activation="sigmoid"), np.log(0.25 * smax))
    scal = growth_rate_theory(open_results(stores["scalar"]).sel(bias=0.0, amplitude=1.0))
    lin = scal.sel(activation="identity").load()
    np.testing.assert_allclose(lin.measured, np.log(np.abs(lin.w)), atol=1e-12)


def test_classify_the_lecture_cases(stores):
    ds = open_results(stores["scalar"]).sel(bias=0.0, amplitude=1.0)
    c = classify(ds).load()
    name = {k: v for k, v in CLASSES.items()}
    assert name[int(c.sel(activation="identity", w=0.5))] == "vanishing"
    assert name[int(c.sel(activation="identity", w=1.0))] == "stable memory"
    assert name[int(c.sel(activation="identity", w=1.5))] == "exploding"
    assert name[int(c.sel(activation="identity", w=3.0))] == "exploding"
    assert name[int(c.sel(activation="sigmoid", w=1.5))] == "saturating"
    assert name[int(c.sel(activation="sigmoid", w=-0.5))] == "saturating"
    # bistable: tanh(3 h) keeps the sign of x(0) for ever (the input-free run stays at 0)
    assert name[int(c.sel(activation="tanh", w=3.0))] == "stable memory"
    assert name[int(c.sel(activation="relu", w=0.5))] == "vanishing"
    assert name[int(c.sel(activation="tanh", w=0.5))] == "vanishing"
    assert name[int(c.sel(activation="relu", w=3.0))] == "exploding"
    assert c.attrs["flag_meanings"].split()[1] == "vanishing"


def test_phase_boundary_of_linear_recursions(stores):
    ds = open_results(stores["vector"]).sel(remove_dominant=False)
    b = phase_boundary(ds, "spectral_radius", "activation").load()
    assert float(b.sel(activation="identity")) == pytest.approx(1.0, abs=1e-9)
    # without the grid point at 1: linear interpolation of ln(rho) between 0.8 and 1.2
    b = phase_boundary(ds.drop_sel(spectral_radius=1.0), "spectral_radius", "activation")
    lo, hi = np.log(0.8), np.log(1.2)
    assert float(b.sel(activation="identity")) == pytest.approx(0.8 + 0.4 * lo / (lo - hi))
    with pytest.raises(ValueError, match="select the dimensions"):
        phase_boundary(open_results(stores["vector"]), "spectral_radius", "activation")


@pytest.mark.parametrize(
    ("func", "store", "panels", "lines"),
    [
        (F.scalar_linear, "scalar", 1, 14),  # 6 w x (simulation + closed form), +-|w|^t
        (F.vector_linear, "vector", 2, None),
        (F.scalar_nonlinear, "scalar", 6, 10),  # 2 biases x 3: 5 positive w x 2 input signs
        (F.vector_nonlinear, "vector", 8, 5),  # 2 rows x 4 activations, 5 rho each
        (F.memory_phase, "scalar", 1, 0),
        (F.gradient_vs_lag, "vector", 4, 10),  # 5 rho x (simulation + bound)
        (F.gradient_by_depth, "deep", 2, 9),  # 3 gains x (median + mean field + bound)
        (F.lstm_memory, "lstm_memory", 2, None),
        (F.phase_diagram, "vector", 1, None),
    ],
)
def test_figures_render_from_real_stores(stores, func, store, panels, lines):
    fig = func(open_results(stores[store]))
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(axes) == panels
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel()
        assert _lines(ax) or ax.images
        if lines is not None and lines:
            assert len(_lines(ax)) == lines, ax.get_title()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_phase_diagram_marks_every_crossing_and_joins_no_rows(stores):
    """Every crossing of the growth rate through 0 is found (ln|w| crosses at w = -1 and 1;
    only the first was drawn before), the identity row of the store is marked at w = 1, and
    the marks are not joined across rows of names."""
    ds = open_results(stores["scalar"])
    fig = F.phase_diagram(ds, x="w", y="activation")
    ax = fig.axes[0]
    marks = [ln for ln in _lines(ax) if ln.get_marker() == "|"]
    assert all(ln.get_linestyle() == "None" for ln in marks)
    row = list(ds.activation.values).index("identity")
    ws = ds.w.values
    at = sorted(np.interp(ln.get_xdata()[0], np.arange(len(ws)), ws) for ln in marks
                if ln.get_ydata()[0] == row)  # fmt: skip
    assert at == pytest.approx([1.0])  # this grid's w holds 1, not -1
    from rnnlab.analysis.metrics import crossings

    w = np.array([-1.5, -1.2, -0.8, -0.5, 0.5, 0.8, 1.2, 1.5])
    assert crossings(w, np.log(np.abs(w))) == pytest.approx([-1.0, 1.0], abs=0.05)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_memory_in_use_pairs_the_impulse_and_noise_stores(stores):
    """Figure 14 draws, per activation, the median horizon over seeds of x(0) alone (the
    vector store) and with noise (the noise store); for the linear recursion they are the
    same (superposition: h - hbar does not see the other inputs)."""
    dss = [open_results(stores[k]) for k in ("scalar", "vector", "noise", "deep")]
    fig = F.memory_in_use(dss)
    titles = [a.get_title() for a in fig.axes]
    ax = fig.axes[titles.index("identity")]
    solid = next(ln for ln in _lines(ax) if ln.get_linestyle() == "-")
    dashed = next(ln for ln in _lines(ax) if ln.get_linestyle() == "--")
    vec = open_results(stores["vector"]).sel(activation="identity", remove_dominant=False)
    noi = open_results(stores["noise"]).sel(activation="identity")
    for ds, line in ((vec, solid), (noi, dashed)):
        h = ds.memory_horizon.astype(float)
        want = h.where(h >= 0, np.inf).median("seed").values
        got = line.get_ydata()
        finite = np.isfinite(want)
        np.testing.assert_array_equal(got[finite], np.maximum(want[finite], 1))
    np.testing.assert_array_equal(vec.memory_horizon.values, noi.memory_horizon.values)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bibo_and_nonnormal_figures_draw_the_store_beside_their_bounds(stores):
    """Figure 12: the tanh line is the median max norm and stays below sqrt(n); the linear
    recursion's dotted bound is a / (1 - rho). Figure 13: the solid (Gaussian) line rises
    above 0 before it falls (transient growth), the dashed (symmetric) one never does, and
    the dotted slope is log10 rho."""
    ds = open_results(stores["bibo"])
    fig = F.bibo(ds)
    ax = fig.axes[0]
    tanh = next(ln for ln in _lines(ax) if ln.get_label() == "tanh")
    np.testing.assert_array_equal(tanh.get_ydata(), ds.max_state_norm.sel(activation="tanh"))
    assert (tanh.get_ydata() <= np.sqrt(8)).all()
    dotted = next(ln for ln in _lines(ax) if ln.get_linestyle() == ":")
    np.testing.assert_allclose(dotted.get_ydata(), 1 / (1 - dotted.get_xdata()))
    nn = open_results(stores["nonnormal"])
    fig2 = F.nonnormal(nn)
    ax2 = fig2.axes[0]
    solid = [ln for ln in _lines(ax2) if ln.get_linestyle() == "-"]
    dashed = [ln for ln in _lines(ax2) if ln.get_linestyle() == "--"]
    assert solid[0].get_ydata().max() > 0.05 and dashed[0].get_ydata()[1:].max() < 0
    slope = next(ln for ln in _lines(ax2) if ln.get_linestyle() == ":")
    np.testing.assert_allclose(slope.get_ydata(), slope.get_xdata() * np.log10(0.9))
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)


def test_the_scalar_figures_draw_the_signed_state_of_every_bias(stores):
    """Figure 1 plots h(t) itself (a negative w's states below 0, not |h|); figure 3 has a
    row per bias of the store, each line the store's state."""
    ds = open_results(stores["scalar"])
    fig = F.scalar_linear(ds)
    dots = [ln for ln in _lines(fig.axes[0]) if ln.get_marker() == "o"]
    want = ds.state.sel(activation="identity", w=-0.5, bias=0.0, amplitude=1.0).values
    np.testing.assert_array_equal(dots[0].get_ydata(), want[ds.time.values <= 100])
    assert (dots[0].get_ydata() < 0).any()
    fig3 = F.scalar_nonlinear(ds)
    titles = [a.get_title() for a in fig3.axes]
    assert "tanh, b = 0.5" in titles and "tanh, b = 0" in titles
    ax = fig3.axes[titles.index("tanh, b = 0.5")]
    first = ds.state.sel(activation="tanh", bias=0.5, w=0.5, amplitude=-1.0).values
    np.testing.assert_array_equal(_lines(ax)[0].get_ydata(), first)
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig3)


def test_the_vector_figure_draws_the_stored_response_and_its_eigenvalue_slopes(stores):
    """Left panel: each dashed line is the stored response of the case without the dominant
    part, and it falls like |lambda_2|^t (the store's second_eigenvalue_modulus)."""
    ds = open_results(stores["vector"])
    fig = F.vector_linear(ds)
    left = fig.axes[0]
    dashed = [ln for ln in _lines(left) if ln.get_linestyle() == "--"]
    sub = ds.sel(activation="identity", remove_dominant=True, seed=0)
    assert len(dashed) == sub.sizes["spectral_radius"]
    for ln, rho in zip(dashed, sub.spectral_radius.values, strict=True):
        one = sub.sel(spectral_radius=rho)
        np.testing.assert_array_equal(ln.get_ydata(), np.log10(one.response.values))
        t, y = ln.get_xdata(), ln.get_ydata() * np.log(10)
        half = t >= t[-1] / 2
        slope = np.polyfit(t[half], y[half], 1)[0]
        assert slope == pytest.approx(np.log(float(one.second_eigenvalue_modulus)), abs=1e-6)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_memory_figure_shows_each_cases_class_or_horizon(stores):
    """Every cell's label is the store's: the horizon of a run that forgot, else its class
    (kept, grows, blew up), never "inf" for all three."""
    ds = open_results(stores["scalar"])
    fig = F.memory_phase(ds)
    sub = ds.sel({k: v for k, v in {"bias": 0.0, "amplitude": 1.0}.items() if k in ds.dims})
    labels = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
              for t in fig.axes[0].texts}  # fmt: skip
    names = {1: "kept", 2: "grows", 3: "blew up"}
    cls = sub.memory_class.transpose("activation", "w").values
    hor = sub.memory_horizon.transpose("activation", "w").values
    for (r, c), k in np.ndenumerate(cls):
        assert labels[(r, c)] == (str(hor[r, c]) if k == 0 else names[k]), (r, c)
    assert set(np.unique(cls)) >= {0, 1}  # the store has both
    import matplotlib.pyplot as plt

    plt.close(fig)


WIDE_SPEC = """
[model]
family = "rnn"
n = 1
[grid]
activation = ["identity", "tanh"]
w = {start = -1.5, stop = 1.5, num = 31}
[run]
steps = 200
record = "log"
[store]
path = "wide.zarr"
block_seconds = 0.0002
"""


def test_the_memory_figure_of_many_columns_keeps_its_labels_apart(tmp_path):
    """31 values of w: 11 tick labels (every third), the horizons in their cells, the
    class names left to the legend (they overlapped their neighbours)."""
    (tmp_path / "wide.toml").write_text(WIDE_SPEC)
    ds = open_results(run_sweep(tmp_path / "wide.toml", store=tmp_path / "w.zarr", sync=True).path)
    fig = F.memory_phase(ds)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{v:g}" for v in ds.w.values[::3]] and len(ticks) == 11
    texts = {t.get_text() for t in ax.texts}
    hor, cls = ds.memory_horizon.values, ds.memory_class.values
    assert texts == {str(h) for h in hor[cls == 0]} and (cls != 0).any()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_depth_figure_draws_the_mean_field_prediction_and_the_bound(stores):
    """relu at zero bias: chi_1 = gain^2 / 2 in closed form, so the dotted lines have the
    slope 0.5 log10(gain^2 / 2) per layer; the dashed bounds log10(2 gain) (gamma = 1), and
    the medians lie below them."""
    ds = open_results(stores["deep"])
    fig = F.gradient_by_depth(ds)
    ax = fig.axes[[a.get_title() for a in fig.axes].index("relu, width 16")]
    dotted = [ln for ln in _lines(ax) if ln.get_linestyle() == ":"]
    dashed = [ln for ln in _lines(ax) if ln.get_linestyle() == "--"]
    solid = [ln for ln in _lines(ax) if ln.get_linestyle() == "-"]
    for g, dot, dash, med in zip(ds.gain.values, dotted, dashed, solid, strict=True):
        layer = dot.get_xdata()
        np.testing.assert_allclose(dot.get_ydata(), layer * 0.5 * np.log10(g**2 / 2), atol=1e-12)
        np.testing.assert_allclose(dash.get_ydata(), layer * np.log10(2 * g), atol=1e-12)
        assert np.all(med.get_ydata() <= dash.get_ydata() + 1e-9)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_lstm_and_input_weight_figures_have_a_line_per_group(stores):
    import matplotlib.pyplot as plt

    ds = open_results(stores["lstm_memory"])
    fig = F.lstm_memory(ds)
    left, right = fig.axes[:2]
    assert len(_lines(left)) == 2 * 3  # all paths and the carousel, per forget bias
    last = ds.isel(time=-1).median("seed")
    image = right.images[0].get_array()
    want = last.log10_cell_gradient_norm.transpose("variant", "forget_bias").values
    np.testing.assert_allclose(image, np.clip(want, -10, 10))
    texts = [t.get_text() for t in right.texts]
    direct = last.log10_carousel_gain.transpose("variant", "forget_bias").values
    assert texts == [
        f"{a:.1f}\n({d:.1f})" for a, d in zip(want.ravel(), direct.ravel(), strict=True)
    ]
    nfg = list(ds.variant.values).index("NFG")
    assert (direct[nfg] == 0).all()  # no forget gate: the carousel's gain is exactly 1
    plt.close(fig)
    dss = [open_results(stores[f"{f}_gradients"]) for f in ("rnn", "lstm", "gru")]
    fig = F.input_weight_gradients(dss)
    (ax,) = fig.axes
    assert [ln.get_label() for ln in _lines(ax)] == [
        "RNN (H = 8)", "LSTM (H = 8, variant vanilla)", "LSTM (H = 8, variant NFG)",
        "GRU (H = 8)",
    ]  # fmt: skip
    assert all(len(ln.get_xdata()) == 31 for ln in _lines(ax))
    plt.close(fig)


def test_a_figure_without_its_data_says_why(stores):
    scalar = open_results(stores["scalar"])
    with pytest.raises(MissingData, match="lstm store"):
        F.lstm_memory(scalar)
    with pytest.raises(MissingData, match="loss_step"):
        F.input_weight_gradients(scalar)
    with pytest.raises(MissingData, match="mlp store"):
        F.gradient_by_depth(scalar)


@pytest.fixture(scope="module")
def report(stores, tmp_path_factory):
    """The report of every store, PNG only (SVG: below), drawn once for the tests that
    read it (drawing every figure takes about 20 s)."""
    out = tmp_path_factory.mktemp("report")
    return write_report(list(stores.values()), out, formats=("png",), dpi=30), out


def test_report_links_every_figure_and_every_link_exists(stores, report, tmp_path):
    rep, drawn = report
    out = tmp_path / "report"
    shutil.copytree(drawn, out)  # this test replaces it below
    names = {f["name"] for f in rep.figures}
    assert names == {name for name, _, _ in FIGURES}  # every figure applies to some store
    html = (out / "index.html").read_text()
    links = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    for f in rep.figures:
        assert set(f["files"]) <= links
    for link in links:
        assert (out / link).is_file(), link
    assert {p.suffix for p in out.iterdir()} == {".png", ".html"}
    assert all(s["reason"] for s in rep.skipped)
    assert "measured growth rate vs ln|lambda_max|" in html
    assert html.count("<pre>") == len(stores)  # every store's spec
    # a second report replaces the first
    rep2 = write_report([stores["scalar"]], out)
    assert len(list(out.glob("*.png"))) == len(rep2.figures)


def test_figures_are_numbered_as_in_the_docs_and_say_what_holds_on_their_store(report):
    """Each figure function's docstring starts "Figure N:" with N its place in FIGURES, the
    docs' table lists it under that number, the report labels it so (5a, 5b for several
    stores), and where its claim has a check, the report prints the store's own numbers."""
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "analysis.md").read_text()
    for n, (name, func, _) in enumerate(F.FIGURES, 1):
        assert func.__doc__.lstrip().startswith(f"Figure {n}:"), name
        assert f"| {n} | `{name}" in docs, name
    rep, out = report
    order = [name for name, _, _ in F.FIGURES]
    for f in rep.figures:
        assert f["label"].rstrip("abcdefghij") == str(order.index(f["name"]) + 1)
    checked = {f["name"]: f["checked"] for f in rep.figures if f["checked"]}
    assert "equals ln|w| to" in checked["scalar_linear"]
    assert "of mean field over" in checked["gradient_by_depth"]
    for name in ("scalar_nonlinear", "vector_nonlinear", "gradient_vs_lag", "phase_diagram",
                 "input_weight_gradients", "memory_in_use", "constant_error_flow",
                 "stacked_layers"):  # fmt: skip
        assert checked[name].startswith("On th"), name
    assert "0 of the" not in checked["gradient_vs_lag"]
    html = (out / "index.html").read_text()
    assert "<b>Figure 5a.</b>" in html and "On this store" in html


def test_figures_command_line(stores, tmp_path):
    out = rnnlab("figures", str(stores["deep"]), "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "r" / "index.html").exists()
    for suffix in (".png", ".svg"):  # the default formats
        assert (tmp_path / "r" / "gradient_by_depth__deep").with_suffix(suffix).is_file()
    bad = rnnlab("figures", str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("rnnlab: error: ") and "no such store" in bad.stderr
    assert not (tmp_path / "b").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    busy = rnnlab("figures", str(stores["deep"]), "--out", str(tmp_path / "mine"), cwd=tmp_path)
    assert busy.returncode == 2 and "not an rnnlab report" in busy.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.tex"]


def test_report_command_runs_specs_then_draws(tmp_path):
    spec = tmp_path / "deep.toml"
    spec.write_text(SPECS["deep"] + '[store]\npath = "deep.zarr"\n')
    out = rnnlab("report", str(spec), "--sync", "--no-progress", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "deep.zarr").exists()
    assert Path(tmp_path / "rep" / "gradient_by_depth__deep.png").exists()
    again = rnnlab("report", str(spec), "--no-progress", "--out", "rep", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 blocks run" in again.stdout and "Dask dashboard" not in again.stdout  # no cluster
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[model]\nfamily = "lstm"\nvariant = "X"\n[run]\nsteps = 5\n[store]\npath = "b.zarr"\n'
    )
    out = rnnlab("report", str(spec), str(bad), "--sync", "--out", "rep2", cwd=tmp_path)
    assert out.returncode == 2 and "model.variant" in out.stderr
    assert not (tmp_path / "rep2").exists() and not (tmp_path / "b.zarr").exists()


def test_constant_error_flow_draws_the_store_and_its_check_measures_it(stores):
    """Figure 15: the carousel's gradient lines are the store's (all 0), the dotted RNN lines
    are t log10 rho, sigmoid's state lies on 0.5 sqrt(n) t; the check quotes these."""
    ds = open_results(stores["cec"])
    fig = F.constant_error_flow(ds)
    left, mid, right = fig.axes[:3]
    tanh = next(ln for ln in _lines(left) if ln.get_label() == "tanh")
    np.testing.assert_array_equal(
        tanh.get_ydata(), ds.log10_gradient_norm.sel(activation="tanh").median("seed")
    )
    assert np.abs(tanh.get_ydata()).max() < 1e-12
    dotted = [ln for ln in _lines(left) if ln.get_linestyle() == ":"]
    for ln, rho in zip(dotted, (0.9, 1.1), strict=True):
        np.testing.assert_allclose(ln.get_ydata(), ln.get_xdata() * np.log10(rho))
    sig = next(ln for ln in _lines(right) if ln.get_label() == "sigmoid")
    t, y = sig.get_xdata(), sig.get_ydata()
    assert y[-1] / t[-1] == pytest.approx(0.5 * np.sqrt(8), rel=0.03)
    resp = next(ln for ln in _lines(mid) if ln.get_label() == "tanh").get_ydata()
    assert np.ptp(resp) < 1e-10 * resp[0]
    from rnnlab.analysis.checks import check

    text = check("constant_error_flow", ds)
    assert "sqrt(n) / 2 = 1.414" in text and "<= " in text
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_stacked_layers_figure_and_check(stores):
    """Figure 16: one line per (layers, rho) per activation, each the store's median; the
    check compares each depth's growth rate with one layer's, and the figure refuses a store
    without a layers dimension; figure 6's single-layer bound refuses a stacked store."""
    ds = open_results(stores["stacked"])
    fig = F.stacked_layers(ds)
    ax = fig.axes[0]
    drawn = [ln for ln in _lines(ax) if ln.get_linestyle() in ("-", "--") and ln.get_color()
             != "0.6"]  # fmt: skip
    assert len(drawn) == 4  # 2 layers x 2 radii
    want = ds.log10_gradient_norm.sel(activation="identity", layers=3, spectral_radius=1.1)
    assert any(np.array_equal(ln.get_ydata(), want.median("seed").values, equal_nan=True)
               for ln in drawn)  # fmt: skip
    from rnnlab.analysis.checks import check

    g = ds.growth_rate.median("seed")
    diff = g - g.sel(layers=1)
    lin = diff.sel(activation="identity")
    text = check("stacked_layers", ds)
    assert f"identity {float(lin.min()):+.4f} to {float(lin.max()):+.4f}" in text
    assert 0 <= float(lin.min()) and float(lin.max()) < 2 * np.log(2) / 150 + 1e-3  # t^2
    # block triangular: a stack never decays faster than its first layer
    assert float(diff.sel(activation="tanh").min()) > -1e-3
    with pytest.raises(MissingData, match="layers dimension"):
        F.stacked_layers(open_results(stores["vector"]))
    with pytest.raises(MissingData, match="stacked"):
        F.gradient_vs_lag(ds)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_weight_gradient_by_layer_draws_each_layers_share(stores):
    """Figure 17: every line is the median over seeds of ||dL/dA_t||^2 / sum_t, computed
    here from the stored log10 values; the shares of a case sum to 1; tanh at gain 2 puts
    more of it in the first layers than at gain 0.5, and relu's shares do not move."""
    ds = open_results(stores["deep"])
    fig = F.weight_gradient_by_layer(ds)
    g = ds.log10_layer_weight_grad.load()
    sq = 10.0 ** (2 * (g - g.max("time")))
    share = sq / sq.sum("time")
    np.testing.assert_allclose(share.sum("time"), 1.0, rtol=1e-12)
    tanh = fig.axes[0]
    for ln, gain in zip(_lines(tanh)[:3], ds.gain.values, strict=True):
        want = share.sel(activation="tanh", gain=gain).median("seed").values
        np.testing.assert_allclose(ln.get_ydata(), want, rtol=1e-12)
    head = share.isel(time=slice(0, 10)).sum("time").median("seed")
    assert float(head.sel(activation="tanh", gain=2.0)) > float(
        head.sel(activation="tanh", gain=0.5)
    )
    relu = share.sel(activation="relu")
    assert float(np.abs(relu - relu.sel(gain=0.5)).max()) < 1e-12
    from rnnlab.analysis.checks import check

    assert "first 10 layers" in check("weight_gradient_by_layer", ds)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cliff_figure_draws_the_stores_and_counts_the_outcomes(stores):
    """Figure 18: the map is the landscape store's loss, each path a descent of the descent
    store, the drawn starts were thrown (a step > 5 without clipping), and the outcome
    counts in the legend and in the check are those of the final losses."""
    land = open_results(stores["cliff_landscape"])
    desc = open_results(stores["cliff"])
    fig = F.cliff([land, desc, open_results(stores["scalar"])])
    left, mid, right = fig.axes[:3]
    mesh = left.collections[0]
    np.testing.assert_array_equal(
        np.asarray(mesh.get_array()).ravel(),
        land.loss.isel(time=0).transpose("bias", "w").values.ravel(),
    )
    paths = _lines(left)
    starts = [ln for ln in paths if ln.get_marker() == "o"]
    assert starts
    losses = [ln.get_ydata() for ln in _lines(mid)]
    for st in starts:
        w0, b0 = st.get_xdata()[0], st.get_ydata()[0]
        ms = desc.max_step.sel(clip=0.0, w=w0, bias=b0)
        assert not float(ms) <= 5.0
        want = desc.loss.sel(clip=1.0, w=w0, bias=b0).values
        assert any(np.array_equal(y, want, equal_nan=True) for y in losses)
    ends = desc.final_loss.transpose("w", "bias", "clip").values < 1e-4
    both = int((ends[..., 0] & ends[..., 1]).sum())
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert f"both converge ({both})" in legend
    from rnnlab.analysis.checks import check

    text = check("cliff", [land, desc])
    assert f"{both} both" in text
    with pytest.raises(MissingData, match="cliff store"):
        F.cliff(open_results(stores["scalar"]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_vector_figures_draw_the_stores_values(stores):
    """Figure 4's lines are the store's state norms and responses (seed 0, input u), figure
    6's the stored log10 gradient norms with the dotted bound t log10(gamma sigma_max)."""
    from rnnlab.analysis.metrics import gamma

    ds = open_results(stores["vector"])
    sub = ds.sel(remove_dominant=False, seed=0)
    fig = F.vector_nonlinear(ds)
    acts = [str(a) for a in ds.activation.values]
    for j, act in enumerate(acts):
        for row, var in enumerate(("state_norm", "response")):
            lines = [ln for ln in _lines(fig.axes[row * len(acts) + j]) if ln.get_marker() != "x"]
            for ln, rho in zip(lines, ds.spectral_radius.values, strict=True):
                want = sub[var].sel(activation=act, spectral_radius=rho).values
                want = np.where((want >= 1e-250) & (want <= 1e250), want, np.nan)
                np.testing.assert_array_equal(ln.get_ydata(), want)
    fig6 = F.gradient_vs_lag(ds)
    for ax, act in zip(fig6.axes, acts, strict=True):
        solid = [ln for ln in _lines(ax) if ln.get_linestyle() == "-"]
        dotted = [ln for ln in _lines(ax) if ln.get_linestyle() == ":"]
        for ln, dot, rho in zip(solid, dotted, ds.spectral_radius.values, strict=True):
            one = sub.sel(activation=act, spectral_radius=rho)
            np.testing.assert_array_equal(ln.get_ydata(), one.log10_gradient_norm.values)
            slope = np.log10(gamma(act) * float(one.max_singular_value))
            np.testing.assert_allclose(dot.get_ydata(), dot.get_xdata() * slope)
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig6)


def test_training_figures_draw_the_stores_values(stores):
    """Figure 19: the learning curves are the median training loss at the longest length,
    the right panel the median final loss per length, the dotted line the chance level;
    figure 20: one line per seed and clip value, each the stored gradient norm."""
    ds = open_results(stores["training"])
    fig = F.training_by_length(ds)
    left, right = fig.axes[:2]
    rnn = next(ln for ln in _lines(left) if ln.get_label() == "RNN")
    np.testing.assert_array_equal(
        rnn.get_ydata(), ds.train_loss.sel(cell="rnn", length=8).median("seed").values
    )
    med = [ln for ln in _lines(right) if ln.get_marker() == "o"]
    rel = (ds.final_loss / ds.baseline).sel(cell="lstm").median("seed").values
    np.testing.assert_array_equal(med[1].get_ydata(), rel)
    dotted = [ln for ln in _lines(left) if ln.get_linestyle() == ":"]
    assert dotted and dotted[0].get_ydata()[0] == pytest.approx(1 / 6)
    assert [ln.get_ydata()[0] for ln in _lines(right) if ln.get_linestyle() == ":"] == [1.0]
    from rnnlab.analysis.checks import check

    assert "over the chance level" in check("training_by_length", ds)
    cl = open_results(stores["clipping"])
    fig2 = F.clipping(cl)
    grads = [ln.get_ydata() for ln in _lines(fig2.axes[0])]
    want = cl.train_grad_norm.sel(clip="norm", seed=1).values
    want = np.where((want >= 1e-250) & (want <= 1e250), want, np.nan)
    assert any(np.array_equal(g, want, equal_nan=True) for g in grads)
    assert "runs diverged" in check("clipping", cl)
    with pytest.raises(MissingData, match="train store"):
        F.clipping(open_results(stores["scalar"]))
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)


def test_initialisation_figure_draws_each_runs_final_loss(stores):
    """Figure 22: per activation, a marker per seed at each initialisation and optimiser is
    the stored final loss over the chance level; the dashed line is the task's solved
    level over it; the check counts the runs below it."""
    ds = open_results(stores["initialisation"])
    fig = F.initialisation(ds)
    rel = ds.final_loss / ds.baseline
    for ax, act in zip(fig.axes[:2], ("tanh", "relu"), strict=True):
        dots = [ln for ln in _lines(ax) if ln.get_marker() == "o" and len(ln.get_xdata())]
        for j, opt in enumerate(("sgd", "momentum")):
            for i, init in enumerate(("identity", "normal")):
                want = rel.sel(activation=act, init=init, optimizer=opt).values
                x = i + (j - 0.5) * 0.25
                got = [ln.get_ydata() for ln in dots if ln.get_xdata()[0] == x]
                assert len(got) == 1
                np.testing.assert_array_equal(got[0], want)
        dashed = [ln for ln in _lines(ax) if ln.get_linestyle() == "--"]
        assert dashed[0].get_ydata()[0] == pytest.approx(0.01 * 6)
    from rnnlab.analysis.checks import check

    text = check("initialisation", ds)
    one = rel.sel(activation="relu", init="normal", optimizer="sgd").values
    entry = text.split("relu normal sgd: ")[1].split(";")[0]
    assert entry.startswith(f"{np.median(one):.2g} ({one.min():.2g}-{one.max():.2g})")
    assert entry.endswith(f"{int((one < 0.06).sum())}/2 solved")
    with pytest.raises(MissingData, match="optimizer"):
        F.initialisation(open_results(stores["clipping"]).expand_dims(init=["normal"]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_lyapunov_figure_draws_the_stored_spectra_and_published_values(stores):
    """Figure 23: the spectra panel's lines are the median spectra, the other panels' markers
    each seed's largest exponent, dimension and entropy per unit; the published values and
    mean-field theory are drawn; the check compares them on the store."""
    from rnnlab.analysis.meanfield import depth_growth_rate
    from rnnlab.analysis.published import TANH_SPECTRA

    ds = open_results(stores["lyapunov"])
    fig = F.lyapunov_spectra(ds)
    spec, lam, dim, ent = fig.axes[:4]
    med = ds.lyapunov_exponents.median("seed")
    for ln, g in zip(_lines(spec), ds.gain.values, strict=False):
        np.testing.assert_array_equal(ln.get_ydata(), med.sel(gain=g).values)
        np.testing.assert_allclose(ln.get_xdata(), np.arange(1, 21) / 20)
    per_unit = (dim, ds.kaplan_yorke_dimension / 20), (ent, ds.entropy_rate / 20)
    for ax, want in ((lam, ds.lyapunov_exponents.isel(exponent=0)), *per_unit):
        dots = [ln for ln in _lines(ax) if ln.get_marker() == "o"]
        got = np.stack([d.get_ydata() for d in dots], axis=1)
        np.testing.assert_array_equal(got, want.transpose("gain", "seed").values)
        pub = next(ln for ln in _lines(ax) if ln.get_marker() == "D")
        assert list(pub.get_xdata()) == sorted(TANH_SPECTRA)
    theory = next(ln for ln in _lines(lam) if ln.get_linestyle() == ":")
    x, y = theory.get_data()
    assert y[-1] == pytest.approx(depth_growth_rate("tanh", x[-1]))
    from rnnlab.analysis.checks import check

    text = check("lyapunov_spectra", ds)
    low = float(ds.lyapunov_exponents.isel(exponent=0).sel(gain=0.5).max())
    assert f"below g = 1 the largest exponent is at most {low:.3f}, ln rho(W) to" in text
    assert "of the published values within" in text and "peaks at g = " in text
    with pytest.raises(MissingData, match=r"run\.outputs must list lyapunov_exponents"):
        F.lyapunov_spectra(open_results(stores["scalar"]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_order_to_chaos_figure_draws_the_growth_rates_and_the_stored_theory(stores):
    """Figure 24: the map is the stored growth rate over (bias_std, gain), the black contour
    the stored chi_1 = 1, the right panel the stored depth scales; the check measures the
    distance of the sign change from the line."""
    ds = open_results(stores["order_to_chaos"])
    fig = F.order_to_chaos(ds)
    left = fig.axes[0]
    right = next(a for a in fig.axes if a.get_title().startswith("mean field"))
    mesh = left.collections[0]
    want = ds.growth_rate.transpose("bias_std", "gain").values
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(want.shape), want)
    assert any(c.get_edgecolor().size for c in left.collections[1:])  # the contour
    line = _lines(right)[0]
    want = np.abs(ds.gradient_depth_scale.sel(bias_std=0.3).values)
    np.testing.assert_array_equal(line.get_ydata(), want)
    from rnnlab.analysis.checks import check

    assert "changes sign within" in check("order_to_chaos", ds)
    with pytest.raises(MissingData, match="chi_1"):
        F.order_to_chaos(open_results(stores["scalar"]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_memory_capacity_figure_draws_the_stored_capacities(stores):
    """Figure 25: a line per amplitude of the tanh capacities, the linear one dashed, the
    bound n dotted; on the right each delay's capacity; the check names each peak."""
    ds = open_results(stores["capacity"])
    fig = F.memory_capacity(ds)
    left, right = fig.axes[:2]
    tanh = ds.memory_capacity.sel(activation="tanh")
    solid = [ln for ln in _lines(left) if ln.get_marker() == "o"]
    for ln, a in zip(solid, (0.01, 1.0), strict=True):
        np.testing.assert_array_equal(ln.get_ydata(), tanh.sel(amplitude=a).values)
    dashed = next(ln for ln in _lines(left) if ln.get_linestyle() == "--")
    lin = ds.memory_capacity.sel(activation="identity", amplitude=0.01).values
    np.testing.assert_array_equal(dashed.get_ydata(), lin)
    first = _lines(right)[0]
    want = ds.memory_capacity_by_delay.sel(activation="tanh", amplitude=0.01, spectral_radius=0.5)
    np.testing.assert_array_equal(first.get_ydata(), want.values)
    from rnnlab.analysis.checks import check

    text = check("memory_capacity", ds)
    peak = float(tanh.sel(amplitude=0.01).max())
    assert f"a = 0.01: {peak:.1f} at rho = " in text
    with pytest.raises(MissingData, match="memory_capacity"):
        F.memory_capacity(open_results(stores["scalar"]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_fixed_points_figure_draws_the_trained_networks_fixed_points(stores):
    """Figure 26: per cell, one grey trajectory per test sequence (the trained network's
    hidden states on their principal components) and a marker per fixed point, each a
    state that PyTorch's own module, loaded with the trained weights, maps to itself: the
    points the sweep stored, the same as found again from the weights."""
    torch = pytest.importorskip("torch")
    from rnnlab.analysis.figures import trained_fixed_points
    from rnnlab.engine.fixedpoints import visited_fixed_points

    ds = open_results(stores["fixed_points"])
    fig = F.fixed_points_figure(ds)
    assert [a.get_title().split(",")[0] for a in fig.axes[:2]] == ["trained rnn", "trained gru"]
    for a, cell in zip(fig.axes[:2], ("rnn", "gru"), strict=True):
        net, h, fp = trained_fixed_points(ds.sel(cell=cell, seed=0))
        assert len(_lines(a)) == h.shape[0]
        again = visited_fixed_points(net, 4)[1]
        np.testing.assert_array_equal(fp.kind, again.kind)
        np.testing.assert_allclose(fp.points, again.points, rtol=0, atol=1e-12)
        assert sum(len(c.get_offsets()) for c in a.collections) == len(fp.points) >= 1
        w = net["layers"][0]
        H, I = np.shape(w["weight_hh"])[1], np.shape(w["weight_ih"])[1]
        module = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU}[cell](I, H).double()
        with torch.no_grad():
            for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{key}_l0").copy_(torch.tensor(np.asarray(w[key])))
        for p in fp.points:
            _, out = module(torch.zeros(1, 1, I, dtype=torch.float64),
                            torch.tensor(p).view(1, 1, H))  # fmt: skip
            np.testing.assert_allclose(out.detach().numpy().ravel(), p, atol=1e-9)
    from rnnlab.analysis.checks import check

    text = check("fixed_points", ds)
    assert "rnn: " in text and "gru: " in text and "slowest |lambda|" in text
    with pytest.raises(MissingData, match="trained_weights"):
        F.fixed_points_figure(open_results(stores["clipping"]))
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_generalisation_figure_draws_the_test_accuracies(stores):
    """Figure 21: per task, the median test accuracy against the test length is the store's,
    with the trained length marked; the check quotes the longest length."""
    ds = open_results(stores["generalisation"])
    fig = F.generalisation(ds)
    for ax, task in zip(fig.axes[:2], ("parity", "binary_addition"), strict=True):
        med = next(ln for ln in _lines(ax) if ln.get_marker() == "o")
        want = ds.test_accuracy.sel(task=task, cell="rnn").median("seed").values
        np.testing.assert_array_equal(med.get_ydata(), want)
        assert any(ln.get_xdata()[0] == 4 for ln in _lines(ax) if ln.get_linestyle() == "--")
    from rnnlab.analysis.checks import check

    assert "at 16 steps" in check("generalisation", ds)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_accessor_is_the_functional_api(stores):
    """ds.rnnlab.classify() and ds.rnnlab.plot.<figure>() give what the functions give; a
    selection keeps the accessor's attributes."""
    ds = open_results(stores["scalar"])
    xr.testing.assert_identical(ds.rnnlab.classify(), classify(ds))
    xr.testing.assert_identical(ds.rnnlab.classify(tol=0.1), classify(ds, tol=0.1))
    import matplotlib.pyplot as plt

    ours, theirs = ds.rnnlab.plot.scalar_linear(tmax=20), F.scalar_linear(ds, tmax=20)
    for a, b in zip(ours.axes, theirs.axes, strict=True):
        assert [np.asarray(ln.get_ydata()).tolist() for ln in _lines(a)] == [
            np.asarray(ln.get_ydata()).tolist() for ln in _lines(b)
        ]
    plt.close("all")
    assert set(dir(ds.rnnlab.plot)) == {name for name, _, _ in F.FIGURES}
    with pytest.raises(AttributeError, match=r"no figure 'scalar_lin'.*scalar_linear"):
        ds.rnnlab.plot.scalar_lin  # noqa: B018
    sub = ds.sel(activation="tanh")
    assert sub.rnnlab.spec == ds.rnnlab.spec and sub.rnnlab.provenance == ds.rnnlab.provenance


def test_the_accessor_reads_the_spec_and_the_provenance_from_the_store(stores):
    """The spec as the TOML that made the store (parsed by tomllib from the spec file, not
    by rnnlab), the provenance the attributes jobs.schema.provenance writes."""
    import tomllib

    from rnnlab.analysis.accessor import _spec_data
    from rnnlab.jobs.schema import provenance

    ds = open_results(stores["scalar"])
    spec_file = Path(stores["scalar"]).with_suffix(".toml")
    assert ds.rnnlab.spec == tomllib.loads(spec_file.read_text())
    keys = {"spec_sha256", *provenance()}
    assert set(ds.rnnlab.provenance) == {k for k in keys if k in ds.attrs} >= keys - {"git_commit"}
    assert ds.rnnlab.provenance["spec_sha256"] == ds.attrs["spec_sha256"]
    assert _spec_data("model:\n  family: rnn\ngrid: {w: [0.5, 1.0]}\n") == {
        "model": {"family": "rnn"}, "grid": {"w": [0.5, 1.0]}}  # fmt: skip
    with pytest.raises(KeyError, match=r"no 'spec' attribute.*open_results"):
        xr.Dataset().rnnlab.spec  # noqa: B018
