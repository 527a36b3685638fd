"""Sweep definitions: ranges, cells, run configs, errors that name the field, limits."""

import copy
import json

import pytest

from analysis.phases import (
    LIMITS,
    PRESET_INFO,
    PRESETS,
    SweepError,
    estimate_cost,
    preset,
    run_configs,
    sweep_cells,
    validate_sweep,
)

BASE = {
    "task": "modular-addition-mlp",
    "x": {"name": "weight_decay", "values": [0, 0.5, 1]},
    "y": {"name": "lr", "log": True, "start": 1e-3, "stop": 1, "num": 4},
    "seeds": 2,
    "budget": 500,
}


def sweep(**changes):
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def test_ranges_cells_and_run_configs():
    spec = validate_sweep(sweep(fixed={"width": 32, "batch_size": 64}))
    assert spec.x.values == (0.0, 0.5, 1.0) and spec.x.scale == "linear"
    assert spec.y.values == (0.001, 0.01, 0.1, 1.0) and spec.y.scale == "log"
    assert spec.seeds == (0, 1) and spec.budget == 500 and spec.shape == (3, 4)
    cells = sweep_cells(spec)
    assert len(cells) == 12 and (cells[0].i, cells[0].j) == (0, 0) and (cells[1].i, cells[1].j) == (0, 1)
    assert {(c.i, c.j) for c in cells} == {(i, j) for i in range(3) for j in range(4)}
    assert all(c.x == spec.x.values[c.i] and c.y == spec.y.values[c.j] for c in cells)
    configs = run_configs(spec)
    assert len(configs) == spec.num_runs == 24
    assert [(c.i, c.j, c.seed) for c in configs[:3]] == [(0, 0, 0), (0, 0, 1), (0, 1, 0)]
    c = next(c for c in configs if (c.i, c.j, c.seed) == (2, 1, 1))
    hp = c.hyperparams
    assert hp["weight_decay"] == 1.0 and hp["lr"] == 0.01  # axes
    assert hp["width"] == 32 and hp["batch_size"] == 64  # fixed
    assert hp["optimizer"] == "adamw" and hp["steps"] == 500  # task default, budget
    assert c.eval_every == 3  # ceil(500 / 200 evaluations)
    assert c.axes == ("weight_decay", "lr") and c.key == "2-1-1"
    json.dumps([c.to_dict() for c in configs])


def test_linear_range_integer_axis_and_seed_list():
    spec = validate_sweep(
        sweep(
            x={"name": "width", "start": 8, "stop": 64, "num": 3},
            y={"name": "data_fraction", "start": 0.2, "stop": 0.6, "num": 3},
            seeds=[3, 7],
        )
    )
    assert spec.x.values == (8, 36, 64) and all(isinstance(v, int) for v in spec.x.values)
    assert spec.y.values == (0.2, 0.4, 0.6)
    assert spec.seeds == (3, 7)


def test_epoch_budget_becomes_steps_per_run():
    spec = validate_sweep(
        {
            "task": "digits-mlp",
            "x": {"name": "batch_size", "values": [32, 1438]},
            "y": {"name": "width", "values": [8]},
            "seeds": 1,
            "budget": {"epochs": 3},
        }
    )
    steps = {c.hyperparams["batch_size"]: c.steps for c in run_configs(spec)}
    assert steps == {32: 3 * 45, 1438: 3}  # ceil(1438 / 32) = 45 steps per epoch


def test_round_trip_through_to_dict():
    spec = validate_sweep(sweep(rules={"grokking": {"gap_fraction": 0.05}, "taxonomy": {"cka_threshold": 0.8}}))
    again = validate_sweep(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.grokking.gap_fraction == 0.05 and again.taxonomy.cka_threshold == 0.8


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"task": "mnist-resnet"}, "task.name"),
        ({"task": {"name": "modular-addition-mlp", "p": 500}}, "task.p"),
        ({"task": {"name": "digits-mlp", "colour": 1}}, "task.colour"),
        ({"x": {"name": "momentum", "values": [0.9]}}, "x.name"),
        ({"x": {"name": "lr", "values": [0.1, -1]}}, "x.values[1]"),
        ({"x": {"name": "lr", "values": []}}, "x.values"),
        ({"x": {"name": "lr", "values": [0.1, 0.1]}}, "x.values"),
        ({"x": {"name": "lr", "values": [0.1, "fast"]}}, "x.values[1]"),
        ({"y": {"name": "lr", "log": True, "start": 0, "stop": 1, "num": 3}}, "y.start"),
        ({"y": {"name": "lr", "start": 0.1, "stop": 1}}, "y.num"),
        ({"y": {"name": "lr", "log": "yes", "start": 0.1, "stop": 1, "num": 3}}, "y.log"),
        ({"y": {"name": "weight_decay", "values": [1, 2]}}, "y.name"),
        ({"y": {"name": "lr", "values": [0.1], "start": 0.1}}, "y"),
        ({"y": {"name": "label_noise", "values": [0.95]}}, "y.values[0]"),
        ({"y": {"name": "data_fraction", "values": [0, 0.5]}}, "y.values[0]"),
        ({"seeds": 0}, "seeds"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"seeds": [0, -1]}, "seeds[1]"),
        ({"budget": 0}, "budget.steps"),
        ({"budget": "long"}, "budget"),
        ({"budget": {"steps": 100, "epochs": 2}}, "budget"),
        ({"budget": None}, "budget"),
        ({"fixed": {"lr": 0.1}}, "fixed.lr"),
        ({"fixed": {"optimizer": "lion"}}, "fixed.optimizer"),
        ({"fixed": {"width": 0}}, "fixed.width"),
        ({"fixed": {"temperature": 1}}, "fixed.temperature"),
        ({"metrics": ["mc"]}, "metrics[0]"),
        ({"rules": {"grokking": {"gap_fraction": 2}}}, "rules.grokking.gap_fraction"),
        ({"rules": {"taxonomy": {"cka_threshold": "high"}}}, "rules.taxonomy.cka_threshold"),
        ({"rules": {"taxonomy": {"beta": 1}}}, "rules.taxonomy.beta"),
        ({"rules": {"grokking": {"tie_order": ["grokking"]}}}, "rules.grokking.tie_order"),
        ({"eval_points": 5}, "eval_points"),
        ({"mc_alignment": "git-rebasin"}, "mc_alignment"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_errors_name_the_field(changes, field):
    with pytest.raises(SweepError) as err:
        validate_sweep(sweep(**changes))
    assert err.value.field == field, err.value.errors
    assert str(err.value).startswith(f"{field}: ")
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "changes, loc, words",
    [
        ({"x": {"name": "lr", "values": [0.1, 0.1]}}, ("x", "values"), "must be distinct, 0.1 appears twice"),
        ({"y": {"name": "weight_decay", "values": [1, 2]}}, ("y", "name"), "must differ from x.name"),
        ({"y": {"name": "lr", "values": [0.1], "start": 0.1}}, ("y",), "gives both values and a range"),
        ({"y": {"name": "lr", "start": 0.1, "stop": 1}}, ("y", "num"), "is required for a range"),
        ({"seeds": [1, 1]}, ("seeds",), "must be distinct"),
        ({"budget": None}, ("budget",), "Field required"),
        ({"budget": {"steps": 100, "epochs": 2}}, ("budget",), "exactly one of steps or epochs"),
        ({"fixed": {"lr": 0.1}}, ("fixed", "lr"), "is also a sweep axis"),
        ({"colour": "red"}, ("colour",), "Extra inputs are not permitted"),
        ({"task": {"name": "digits-mlp", "p": 7}}, ("task", "p"), "not an option of task digits-mlp"),
        ({"x": {"name": "lr", "values": [0.1, True]}}, ("x", "values", 1), "valid number"),
        ({"seeds": "3"}, ("seeds",), "valid list"),
    ],
)
def test_error_locations_and_messages(changes, loc, words):
    with pytest.raises(SweepError) as err:
        validate_sweep(sweep(**changes))
    assert err.value.loc == loc and words in err.value.errors[0]["msg"], err.value.errors


def test_every_problem_is_reported_with_its_location():
    with pytest.raises(SweepError) as err:
        validate_sweep(sweep(eval_points=5, data_seed=-1, mc_alignment="git-rebasin"))
    assert [e["loc"] for e in err.value.errors] == [("eval_points",), ("data_seed",), ("mc_alignment",)]


def test_short_forms_and_whole_floats():
    spec = validate_sweep(sweep(task={"name": "modular-addition-mlp"}, seeds=2.0, budget={"steps": 500.0}, metrics=None))
    assert spec == validate_sweep(sweep(task="modular-addition-mlp", seeds=[0, 1], budget=500))
    assert spec.task_options == {"p": 31, "depth": 1} and spec.metrics == ("mode_connectivity", "cka", "l2_distance")
    assert validate_sweep(sweep(fixed={"batch_size": "full"})).fixed == {"batch_size": None}
    assert validate_sweep(sweep(fixed={"width": 31.6})).fixed == {"width": 32}  # integer axes are rounded


def test_not_a_dict():
    with pytest.raises(SweepError) as err:
        validate_sweep([1, 2])
    assert err.value.loc == () and err.value.field == "sweep" and "dictionary" in str(err.value)


def test_limits_are_enforced():
    n = LIMITS["max_axis_values"]
    validate_sweep(sweep(x={"name": "weight_decay", "start": 0, "stop": 1, "num": n}, seeds=1))
    with pytest.raises(SweepError, match=r"^x.num: Input should be less than or equal to 12"):
        validate_sweep(sweep(x={"name": "weight_decay", "start": 0, "stop": 1, "num": n + 1}))
    with pytest.raises(SweepError, match=r"^x.values: List should have at most 12 items after validation, not 13"):
        validate_sweep(sweep(x={"name": "weight_decay", "values": [k / 10 for k in range(13)]}))
    with pytest.raises(SweepError, match=r"^seeds: Value should have at most 5 items after validation, not 6"):
        validate_sweep(sweep(seeds=[0, 1, 2, 3, 4, 5]))
    with pytest.raises(SweepError, match=r"^seeds: must be between 1 and 5, got 6"):
        validate_sweep(sweep(seeds=6))
    # 12 x 12 cells x 3 seeds = 432 runs > 400
    big = dict(
        x={"name": "weight_decay", "start": 0, "stop": 1, "num": 12},
        y={"name": "lr", "log": True, "start": 1e-3, "stop": 1, "num": 12},
    )
    validate_sweep(sweep(**big, seeds=2))
    with pytest.raises(SweepError, match=r"^seeds: 12 x 12 cells x 3 seeds = 432 runs, more than the limit of 400"):
        validate_sweep(sweep(**big, seeds=3))
    validate_sweep(sweep(budget=LIMITS["max_budget_steps"]))
    with pytest.raises(SweepError, match=r"^budget.steps: Input should be less than or equal to 20000"):
        validate_sweep(sweep(budget=LIMITS["max_budget_steps"] + 1))
    with pytest.raises(SweepError, match=r"^budget.epochs: 500 epochs is 90,000 steps"):
        validate_sweep(
            {
                "task": "digits-mlp",
                "x": {"name": "batch_size", "values": [8, 16]},
                "y": {"name": "lr", "values": [0.1]},
                "budget": {"epochs": 500},
            }
        )
    with pytest.raises(SweepError, match=r"^y.values: width 2048 gives .* parameters, more than the limit"):
        validate_sweep(sweep(y={"name": "width", "values": [64, 2048]}, task={"name": "digits-mlp", "depth": 4}))
    with pytest.raises(SweepError, match=r"^fixed.width: width 30 does not fit"):
        validate_sweep(sweep(task="modular-addition-transformer", fixed={"width": 30}))  # 4 heads must divide it
    with pytest.raises(SweepError, match=r"^x.values: data fraction 1 leaves no test pairs"):
        validate_sweep(sweep(x={"name": "data_fraction", "values": [0.5, 1.0]}))
    with pytest.raises(SweepError, match=r"^fixed.data_fraction: data fraction 0.005 is below 0.01"):
        validate_sweep(sweep(fixed={"data_fraction": 0.005}))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_fit_the_time_budget(name):
    spec = preset(name)
    assert spec.num_runs <= LIMITS["max_runs"] and spec.num_runs == PRESET_INFO[name]["runs"]
    assert spec.name and len(spec.seeds) >= 3
    cost = estimate_cost(spec)
    assert cost["runs"] == spec.num_runs
    # Presets are precomputed for the demo (data/showcase/) and rerun on demand: each must still
    # finish within 20 minutes of one idle core by the estimate, and was measured under an hour on a busy machine.
    assert cost["seconds"] < 1200, cost
    assert PRESET_INFO[name]["measured_total_seconds"] < 3600


def test_cost_estimate_grows_with_work():
    small = estimate_cost(validate_sweep(sweep()))
    longer = estimate_cost(validate_sweep(sweep(budget=1000)))
    wider = estimate_cost(validate_sweep(sweep(fixed={"width": 512})))
    assert longer["total_steps"] == 2 * small["total_steps"]
    assert longer["seconds"] > small["seconds"] and wider["gmacs"] > small["gmacs"]
