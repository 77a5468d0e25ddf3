"""Sweep specs: validation names every problem's field; bad input writes nothing."""

import textwrap

import pytest

from rnnlab.jobs.spec import SpecError, load_spec

from .sweeps import rnnlab

GOOD = """
[model]
family = "rnn"
n = 1

[grid]
activation = ["tanh", "relu"]
w = {start = 0.5, stop = 1.5, num = 5}
seed = {range = 3}

[run]
steps = 100

[store]
path = "out.zarr"
"""


def _write(tmp_path, text, name="spec.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_a_good_spec_gives_its_grid(tmp_path):
    spec, grid = load_spec(_write(tmp_path, GOOD))
    assert grid.dims == ("activation", "w", "seed") and grid.shape == (2, 5, 3)
    assert list(grid.coords["seed"]) == [0, 1, 2]
    assert spec.run.record == "log" and len(spec.sha256) == 64


def test_yaml_is_accepted(tmp_path):
    yaml_text = """
    model: {family: rnn, n: 1}
    grid: {w: [0.5, 1.0]}
    run: {steps: 10}
    store: {path: out.zarr}
    """
    _, grid = load_spec(_write(tmp_path, yaml_text, "spec.yaml"))
    assert grid.shape == (2,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[run]", "[run]\ncolour = 1"), "run.colour: unknown key"),
        (("n = 1", "n = 1\nsize = 3"), "model.size: unknown parameter 'size' for family 'rnn'"),
        (('"tanh", "relu"', '"tanh", "softsign"'), "grid.activation[1]: 'softsign' is not allowed"),
        (
            ('family = "rnn"', 'family = "transformer"'),
            "model.family: unknown family 'transformer'",
        ),
        (("steps = 100", 'steps = "many"'), "run.steps: Input should be a valid integer"),
        (("steps = 100", "steps = 0"), "run.steps: Input should be greater than or equal to 1"),
        (("steps = 100", "steps = -5"), "run.steps: Input should be greater than or equal to 1"),
        (("seed = {range = 3}", "seed = []"), "grid.seed: empty list"),
        (("num = 5", "num = 10000000000000000000"), "grid: 6e+19 cases is more than 4.6e+18"),
        (("n = 1", "n = 4"), "model.w: w is the scalar weight (n = 1)"),
        (("seed = {range = 3}", "n = [1, 2]"), "model.n: also a grid dimension"),
        (('[store]\npath = "out.zarr"', ""), "store: missing table: add [store]"),
        (
            ("w = {start = 0.5, stop = 1.5, num = 5}", "w = [0.5, true]"),
            "grid.w: mixes numbers and true/false: give values of one kind",
        ),
        (
            ("w = {start = 0.5, stop = 1.5, num = 5}", 'w = [0.5, "1.0"]'),
            "grid.w: mixes names and numbers",
        ),
        (('"tanh", "relu"', '"linear", "identity"'), "grid.activation: repeated values"),
    ],
)
def test_each_problem_names_its_field(tmp_path, change, message):
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, text))
    assert message in str(err.value)


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("steps = 100", "steps = 0").replace('"relu"', '"softsign"')
    with pytest.raises(SpecError) as err:
        load_spec(_write(tmp_path, text.replace("n = 1", "n = 1\nsize = 2")))
    assert len(err.value.problems) == 3


def test_unreadable_and_unparsable_files(tmp_path):
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(_write(tmp_path, "[model\nfamily = "))


def test_validate_prints_the_plan_and_runs_nothing(tmp_path):
    _write(tmp_path, GOOD)
    out = rnnlab("validate", "spec.toml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "30 cases (activation: 2, w: 5, seed: 3)" in out.stdout
    assert "blocks:" in out.stdout and "uncompressed" in out.stdout
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_spec_exits_2_with_one_line_per_problem_and_writes_nothing(tmp_path, command):
    _write(tmp_path, GOOD.replace("steps = 100", "steps = 0").replace('"relu"', '"softsign"'))
    out = rnnlab(command, "spec.toml", "--sync" if command == "run" else "--help", cwd=tmp_path)
    if command == "validate":
        out = rnnlab(command, "spec.toml", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("rnnlab: error: ") for line in lines)
    assert not (tmp_path / "out.zarr").exists()


def test_linear_is_stored_as_identity(tmp_path):
    _, grid = load_spec(_write(tmp_path, GOOD.replace('"tanh", "relu"', '"linear", "tanh"')))
    assert list(grid.coords["activation"]) == ["identity", "tanh"]
