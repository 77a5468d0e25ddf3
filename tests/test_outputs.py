"""Outputs on demand: each variable asked for alone equals the same variable of a run that
computes everything, bit for bit (switching trackers off changes nothing else); the state
vectors match independent references; bad requests name the argument and the fix."""

import numpy as np
import pytest
import xarray as xr

from rnnlab.engine import (
    OUTPUTS,
    TRACKERS,
    init_layers,
    mlp_outputs,
    mlp_weights,
    network_outputs,
    recurrent_matrix,
    rnn_outputs,
    simulate_mlp,
    simulate_network,
    simulate_rnn,
)
from rnnlab.engine.reference import input_sequence, rnn_reference
from rnnlab.jobs import to_dataset
from rnnlab.jobs.runner import run_sweep
from rnnlab.jobs.spec import SpecError

from .sweeps import write_spec

RNG = np.random.default_rng(7)
W_SCALAR = RNG.uniform(-1.3, 1.3, 21)
W_VECTOR = np.stack([recurrent_matrix(5, "gaussian", s, spectral_radius=1.1) for s in range(3)])


def _stack(cell, H, L, seeds, **kw):
    per = [init_layers(cell, H, L, seed=s, init="normal", scale=0.7, **kw) for s in seeds]
    return [{k: np.stack([w[l][k] for w in per]) for k in per[0][l]} for l in range(L)]


RUNS = {
    "scalar tanh": (
        lambda **o: simulate_rnn(W_SCALAR, activation="tanh", input="noise", steps=300, **o),
        rnn_outputs(1)[0],
    ),
    "scalar relu float32": (
        lambda **o: simulate_rnn(W_SCALAR, activation="relu", steps=300, dtype="float32", **o),
        rnn_outputs(1)[0],
    ),
    "vector tanh": (
        lambda **o: simulate_rnn(W_VECTOR, activation="tanh", input="noise", steps=200, **o),
        rnn_outputs(5)[0],
    ),
    "lstm FGR, 2 layers, loss": (
        lambda **o: simulate_network(
            "lstm",
            _stack("lstm", 4, 2, [1, 2], peepholes=True, gate_recurrence=True),
            variant="FGR",
            steps=60,
            input="noise",
            loss_step=40,
            record="all",
            **o,
        ),
        network_outputs("lstm", True)[0],
    ),
    "gru float32": (
        lambda **o: simulate_network(
            "gru", _stack("gru", 5, 1, [3, 4]), steps=80, dtype="float32", **o
        ),
        tuple(v for v in network_outputs("gru")[0] if not v.startswith("memory_capacity")),
    ),
    "cec relu": (
        lambda **o: simulate_network(
            "cec", _stack("cec", 4, 1, [5]), activation="relu", steps=50, input="noise", **o
        ),
        network_outputs("cec")[0],
    ),
    "stacked rnn": (
        lambda **o: simulate_network("rnn", _stack("rnn", 4, 3, [6, 7]), steps=70, **o),
        # an impulse input: "all" has no memory capacity (nothing random to read out)
        tuple(v for v in network_outputs("rnn")[0] if not v.startswith("memory_capacity")),
    ),
    "mlp": (
        lambda **o: simulate_mlp(mlp_weights(6, 30, seed=1), [0.2, 0.5], activation="tanh", **o),
        mlp_outputs()[0],
    ),
}


@pytest.mark.parametrize("run", RUNS)
def test_each_output_alone_equals_the_full_run(run):
    simulate, available = RUNS[run]
    full = simulate(outputs="all")
    assert list(full.keys()) == list(available)
    for name in available:
        one = simulate(outputs=[name])
        assert list(one.keys()) == [name]
        np.testing.assert_array_equal(one[name], full[name], err_msg=name, strict=True)
    # the trackers a variable needs are on when it is asked for, off otherwise
    state = simulate(outputs=["state_norm"])
    assert state.attrs["gradient_method"] == "none"


@pytest.mark.parametrize("run", RUNS)
def test_the_default_is_everything_but_the_state_vectors_and_the_spectrum(run):
    simulate, available = RUNS[run]
    default = list(simulate().keys())
    costly = {"lyapunov", "capacity"}
    opt_in = [v for v in available if OUTPUTS[v].kind == "vector" or costly & set(OUTPUTS[v].needs)]
    assert default == [v for v in available if v not in opt_in]


def test_every_output_names_known_trackers():
    for o in OUTPUTS.values():
        assert set(o.needs) <= set(TRACKERS), o.name
    assert OUTPUTS["state"].needs == () and OUTPUTS["response"].needs == ("response",)


def test_hidden_states_of_vector_recursions_match_the_numpy_reference():
    C = RNG.standard_normal((3, 5))
    b = 0.2 * RNG.standard_normal((3, 5))
    res = simulate_rnn(
        W_VECTOR, C, b, activation="tanh", steps=80, input="noise", noise_seed=[0, 1, 2],
        record="all", outputs=["hidden_state", "state_norm"],
    )  # fmt: skip
    from rnnlab.engine import noise_keys

    keys = noise_keys([0, 1, 2], 5)
    for i in range(3):
        x = input_sequence("noise", 80, 1.0, int(keys[i]))
        ref = rnn_reference(W_VECTOR[i], C[i], b[i], x, "tanh")
        np.testing.assert_allclose(res["hidden_state"][i], ref["h"], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(
        np.linalg.norm(res["hidden_state"], axis=-1) > 0, res["state_norm"] > 0
    )
    np.testing.assert_allclose(
        np.linalg.norm(res["hidden_state"], axis=-1), res["state_norm"], rtol=1e-14
    )


def test_hidden_and_cell_states_of_stacked_lstms_are_every_layer_in_order():
    layers = _stack("lstm", 3, 2, [0])
    res = simulate_network(
        "lstm", layers, steps=20, input="noise", record="all",
        outputs=["hidden_state", "cell_state", "state_norm", "cell_norm"],
    )  # fmt: skip
    assert res["hidden_state"].shape == (1, 20, 6) == res["cell_state"].shape
    np.testing.assert_allclose(
        np.linalg.norm(res["hidden_state"], axis=-1), res["state_norm"], rtol=1e-14
    )
    np.testing.assert_allclose(
        np.linalg.norm(res["cell_state"], axis=-1), res["cell_norm"], rtol=1e-14
    )
    ds = to_dataset(res)
    assert ds.hidden_state.dims == ("case", "time", "unit")
    assert ds.hidden_state.attrs["units"] == "1"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: simulate_rnn([0.5], outputs=["hidden_state"]), "outputs: 'hidden_state' is not"),
        (lambda: simulate_rnn(W_VECTOR, outputs=["state"]), "n = 1 recursions: use state_norm"),
        (lambda: simulate_rnn([0.5], outputs=["sate"]), r"use 'all' or names from state, "),
        (lambda: simulate_rnn([0.5], outputs=[]), "no output requested"),
        (lambda: simulate_rnn([0.5], outputs=[3]), "give variable names"),
        (
            lambda: simulate_network(
                "gru", init_layers("gru", 3), outputs="log10_input_weight_grad"
            ),
            "it needs loss_step",
        ),
        (lambda: simulate_network("gru", init_layers("gru", 3), outputs="cell_norm"), "LSTM only"),
        (lambda: simulate_rnn([0.5], parallel="yes"), "parallel must be True, False or"),
        (lambda: simulate_rnn([0.5], steps=2.5), "steps must be an integer"),
        (lambda: simulate_rnn([0.5], record="log", num_records=1), "num_records must be >= 2"),
    ],
)
def test_bad_requests_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_huge_request_is_refused_before_anything_is_allocated():
    with pytest.raises(ValueError, match="GiB of arrays, more than half of this machine"):
        simulate_rnn(np.zeros(2**20), steps=10**6, record="all")
    # 10^9 recorded steps of one case: refused before the 8 GB list of steps is made
    import tracemalloc

    tracemalloc.start()
    for run in (
        lambda: simulate_rnn([0.5], steps=10**9, record="all"),
        lambda: simulate_network("rnn", init_layers("rnn", 4), steps=10**9, record="all"),
    ):
        with pytest.raises(ValueError, match="GiB of arrays, more than half of this machine"):
            run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100e6, peak
    # log recording of a huge num_records costs at most one record per step
    res = simulate_rnn([0.5], steps=50, record="log", num_records=10**9, outputs=["state"])
    assert res.time[0] == 0 and res.time[-1] == 49 and res["state"].shape[1] <= 50


SPEC = """
[model]
family = "lstm"
n = 4
layers = 2
init = "normal"
init_scale = 0.5

[grid]
forget_bias = [0.0, 2.0]
seed = {range = 2}

[run]
steps = 30
record = "all"
input = "noise"
outputs = %(outputs)s

[store]
path = "o.zarr"
block_seconds = 0.0001
"""


def test_a_sweep_stores_the_requested_outputs_only(tmp_path):
    spec = write_spec(tmp_path, SPEC, outputs='["hidden_state", "growth_rate", "cell_norm"]')
    ds = xr.open_zarr(run_sweep(spec, sync=True, store=tmp_path / "o.zarr").path)
    assert set(ds.data_vars) == {"hidden_state", "growth_rate", "cell_norm", "block_done"}
    assert ds.hidden_state.dims == ("forget_bias", "seed", "time", "unit")
    assert ds.sizes["unit"] == 8 and ds.unit.attrs["long_name"] == "unit"
    layers = init_layers("lstm", 4, 2, init="normal", scale=0.5, forget_bias=2.0, seed=1)
    direct = simulate_network(
        "lstm", layers, steps=30, input="noise", noise_seed=1, record="all",
        outputs=["hidden_state", "growth_rate", "cell_norm"],
    )  # fmt: skip
    sub = ds.sel(forget_bias=2.0, seed=1)
    for name in ("hidden_state", "growth_rate", "cell_norm"):
        np.testing.assert_array_equal(sub[name].values, direct[name][0], err_msg=name)


@pytest.mark.parametrize(
    ("outputs", "grid", "message"),
    [
        ('["state"]', "", "run.outputs[0]: 'state' is not an output of this sweep (n = 1"),
        ('["growth_rate", "nope"]', "", "run.outputs[1]: 'nope' is not an output"),
        ("[]", "", "run.outputs: empty list"),
        ('"all"', "", "run.outputs: got 'all': give a list of variable names"),
        ('["hidden_state"]', "n = [4, 8]\n", "run.outputs[0]: hidden_state has one entry per"),
    ],
)
def test_bad_outputs_in_a_spec_are_refused_naming_the_entry(tmp_path, outputs, grid, message):
    text = SPEC.replace("[grid]\n", f"[grid]\n{grid}")
    if grid:
        text = text.replace("n = 4\n", "", 1)
    spec = write_spec(tmp_path, text, outputs=outputs)
    with pytest.raises(SpecError) as err:
        run_sweep(spec, sync=True)
    assert any(line.startswith(message) for line in err.value.problems), err.value.problems
    assert not (tmp_path / "o.zarr").exists()
