"""Real (tiny) training runs: determinism, curves, JSON, a cell and a resumable sweep."""

import json

import pytest
import torch

from analysis.curvature_results import HessianSpectrum

from analysis.phases import (
    CellResult,
    RunResult,
    evaluate_cell,
    run_sweep,
    train_run,
)


def test_train_run_is_deterministic(tiny_runs):
    spec, runs = tiny_runs
    config = runs[0].config
    events = []
    again = train_run(config, on_progress=events.append)
    first = runs[0]
    assert again.curves == first.curves
    assert again.final == first.final
    assert again.steps_to_train_90 == first.steps_to_train_90 and again.steps_to_test_90 == first.steps_to_test_90
    assert set(again.state) == set(first.state)
    assert all(torch.equal(again.state[k], first.state[k]) for k in first.state)
    # another seed is another model
    assert not torch.equal(runs[1].state["fc0.weight"], first.state["fc0.weight"])
    # progress events carry the run's identity
    assert events and all(e["run"] == config.key and e["seed"] == config.seed for e in events)


def test_run_result_curves_and_json(tiny_runs):
    spec, runs = tiny_runs
    r = runs[0]
    assert r.steps[0] == 0 and r.steps[-1] == r.total_steps == 150
    assert r.steps[1] == r.config.eval_every == 5  # ceil(150 / 30 evaluations)
    assert len(r.train_loss) == len(r.test_accuracy) == len(r.steps)
    t90 = next((s for s, a in zip(r.steps, r.train_accuracy) if a >= 0.9), None)
    assert r.steps_to_train_90 == t90
    assert r.final["num_train"] == 60 and r.final["batch_size"] == 60  # round(0.5 * 121), full batch
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    back = RunResult.from_dict(d, state=r.state)
    assert back.curves == r.curves and back.config == r.config


def test_hessian_metrics_are_optional_and_finite(tiny_runs):
    spec, runs = tiny_runs
    r = train_run(runs[0].config, hessian=True, hessian_lanczos_iters=8, hessian_trace_matvecs=9)
    h = r.hessian
    # the one Hessian shape (analysis.curvature_results.HessianSpectrum), as the hessian job's
    assert h["eigenvalues"]["values"][0] > 0 and len(h["eigenvalues"]["values"]) == 1 and h["num_matvecs"] == 8 + 9
    assert h["trace"]["estimate"] == pytest.approx(h["trace"]["estimate"]) and h["trace"]["stderr"] >= 0
    assert h["trace"]["num_matvecs"] == 9 and h["density"] is None
    assert HessianSpectrum.model_validate(h).top_eigenvalue == h["eigenvalues"]["values"][0]
    assert runs[0].hessian is None


def test_evaluate_cell_with_between_seed_metrics(tiny_runs):
    spec, runs = tiny_runs
    cell = evaluate_cell(spec, runs)
    assert (cell.i, cell.j, cell.x, cell.y) == (1, 0, 1.0, 0.01)
    assert cell.seeds == [0, 1] and len(cell.pairs) == 1
    pair = cell.pairs[0]
    assert pair["aligned"] is True and 0.0 <= pair["cka"] <= 1.0 and pair["l2_distance"] > 0
    assert pair["l2_distance_aligned"] <= pair["l2_distance"] + 1e-9
    assert pair["path"]["t"][0] == 0.0 and len(pair["path"]["t"]) == 11
    assert cell.phase["grokking"] in ("comprehension", "grokking", "memorization", "confusion")
    d = json.loads(json.dumps(cell.to_dict(), allow_nan=False))
    assert CellResult.from_dict(d).to_dict() == d


def test_run_sweep_events_and_resume(tiny_sweep):
    tiny_sweep["budget"] = 40
    tiny_sweep["eval_points"] = 10
    events = []
    result = run_sweep(tiny_sweep, on_progress=events.append)
    kinds = [e["type"] for e in events if e["type"] != "run_progress"]
    assert {e["type"] for e in events} == {"run_progress", "run", "cell", "done"}
    assert kinds.count("run") == 4 and kinds.count("cell") == 2 and kinds[-1] == "done"
    assert kinds.index("cell") == 2  # the first cell is reported as soon as its seeds are done
    assert len(result.label_grid("grokking")) == 1 and len(result.label_grid("grokking")[0]) == 2
    json.dumps(result.to_dict(), allow_nan=False)
    first = next(e["cell"] for e in events if e["type"] == "cell")
    events2 = []
    resumed = run_sweep(tiny_sweep, on_progress=events2.append, completed_cells={(first["i"], first["j"]): first})
    assert [e["type"] for e in events2].count("run") == 2  # only the missing cell is trained
    assert resumed.cells[0].to_dict() == first
    assert resumed.cells[1].to_dict()["metrics"] == result.cells[1].to_dict()["metrics"]  # deterministic
