"""Sharpness during the runs of a sweep: per-run metrics that cells summarise and the heatmap colours by."""

import json

import pytest

from analysis import sharpness
from analysis.phases import RunResult, aggregate_cell, run_configs, train_run, validate_sweep
from analysis.phases.cells import RUN_METRICS


@pytest.fixture
def tracked_runs(tiny_sweep):
    d = tiny_sweep
    d["metrics"] = ["sharpness", "hessian"]
    d["fixed"].update(optimizer="sgd", momentum=0.0)
    spec = validate_sweep(d)
    configs = [c for c in run_configs(spec) if (c.i, c.j) == (0, 0)]
    assert all(c.sharpness and c.hessian for c in configs)
    return [train_run(c) for c in configs]


def test_runs_track_sharpness_which_survives_json_and_becomes_cell_metrics(tracked_runs):
    run = tracked_runs[0]
    s = run.sharpness
    assert s["curve"]["step"] == list(range(0, 151, 10))
    assert s["threshold"] == pytest.approx(2 / 0.01) and s["tracked"] == "sharpness"
    values = s["curve"]["sharpness"]
    assert s["progressive_sharpening"] == pytest.approx(values[-1] / values[0])
    assert s["frac_above_2_over_eta"] == 0.0 and s["eos_step"] is None  # lr 0.01 on this tiny net: far from 200
    # the last measurement is the same Hessian the run's final-weights metric measures
    assert values[-1] == pytest.approx(run.hessian["eigenvalues"]["values"][0], rel=1e-3)

    for name in ("progressive_sharpening", "eos_step", "frac_above_2_over_eta"):
        assert name in RUN_METRICS
    back = [RunResult.from_dict(json.loads(json.dumps(r.to_dict(), allow_nan=False)), state=r.state) for r in tracked_runs]
    assert back[0].sharpness == tracked_runs[0].sharpness
    cell = aggregate_cell(back)
    ps = cell.metrics["progressive_sharpening"]
    assert ps.values == pytest.approx([r.sharpness["progressive_sharpening"] for r in tracked_runs])
    assert cell.metrics["frac_above_2_over_eta"].mean == 0.0
    assert cell.metrics["eos_step"].missing == 2  # never reached: missing, like steps_to_*


def test_untracked_runs_have_no_sharpness_metrics(make_run):
    cell = aggregate_cell([make_run(0, [0, 10], [0.5, 1.0], [0.5, 1.0])])
    assert cell.metrics["progressive_sharpening"].n == 0


def test_adamw_runs_track_the_preconditioned_sharpness(tiny_sweep):
    d = tiny_sweep
    d["metrics"] = ["sharpness"]
    d["budget"] = 40
    config = run_configs(validate_sweep(d))[0]
    s = train_run(config).sharpness
    assert s["tracked"] == "preconditioned_sharpness"
    assert s["threshold"] == pytest.approx(sharpness.stability_threshold("adamw", config.hyperparams["lr"]))
    assert s["curve"]["preconditioned_sharpness"][0] is None and all(v > 0 for v in s["curve"]["preconditioned_sharpness"][1:])

