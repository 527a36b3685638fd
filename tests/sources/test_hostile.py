"""Hostile uploads: each is refused (or safely ignored), nothing of the file runs, and the
message names the file and the field and says what to upload instead."""

import io
import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from analysis import landscape
from analysis.sources import SourceError, data as source_data, load_model
from analysis.sources.archive import extract_model_zip

from .conftest import make_data, save_tiny


@pytest.fixture()
def marker(tmp_path):
    """A file that any executed payload would create."""
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "a payload ran"


def _payload(marker) -> str:
    return f"open({str(marker)!r}, 'w').write('x')"


def test_auto_map_with_unknown_model_type_never_runs_code(tmp_path, marker):
    folder = save_tiny("gpt2", tmp_path / "evil")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(model_type="evil_gpt", auto_map={"AutoModelForCausalLM": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"})
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_evil.py").write_text(_payload(marker) + "\n")
    with pytest.raises(SourceError) as e:
        load_model(folder)
    assert "config.json" in str(e.value) and "model_type" in str(e.value) and "custom code" in str(e.value)
    assert "save_pretrained" in str(e.value) and e.value.field == "checkpoint"


def test_auto_map_with_known_model_type_is_ignored(tmp_path, marker):
    folder = save_tiny("gpt2", tmp_path / "known")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "modeling_evil.py").write_text(_payload(marker) + "\n")
    assert load_model(folder).provenance["architecture"] == "GPT2LMHeadModel"


def test_readme_says_auto_map_is_ignored_not_refused():
    """README listed auto_map under "Never accepted", yet such a folder loads (the test above)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    never_accepted = readme.split("**Never accepted, and why.**", 1)[1].split("**", 1)[0]
    assert "auto_map" not in never_accepted
    assert "**Ignored, never followed:** a config's `auto_map`" in readme


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('x')",))


def test_pytorch_model_bin_only_is_never_unpickled(tmp_path, marker):
    folder = save_tiny("gpt2", tmp_path / "bin")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(SourceError) as e:
        load_model(folder)
    assert "pytorch_model.bin" in str(e.value) and "safe_serialization=True" in str(e.value)
    (tmp_path / "w.bin").write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(SourceError, match=r"w\.bin: pickled"):
        load_model(tmp_path / "w.bin")


def test_pt2_is_refused(tmp_path, marker):
    pt2 = tmp_path / "model.pt2"
    with zipfile.ZipFile(pt2, "w") as z:
        z.writestr("model/data.pkl", pickle.dumps(_Evil(marker)))
    with pytest.raises(SourceError) as e:
        load_model(pt2)
    assert "model.pt2" in str(e.value) and "torch.onnx.export" in str(e.value) and "safe_serialization" in str(e.value)
    folder = tmp_path / "withpt2"
    folder.mkdir()
    shutil.copy(pt2, folder / "exported.pt2")
    with pytest.raises(SourceError, match=r"\.pt2"):
        load_model(folder)


def _tiny_onnx(tmp_path, node_name="matmul"):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    W = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, name="W")
    node = helper.make_node("MatMul", ["x", "W"], ["logits"], name=node_name)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])], [W],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("location", ["/etc/passwd", "../../secret.bin"])
def test_onnx_external_data_is_refused(tmp_path, location):
    import onnx

    model = _tiny_onnx(tmp_path)
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "48")):
        e = t.external_data.add()
        e.key, e.value = k, v
    path = tmp_path / "ext.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(SourceError) as e:
        load_model(path)
    assert "ext.onnx" in str(e.value) and location in str(e.value) and "torch.onnx.export" in str(e.value)


def test_onnx_node_named_with_python_code_stays_a_name(tmp_path, marker):
    model = _tiny_onnx(tmp_path, node_name=f"__import__('builtins').exec({_payload(marker)!r})")
    model.graph.node[0].doc_string = _payload(marker)
    path = tmp_path / "named.onnx"
    path.write_bytes(model.SerializeToString())
    lm = load_model(path)
    X = torch.randn(6, 4)
    y = torch.randint(0, 3, (6,))
    surf = landscape.plane(lm, (X, y), resolution=3, span=0.5, include_bias=True)
    assert np.isfinite(surf.loss).all()


def test_zip_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("model/config.json", "{}")
        z.writestr("model/model.safetensors", b"\0" * (20 * 2**20))
    with pytest.raises(SourceError, match=r"bomb\.zip: member 'model/model.safetensors' expands"):
        load_model(bomb, extract_to=tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*.safetensors"))
    with pytest.raises(SourceError, match="above the limit"):
        extract_model_zip(bomb, tmp_path / "out2", max_bytes=1024, max_ratio=10**9)


def test_zip_member_that_lies_about_its_size_is_cut_off(tmp_path):
    liar = tmp_path / "liar.zip"
    with zipfile.ZipFile(liar, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("m/config.json", b"x" * 1000)
    raw = bytearray(liar.read_bytes())
    # shrink the declared uncompressed size in the central directory to 10 bytes
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    liar.write_bytes(bytes(raw))
    with pytest.raises(SourceError, match="liar.zip"):
        extract_model_zip(liar, tmp_path / "out", max_ratio=10**9)
    assert not list((tmp_path / "out").rglob("config.json"))


@pytest.mark.parametrize("member", ["../evil.txt", "model/../../evil.txt", "/abs/evil.txt"])
def test_zip_with_escaping_paths_is_refused(tmp_path, member):
    z_path = tmp_path / "esc.zip"
    with zipfile.ZipFile(z_path, "w") as z:
        z.writestr("model/config.json", "{}")
        z.writestr(member, "x")
    with pytest.raises(SourceError, match=r"esc\.zip: member"):
        load_model(z_path, extract_to=tmp_path / "a" / "b")
    assert not list(tmp_path.rglob("evil.txt"))


def test_zip_of_a_folder_loads(tiny_folders, tmp_path):
    z_path = tmp_path / "bert.zip"
    with zipfile.ZipFile(z_path, "w") as z:
        for f in tiny_folders["bert-cls"].iterdir():
            z.write(f, f"my-bert/{f.name}")
    assert load_model(z_path, extract_to=tmp_path / "x").provenance["model_type"] == "bert"


def _tamper_and_load(folder, suffix, change):
    """Rewrite one stored tensor (the first whose name ends with ``suffix``) and try to load the folder."""
    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k in state if k.endswith(suffix))
    state[key] = change(state[key])
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(SourceError) as e:
        load_model(folder)
    return e


def test_safetensors_shapes_must_match_config(tmp_path):
    folder = save_tiny("bert-cls", tmp_path / "shape")
    e = _tamper_and_load(folder, "word_embeddings.weight", lambda t: torch.zeros(t.shape[0] + 5, t.shape[1]))
    assert "model.safetensors" in str(e.value) and "word_embeddings" in str(e.value) and "config.json" in str(e.value)


def test_shard_index_pointing_outside_is_refused(tmp_path):
    folder = save_tiny("gpt2", tmp_path / "shards")
    (folder / "model.safetensors").rename(folder / "model-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"transformer.wte.weight": "../../etc/x.safetensors"}}))
    with pytest.raises(SourceError, match="same folder"):
        load_model(folder)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused(tmp_path, bad):
    folder = save_tiny("gpt2", tmp_path / "nan")
    e = _tamper_and_load(folder, "c_fc.weight", lambda t: t.index_put((torch.tensor(0), torch.tensor(0)), torch.tensor(bad)))
    assert "model.safetensors" in str(e.value) and "c_fc.weight" in str(e.value) and "NaN or Inf" in str(e.value)


def test_config_declaring_a_trillion_parameters_is_refused_from_arithmetic(tmp_path):
    folder = save_tiny("gpt2", tmp_path / "huge")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(n_embd=32768, n_layer=80, n_head=64, vocab_size=50257, n_positions=2048)  # ~1.03e12 parameters
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SourceError) as e:
        load_model(folder)
    assert "1,03" in str(e.value) and "limit" in str(e.value) and "TERRAIN_MAX_MODEL_PARAMETERS" in str(e.value)
    cfg.update(n_layer=10**9)
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SourceError, match=r"config.json: n_layer"):
        load_model(folder)


def test_token_ids_beyond_the_vocabulary_are_refused(tiny_folders, tmp_path):
    lm = load_model(tiny_folders["gpt2"])
    X, y, _ = make_data("gpt2")
    source_data.check_against(lm, X, y)
    bad = X.clone()
    bad[1, 2] = 10_000
    with pytest.raises(SourceError) as e:
        source_data.check_against(lm, bad, bad)
    assert "vocab_size" in str(e.value) and e.value.field == "data"
    np.savez(tmp_path / "tokens.npz", input_ids=bad.numpy())
    Xf, yf = source_data.load_tokens(tmp_path / "tokens.npz")
    with pytest.raises(SourceError, match="0..23"):
        source_data.check_against(lm, Xf, yf)
    cls = load_model(tiny_folders["bert-cls"])
    Xc, yc, _ = make_data("bert-cls")
    with pytest.raises(SourceError, match="labels must lie in 0..2"):
        source_data.check_against(cls, Xc, yc + 5)


def test_pickled_npz_data_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.array([object()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as z:
        z.write(tmp_path / "x.npy", "input_ids.npy")
    with pytest.raises(SourceError, match="obj.npz"):
        source_data.load_tokens(tmp_path / "obj.npz")


NESTED = "[" * 5000 + "]" * 5000  # 10 KB; json.loads recurses once per level


@pytest.mark.parametrize("name", ["config.json", "model.safetensors.index.json"])
def test_deeply_nested_json_is_refused_naming_the_file(tmp_path, name, capsys):
    from analysis.__main__ import main

    folder = save_tiny("gpt2", tmp_path / "nested")
    if name == "config.json":
        cfg = json.loads((folder / "config.json").read_text())
        (folder / name).write_text(json.dumps(cfg)[:-1] + ', "x": ' + NESTED + "}")
    else:
        (folder / "model.safetensors").rename(folder / "model-00001.safetensors")
        (folder / name).write_text('{"weight_map": {"a": ' + NESTED + "}}")
    with pytest.raises(SourceError, match=f"{name}: not valid JSON .*nested deeper"):
        load_model(folder)
    assert main(["landscape", "--checkpoint", str(folder), "--dataset", "digits", "--out", str(tmp_path / "x.json")]) == 2
    assert f"error: {name}" in capsys.readouterr().err


def test_deeply_nested_checkpoint_metadata_is_refused(tmp_path):
    from analysis import checkpoints, zoo

    spec = {"kind": "mlp", "in": 4, "hidden": [3], "out": 2}
    path = tmp_path / "m.safetensors"
    state = {k: v.contiguous() for k, v in zoo.build(spec).state_dict().items()}
    save_file(state, str(path), metadata={"terrain.spec": json.dumps(spec), "terrain.meta": NESTED})
    with pytest.raises(checkpoints.CheckpointError, match="terrain.meta.*nested deeper"):
        checkpoints.load(path)


@pytest.mark.parametrize("field, value, exception", [
    ("activation_function", "evil", "KeyError"),
    ("layer_norm_epsilon", "x", "StrictDataclassFieldValidationError"),
])
def test_config_values_transformers_rejects_are_refused_naming_the_field(tmp_path, field, value, exception):
    folder = save_tiny("gpt2", tmp_path / "bad")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, field: value}))
    with pytest.raises(SourceError) as e:
        load_model(folder)
    assert str(e.value).startswith(f"config.json: {field} = {value!r} is not accepted ({exception}")


def test_roberta_sequences_longer_than_its_usable_positions_are_refused(tiny_folders):
    """RoBERTa numbers positions from pad_token_id + 1: max_position_embeddings 10 with pad 1 leaves 8."""
    model = load_model(tiny_folders["roberta-mlm"])
    X = torch.randint(3, 20, (2, 9))
    with pytest.raises(SourceError, match="9 tokens exceed the model's 8 positions"):
        source_data.check_against(model, X, X)
    source_data.check_against(model, X[:, :8], X[:, :8])
    with torch.no_grad():
        assert torch.isfinite(model.loss_fn(model.module(X[:, :8]), X[:, :8]))


def test_data_without_tokens_or_targets_is_refused(tiny_folders):
    lm = load_model(tiny_folders["gpt2"])
    empty = torch.zeros(2, 0, dtype=torch.int64)
    with pytest.raises(SourceError, match="at least one token"):
        source_data.check_against(lm, empty, empty)
    one = torch.randint(3, 20, (2, 1))
    with pytest.raises(SourceError, match="no position has a next-token target"):
        source_data.check_against(lm, one, one)
    mlm = load_model(tiny_folders["bert-mlm"])
    X = torch.randint(3, 20, (2, 6))
    with pytest.raises(SourceError, match="every label is -100"):
        source_data.check_against(mlm, X, torch.full_like(X, -100))


def test_convnext_images_smaller_than_its_downsampling_are_refused(tiny_folders):
    model = load_model(tiny_folders["convnext"])  # patch 4, two stages: at least 8x8
    y = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(SourceError, match="at least 8x8"):
        source_data.check_against(model, torch.randn(2, 3, 2, 2), y)
    source_data.check_against(model, torch.randn(2, 3, 8, 8), y)
    with torch.no_grad():
        assert model.module(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_uint64_ids_beyond_int64_are_named_not_wrapped(tmp_path):
    np.savez(tmp_path / "u64.npz", input_ids=np.array([[3, 2**64 - 1]], dtype=np.uint64))
    with pytest.raises(SourceError, match=str(2**64 - 1)):
        source_data.load_tokens(tmp_path / "u64.npz")


@pytest.mark.parametrize("seq_len", [0, 1])
def test_tokenize_text_refuses_a_seq_len_below_two(tmp_path, seq_len):
    (tmp_path / "t.txt").write_text("hello\n")
    with pytest.raises(SourceError, match="--seq-len") as e:
        source_data.tokenize_text(tmp_path / "t.txt", tmp_path / "tokenizer.json", seq_len=seq_len)
    assert e.value.field == "seq_len"


def test_nested_generation_config_and_unreadable_tokenizer_are_refused_naming_the_file(tmp_path):
    folder = save_tiny("gpt2", tmp_path / "gen")
    (folder / "generation_config.json").write_text('{"x": ' + NESTED + "}")
    with pytest.raises(SourceError, match="generation_config.json: not valid JSON"):
        load_model(folder)
    (tmp_path / "t.txt").write_text("hello there\n")
    (tmp_path / "tokenizer.json").write_text('{"x": ' + NESTED + "}")
    with pytest.raises(SourceError, match="tokenizer.json: cannot be read"):
        source_data.tokenize_text(tmp_path / "t.txt", tmp_path / "tokenizer.json", seq_len=8)


def test_landscape_of_data_without_targets_is_a_clear_error_in_the_python_api(tiny_folders):
    lm = load_model(tiny_folders["gpt2"])
    one = torch.randint(3, 20, (4, 1))
    with pytest.raises(ValueError, match="no target to score"):
        landscape.line(lm, (one, one), steps=3)
