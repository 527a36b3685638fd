"""`python -m analysis merge`: a merged safetensors checkpoint with its spec and recipe."""

import json

import torch

from analysis import checkpoints, merging, zoo
from analysis.__main__ import main

SPEC = {"kind": "mlp", "in": 64, "hidden": [16], "out": 10}


def saved(tmp_path, name, seed, spec=SPEC):
    torch.manual_seed(seed)
    return str(checkpoints.save(tmp_path / f"{name}.safetensors", zoo.build(spec), spec))


def test_merge_writes_a_checkpoint_with_spec_and_recipe(tmp_path, capsys):
    base, a, b = saved(tmp_path, "base", 0), saved(tmp_path, "a", 1), saved(tmp_path, "b", 2)
    out = tmp_path / "merged.safetensors"
    code = main(["merge", "--method", "task_arithmetic", "--base", base, "--models", a, b, "--param", "lam=0.5",
                 "--out", str(out), "--dataset", "digits", "--report", str(tmp_path / "r.json")])
    assert code == 0
    merged = checkpoints.load(out)
    assert merged.spec == zoo.validate_spec(SPEC)
    assert merged.meta["merge"] == {"method": "task_arithmetic", "params": {"lam": 0.5}, "parents": [a, b], "base": base}
    states = [checkpoints.load(p).state for p in (base, a, b)]
    expected = merging.task_arithmetic(states[0], states[1:], lam=0.5)
    for k, v in expected.items():
        torch.testing.assert_close(merged.state[k], v)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["command"] == "merge" and 0 <= report["evaluation"]["accuracy"] <= 1


def test_merge_refuses_bad_input(tmp_path, capsys):
    a, b = saved(tmp_path, "a", 1), saved(tmp_path, "b", 2)
    other = saved(tmp_path, "other", 3, {"kind": "mlp", "in": 64, "hidden": [8], "out": 10})
    out = str(tmp_path / "m.safetensors")
    assert main(["merge", "--method", "ties", "--models", a, b, "--out", out]) == 2
    assert "needs --base" in capsys.readouterr().err
    assert main(["merge", "--method", "average", "--models", a, other, "--out", out]) == 2
    assert "different architecture" in capsys.readouterr().err
    assert main(["merge", "--method", "aligned", "--models", a, b, "--out", out, "--report", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "aligned"


def test_landscape_three_models_places_the_merge(tmp_path, capsys):
    base, a, b = saved(tmp_path, "base", 0), saved(tmp_path, "a", 1), saved(tmp_path, "b", 2)
    merged = str(tmp_path / "merged.safetensors")
    assert main(["merge", "--method", "task_arithmetic", "--base", base, "--models", a, b, "--param", "lam=0.25",
                 "--out", merged, "--report", str(tmp_path / "r.json")]) == 0
    out = tmp_path / "plane.json"
    assert main(["landscape", "--checkpoint", base, "--axes", "three_models", "--models", a, b, "--markers", merged,
                 "--dataset", "digits", "--max-samples", "100", "--resolution", "5", "--out", str(out)]) == 0
    marks = {m["name"]: m for m in json.loads(out.read_text())["markers"]}
    assert abs(marks["merged"]["a"] - 0.25) < 1e-5 and abs(marks["merged"]["b"] - 0.25) < 1e-5
    assert main(["landscape", "--checkpoint", base, "--axes", "three_models", "--dataset", "digits", "--out", str(out)]) == 2
    assert "--models B C" in capsys.readouterr().err
