"""The plane through three models (landscape axes="three_models"): exact corners and merges in place."""

import pytest
import torch

from analysis import data, landscape, merging, metrics, zoo

SPEC = {"kind": "mlp", "in": 64, "hidden": [16, 16], "out": 10}


def model(seed):
    torch.manual_seed(seed)
    return zoo.build(SPEC).eval()


def loss_of(state, X, y):
    return metrics.evaluate(merging.evaluation.model_with_state(state, spec=SPEC), X, y)[0]


def test_three_model_plane_places_corners_and_merges_exactly():
    X, y = data.load("digits", "test")
    a, b, c = model(0), model(1), model(2)
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    merged = merging.task_arithmetic(sa, [sb, sc], lam=0.4)
    averaged = merging.weighted_average([sb, sc])
    surface = landscape.plane(a, (X, y), axes="three_models", models=(sb, sc), resolution=7,
                              span=((-0.25, 1.25), (-0.25, 1.25)), markers={"merge": merged, "average": averaged})
    marks = {m["name"]: m for m in surface.markers}
    assert (marks["A"]["a"], marks["A"]["b"]) == (0.0, 0.0)
    assert marks["B"]["a"] == pytest.approx(1, abs=1e-9) and marks["B"]["b"] == pytest.approx(0, abs=1e-9)
    assert marks["C"]["a"] == pytest.approx(0, abs=1e-9) and marks["C"]["b"] == pytest.approx(1, abs=1e-9)
    assert marks["merge"]["a"] == pytest.approx(0.4, abs=1e-6) and marks["merge"]["b"] == pytest.approx(0.4, abs=1e-6)
    assert marks["average"]["a"] == pytest.approx(0.5, abs=1e-6) and marks["average"]["b"] == pytest.approx(0.5, abs=1e-6)
    assert marks["merge"]["relative_off_plane"] < 1e-5
    assert marks["merge"]["loss"] == pytest.approx(loss_of(merged, X, y), rel=1e-4)
    # Grid points are the models themselves: a = 1, b = 0 is B; a = 0, b = 1 is C.
    assert surface.a[5] == pytest.approx(1.0) and surface.b[1] == pytest.approx(0.0)
    assert surface.loss[5, 1] == pytest.approx(loss_of(sb, X, y), rel=1e-4)
    assert surface.loss[1, 5] == pytest.approx(loss_of(sc, X, y), rel=1e-4)
    assert surface.to_dict()["markers"][3]["name"] == "merge"


def test_three_model_plane_needs_two_distinct_other_models():
    X, y = data.load("digits", "test")
    a = model(0)
    with pytest.raises(ValueError, match="models=\\(B, C\\)"):
        landscape.plane(a, (X, y), axes="three_models", resolution=5)
    with pytest.raises(ValueError, match="do not span a plane"):
        landscape.plane(a, (X, y), axes="three_models", models=(model(1).state_dict(), model(1).state_dict()), resolution=5)
