import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SPEC = '{"kind":"mlp","in":64,"hidden":[16],"out":10}'


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "analysis", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["train", "landscape", "hessian", "interpolate", "align", "merge"])
def test_help_for_each_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    assert "--out" in capsys.readouterr().out


def test_cli_smoke(tmp_path, monkeypatch):
    r = _run(["train", "--spec", SPEC, "--dataset", "digits", "--epochs", "2", "--lr", "0.05", "--snapshot-every", "10",
              "--checkpoint", "m.safetensors", "--trajectory", "t.safetensors", "--out", "train.json"], tmp_path)
    assert r.returncode == 0, r.stderr
    train_out = json.loads((tmp_path / "train.json").read_text())
    assert train_out["command"] == "train" and train_out["final"]["epoch"] == 2
    assert "train" in r.stderr  # the progress bar is on stderr

    # the example from the issue
    r = _run(["hessian", "--checkpoint", "m.safetensors", "--dataset", "digits", "--split", "all", "--top-k", "5",
              "--trace", "--density", "--out", "h.json"], tmp_path)
    assert r.returncode == 0, r.stderr
    h = json.loads((tmp_path / "h.json").read_text())
    assert len(h["eigenvalues"]["values"]) == 5 and h["trace"]["estimate"] > 0 and len(h["density"]["grid"]) > 10

    # the rest in-process (same code path, without paying the import time again)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--spec", SPEC, "--dataset", "digits", "--epochs", "2", "--lr", "0.05", "--seed", "1",
                 "--checkpoint", "m2.safetensors", "--out", "train2.json"]) == 0
    assert main(["landscape", "--checkpoint", "m.safetensors", "--dataset", "digits", "--resolution", "5",
                 "--axes", "pca", "--trajectory", "t.safetensors", "--out", "plane.json"]) == 0
    plane = json.loads(Path("plane.json").read_text())
    assert len(plane["loss"]) == 5 and len(plane["trajectory"]) == len(train_out["snapshot_steps"])
    assert main(["landscape", "--kind", "line", "--checkpoint", "m.safetensors", "--end", "m2.safetensors",
                 "--dataset", "digits", "--resolution", "5", "--out", "line.json"]) == 0
    assert json.loads(Path("line.json").read_text())["mode"] == "interpolation"
    assert main(["interpolate", "--a", "m.safetensors", "--b", "m2.safetensors", "--dataset", "digits",
                 "--steps", "5", "--out", "i.json"]) == 0
    assert "barrier_height" in json.loads(Path("i.json").read_text())
    assert main(["align", "--a", "m.safetensors", "--b", "m2.safetensors", "--dataset", "digits", "--steps", "5",
                 "--save-aligned", "m2a.safetensors", "--out", "-"]) == 0
    assert Path("m2a.safetensors").exists()
    # bad input: exit status 2 and a message, not a traceback
    assert main(["hessian", "--checkpoint", "missing.safetensors", "--dataset", "digits", "--out", "x.json"]) == 2
    assert main(["train", "--spec", '{"kind":"mlp","in":3,"out":10}', "--dataset", "digits", "--out", "x.json"]) == 2


def test_documented_trajectory_then_pca_plane(tmp_path, monkeypatch, capsys):
    """analysis/README: `train --trajectory t.safetensors` then `landscape --axes pca --trajectory t.safetensors`."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--spec", SPEC, "--dataset", "digits", "--epochs", "2", "--checkpoint", "m.safetensors",
                 "--trajectory", "t.safetensors", "--out", "train.json"]) == 0
    train_out = json.loads(Path("train.json").read_text())
    assert 15 <= len(train_out["snapshot_steps"]) <= 21  # about 20 evenly spaced states, not just the first and last
    assert main(["landscape", "--checkpoint", "m.safetensors", "--dataset", "digits", "--resolution", "3",
                 "--axes", "pca", "--trajectory", "t.safetensors", "--out", "plane.json"]) == 0
    assert len(json.loads(Path("plane.json").read_text())["trajectory"]) == len(train_out["snapshot_steps"])
    # and lines along the first PCA component and the top Hessian eigenvector
    for axes in ("pca", "hessian"):
        assert main(["landscape", "--kind", "line", "--checkpoint", "m.safetensors", "--dataset", "digits", "--resolution", "5",
                     "--axes", axes, "--trajectory", "t.safetensors", "--out", f"line-{axes}.json"]) == 0
        assert json.loads(Path(f"line-{axes}.json").read_text())["directions"]["axes"] == axes
    capsys.readouterr()
    assert main(["landscape", "--kind", "line", "--checkpoint", "m.safetensors", "--dataset", "digits", "--axes", "hessian",
                 "--end", "m.safetensors", "--out", "bad.json"]) == 2
    assert "--axes hessian" in capsys.readouterr().err
    # a two-state trajectory (an explicit coarse --snapshot-every) is refused with the option that fixes it
    assert main(["train", "--spec", SPEC, "--dataset", "digits", "--steps", "5", "--snapshot-every", "5",
                 "--checkpoint", "m3.safetensors", "--trajectory", "t3.safetensors", "--out", "train3.json"]) == 0
    capsys.readouterr()
    assert main(["landscape", "--checkpoint", "m3.safetensors", "--dataset", "digits", "--resolution", "3",
                 "--axes", "pca", "--trajectory", "t3.safetensors", "--out", "plane3.json"]) == 2
    assert "--snapshot-every" in capsys.readouterr().err


def test_a_state_dict_without_its_spec_names_the_option(tmp_path, monkeypatch, capsys):
    import torch

    from analysis import zoo

    monkeypatch.chdir(tmp_path)
    torch.save(zoo.build(json.loads(SPEC)).state_dict(), "m.pt")
    assert main(["hessian", "--checkpoint", "m.pt", "--dataset", "digits", "--out", "x.json"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: a PyTorch state-dict file carries no architecture spec: give its architecture spec with --spec")
