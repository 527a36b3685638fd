"""Choosing a Hugging Face head: --num-labels, heads the weights lack, a classifier of another size, the size limit."""

import json
from pathlib import Path

import pytest
import torch

from analysis.__main__ import main
from analysis.sources import SourceError, load_model

from .conftest import make_data, save_tiny


@pytest.mark.parametrize("num_labels", [0, -3, 1])
def test_fewer_than_two_labels_are_refused(tiny_folders, num_labels):
    with pytest.raises(SourceError, match="num_labels") as e:
        load_model(tiny_folders["bert-mlm"], head="sequence-classification", num_labels=num_labels)
    assert "--num-labels" in str(e.value) and e.value.field == "num_labels"


@pytest.mark.parametrize("family", ["gpt2", "bert-mlm"])
def test_num_labels_with_a_language_model_head_is_refused(tiny_folders, family):
    with pytest.raises(SourceError, match="only a classification head") as e:
        load_model(tiny_folders[family], num_labels=4)
    assert e.value.field == "num_labels"


def test_cli_refuses_num_labels_zero(tiny_folders, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["landscape", "--checkpoint", str(tiny_folders["bert-mlm"]), "--head", "sequence-classification",
                 "--num-labels", "0", "--dataset", "digits", "--out", "x.json"]) == 2
    assert "--num-labels" in capsys.readouterr().err


def _same_state(a, b) -> bool:
    sa, sb = a.module.state_dict(), b.module.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_bert_saved_for_masked_lm_gets_a_seeded_pooler_and_classifier(tiny_folders):
    """BertForMaskedLM is saved without the pooler, which only the classification head uses."""
    cls = load_model(tiny_folders["bert-mlm"], head="sequence-classification", num_labels=2)
    assert cls.provenance["initialised_head"] == [
        "bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight",
    ]
    assert _same_state(cls, load_model(tiny_folders["bert-mlm"], head="sequence-classification", num_labels=2))
    other = load_model(tiny_folders["bert-mlm"], head="sequence-classification", num_labels=2, seed=1)
    assert not torch.equal(cls.module.state_dict()["model.bert.pooler.dense.weight"],
                           other.module.state_dict()["model.bert.pooler.dense.weight"])
    X, _, _ = make_data("bert-mlm")
    assert cls.module(X).shape == (X.shape[0], 2)


@pytest.mark.parametrize("family", ["vit", "resnet", "bert-cls"])
def test_num_labels_other_than_the_checkpoints_replaces_the_classifier(tiny_folders, family):
    three = load_model(tiny_folders[family])
    seven = load_model(tiny_folders[family], num_labels=7)
    X, _, _ = make_data(family)
    assert seven.module(X).shape == (X.shape[0], 7)
    head = seven.provenance["initialised_head"]
    assert head and all("classifier" in k for k in head)
    kept = {k: v for k, v in three.module.state_dict().items() if not any(k.endswith(h) for h in head)}
    assert all(torch.equal(v, seven.module.state_dict()[k]) for k, v in kept.items())  # the body is the checkpoint's
    assert _same_state(seven, load_model(tiny_folders[family], num_labels=7))  # the new classifier is seeded
    assert "initialised_head" not in load_model(tiny_folders[family], num_labels=3).provenance


def test_a_base_tensor_of_the_wrong_shape_is_still_refused_with_num_labels(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_tiny("vit", tmp_path / "vit")
    state = load_file(folder / "model.safetensors")
    key = next(k for k in state if k.endswith("patch_embeddings.projection.bias"))
    state[key] = torch.zeros(5)
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(SourceError, match="patch_embeddings"):
        load_model(folder, num_labels=7)


def test_parameter_limit_comes_from_the_environment(tiny_folders, tmp_path, monkeypatch, capsys):
    from analysis.sources import huggingface

    from django.conf import settings

    # README: 200M for the CLI and notebooks (GPT-2 small loads), 30M for a shared web server
    assert (huggingface.DEFAULT_MAX_PARAMETERS, settings.TERRAIN_MAX_MODEL_PARAMETERS) == (200_000_000, 30_000_000)
    monkeypatch.setenv("TERRAIN_MAX_MODEL_PARAMETERS", "1000")
    with pytest.raises(SourceError, match="limit of 1,000"):
        load_model(tiny_folders["gpt2"])
    X, _, _ = make_data("gpt2")
    import numpy as np

    np.savez(tmp_path / "t.npz", input_ids=X.numpy())
    monkeypatch.chdir(tmp_path)
    args = ["landscape", "--kind", "line", "--checkpoint", str(tiny_folders["gpt2"]), "--data", "t.npz",
            "--resolution", "3", "--out", "l.json"]
    assert main(args) == 2
    assert "TERRAIN_MAX_MODEL_PARAMETERS" in capsys.readouterr().err and not Path("l.json").exists()
    monkeypatch.setenv("TERRAIN_MAX_MODEL_PARAMETERS", "lots")
    assert main(args) == 2
    assert "TERRAIN_MAX_MODEL_PARAMETERS must be a positive whole number" in capsys.readouterr().err
    monkeypatch.setenv("TERRAIN_MAX_MODEL_PARAMETERS", "100000")
    assert main(args) == 0 and json.loads(Path("l.json").read_text())["kind"] == "line"
