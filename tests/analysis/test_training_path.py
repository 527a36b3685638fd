"""Loss along the trajectory vs the straight line: exact positions for states placed by hand."""

import pytest
import torch

from analysis import zoo
from analysis.training_path import path_versus_line

SPEC = {"kind": "mlp", "in": 4, "hidden": [6], "out": 3}


def test_states_on_and_off_the_segment_get_their_exact_positions():
    torch.manual_seed(0)
    start_model, end_model = zoo.build(SPEC), zoo.build(SPEC)
    a, b = start_model.state_dict(), end_model.state_dict()
    delta = {n: b[n] - a[n] for n in a}
    flat_delta = torch.cat([d.reshape(-1) for d in delta.values()])
    u = torch.randn(flat_delta.shape)
    u -= (u @ flat_delta) / (flat_delta @ flat_delta) * flat_delta  # orthogonal to the segment
    u_parts = dict(zip(a, torch.split(u, [t.numel() for t in a.values()])))

    def on_line(s, off=0.0):
        return {n: a[n] + s * delta[n] + off * u_parts[n].reshape(a[n].shape) for n in a}

    states = [on_line(0.0), on_line(0.25), on_line(0.5, off=0.1), on_line(0.75), on_line(1.0)]
    X = torch.randn(40, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))
    out = path_versus_line(start_model, states, [0, 10, 20, 30, 40], (X, y), line_points=5)

    assert out["trajectory"]["t"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0], abs=1e-6)
    assert out["trajectory"]["distance_from_line"] == pytest.approx([0, 0, 0.1 * float(u.norm()), 0, 0], abs=1e-5)
    assert out["line"]["t"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    on = [0, 1, 3, 4]
    assert [out["trajectory"]["loss"][i] for i in on] == pytest.approx([out["line"]["loss"][i] for i in on], rel=1e-5)
    assert out["trajectory"]["loss"][2] != pytest.approx(out["line"]["loss"][2], rel=1e-5)  # off the segment
    assert out["distance"] == pytest.approx(float(flat_delta.norm()), rel=1e-6)


def test_needs_two_states():
    with pytest.raises(ValueError, match="two states"):
        path_versus_line(zoo.build(SPEC), [zoo.build(SPEC).state_dict()], [0], (torch.zeros(1, 4), torch.zeros(1, dtype=torch.long)))
