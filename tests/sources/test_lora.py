"""LoRA merge: the merged model computes what the base computes with the low-rank update
added on the fly (forward hooks, ``y += s * x A^T B^T``), to 1e-6."""

import json

import pytest
import torch
from safetensors.torch import save_file

from analysis import connectivity
from analysis.sources import SourceError, load_model

from .conftest import make_data

TARGETS = {
    "gpt2": ["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc"],  # Conv1D: weights stored (in, out)
    "bert-cls": ["bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.0.attention.self.value"],
}


def write_adapter(folder, base, targets, *, r=2, alpha=6, seed=0, embedding=None):
    base_model = load_model(base).module.model
    modules = dict(base_model.named_modules())
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for path in targets:
        W = modules[path].weight
        fan_in, fan_out = (W.shape[0], W.shape[1]) if type(modules[path]).__name__ == "Conv1D" else (W.shape[1], W.shape[0])
        tensors[f"base_model.model.{path}.lora_A.weight"] = torch.randn(r, fan_in, generator=g) * 0.3
        tensors[f"base_model.model.{path}.lora_B.weight"] = torch.randn(fan_out, r, generator=g) * 0.3
    if embedding:
        E = modules[embedding].weight
        tensors[f"base_model.model.{embedding}.lora_embedding_A"] = torch.randn(r, E.shape[0], generator=g) * 0.3
        tensors[f"base_model.model.{embedding}.lora_embedding_B"] = torch.randn(E.shape[1], r, generator=g) * 0.3
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    cfg = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": targets, "bias": "none",
           "base_model_name_or_path": str(base), "fan_in_fan_out": False}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    return tensors


def _hooked_outputs(base, tensors, scale, X):
    """The base model with every LoRA branch added to its module's output, never touching a weight."""
    lm = load_model(base)
    modules = dict(lm.module.model.named_modules())
    handles = []
    for key, A in tensors.items():
        if ".lora_A." in key:
            path = key[len("base_model.model."):].split(".lora_A")[0]
            B = tensors[key.replace("lora_A", "lora_B")]
            handles.append(modules[path].register_forward_hook(
                lambda m, inp, out, A=A, B=B: out + scale * (inp[0] @ A.T @ B.T)))
        if key.endswith("lora_embedding_A"):
            path = key[len("base_model.model."):].rsplit(".lora_embedding_A", 1)[0]
            B = tensors[key.replace("lora_embedding_A", "lora_embedding_B")]
            handles.append(modules[path].register_forward_hook(
                lambda m, inp, out, A=A, B=B: out + scale * (torch.nn.functional.embedding(inp[0], A.T) @ B.T)))
    with torch.no_grad():
        out = lm.module(X)
    for h in handles:
        h.remove()
    return out


@pytest.mark.parametrize("family", ["gpt2", "bert-cls"])
def test_merge_matches_hooked_reference(tiny_folders, tmp_path, family):
    base = tiny_folders[family]
    # (GPT-2's wte is tied to its output layer, so an embedding LoRA there would change both)
    embedding = "bert.embeddings.word_embeddings" if family == "bert-cls" else None
    tensors = write_adapter(tmp_path / "adapter", base, TARGETS[family], embedding=embedding)
    merged = load_model(tmp_path / "adapter")
    assert merged.provenance["source"] == "lora"
    assert merged.provenance["base"] == str(base)
    assert set(merged.provenance["lora"]["merged_modules"]) == set(TARGETS[family]) | ({embedding} if embedding else set())
    X, _, _ = make_data(family)
    with torch.no_grad():
        got = merged.module(X)
        plain = load_model(base).module(X)
    want = _hooked_outputs(base, tensors, 6 / 2, X)
    assert float((got - plain).abs().max()) > 1e-3  # the adapter changes the function
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_rslora_scale(tiny_folders, tmp_path):
    base = tiny_folders["bert-cls"]
    tensors = write_adapter(tmp_path / "a", base, TARGETS["bert-cls"], r=4, alpha=8)
    cfg = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps({**cfg, "use_rslora": True}))
    X, _, _ = make_data("bert-cls")
    with torch.no_grad():
        got = load_model(tmp_path / "a").module(X)
    torch.testing.assert_close(got, _hooked_outputs(base, tensors, 8 / 2, X), atol=1e-6, rtol=0)


def test_merged_vs_base_is_a_connectivity_line(tiny_folders, tmp_path):
    base = tiny_folders["gpt2"]
    write_adapter(tmp_path / "adapter", base, TARGETS["gpt2"])
    merged, plain = load_model(tmp_path / "adapter"), load_model(base)
    X, y, _ = make_data("gpt2")
    res = connectivity.interpolate(plain, merged, (X, y), steps=5)
    with torch.no_grad():
        assert res.loss[0] == pytest.approx(float(plain.loss_fn(plain.module(X), y)), rel=1e-5)
        assert res.loss[-1] == pytest.approx(float(merged.loss_fn(merged.module(X), y)), rel=1e-5)


def test_refusals(tiny_folders, tmp_path):
    base = tiny_folders["bert-cls"]
    write_adapter(tmp_path / "dora", base, TARGETS["bert-cls"])
    cfg = json.loads((tmp_path / "dora" / "adapter_config.json").read_text())
    (tmp_path / "dora" / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(SourceError, match="use_dora"):
        load_model(tmp_path / "dora")
    write_adapter(tmp_path / "hub", base, TARGETS["bert-cls"])
    (tmp_path / "hub" / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "gpt2"}))
    with pytest.raises(SourceError, match="not a local folder"):
        load_model(tmp_path / "hub")
    write_adapter(tmp_path / "wrong", base, TARGETS["bert-cls"])
    bad = {"base_model.model.bert.nope.lora_A.weight": torch.zeros(2, 8), "base_model.model.bert.nope.lora_B.weight": torch.zeros(8, 2)}
    save_file(bad, str(tmp_path / "wrong" / "adapter_model.safetensors"))
    with pytest.raises(SourceError, match="bert.nope"):
        load_model(tmp_path / "wrong")


def _save_adapter(folder, base, tensors, **cfg):
    """An adapter folder in peft's layout: ``base_model.model.``-prefixed keys, the config beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({f"base_model.model.{k}": v.contiguous() for k, v in tensors.items()}, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": 2, "lora_alpha": 6, "bias": "none", "base_model_name_or_path": str(base),
              "fan_in_fan_out": False, **cfg}
    (folder / "adapter_config.json").write_text(json.dumps(config))


def _factors(g, r, fan_in, fan_out):
    return torch.randn(r, fan_in, generator=g) * 0.3, torch.randn(fan_out, r, generator=g) * 0.3


def test_saved_embedding_layers_replace_the_base_weights_before_the_update(tiny_folders, tmp_path):
    """peft's save_embedding_layers writes ``<module>.base_layer.weight`` beside an embed_tokens/lm_head update
    (an untied Llama): those are the weights the update was trained on, used in place of the base's."""
    base = tiny_folders["llama"]
    plain = dict(load_model(base).module.model.named_parameters())
    E, H = plain["model.embed_tokens.weight"], plain["lm_head.weight"]
    g = torch.Generator().manual_seed(3)
    E_trained, H_trained = E + 0.1 * torch.randn(E.shape, generator=g), H + 0.1 * torch.randn(H.shape, generator=g)
    eA, eB = torch.randn(2, E.shape[0], generator=g), torch.randn(E.shape[1], 2, generator=g)
    hA, hB = _factors(g, 2, H.shape[1], H.shape[0])
    _save_adapter(tmp_path / "emb", base, {
        "model.embed_tokens.base_layer.weight": E_trained, "model.embed_tokens.lora_embedding_A": eA,
        "model.embed_tokens.lora_embedding_B": eB,
        "lm_head.base_layer.weight": H_trained, "lm_head.lora_A.weight": hA, "lm_head.lora_B.weight": hB,
    }, target_modules=["embed_tokens", "lm_head"])
    merged = dict(load_model(tmp_path / "emb").module.model.named_parameters())
    torch.testing.assert_close(merged["model.embed_tokens.weight"], E_trained + 3 * (eB @ eA).T, atol=1e-6, rtol=0)
    torch.testing.assert_close(merged["lm_head.weight"], H_trained + 3 * (hB @ hA), atol=1e-6, rtol=0)


@pytest.mark.parametrize("bias", ["all", "lora_only"])
def test_trained_biases_replace_the_base_biases(tiny_folders, tmp_path, bias):
    """bias="all"/"lora_only": a LoRA-wrapped module's bias is saved as ``<module>.base_layer.bias``, others plainly."""
    base = tiny_folders["gpt2"]
    plain = dict(load_model(base).module.model.named_parameters())
    g = torch.Generator().manual_seed(4)
    W = plain["transformer.h.0.attn.c_attn.weight"]  # Conv1D: (in, out)
    A, B = _factors(g, 2, W.shape[0], W.shape[1])
    tensors = {"transformer.h.0.attn.c_attn.lora_A.weight": A, "transformer.h.0.attn.c_attn.lora_B.weight": B,
               "transformer.h.0.attn.c_attn.base_layer.bias": torch.randn(W.shape[1], generator=g)}
    if bias == "all":
        tensors["transformer.h.0.ln_1.bias"] = torch.randn(plain["transformer.h.0.ln_1.bias"].shape, generator=g)
    _save_adapter(tmp_path / bias, base, tensors, bias=bias, target_modules=["c_attn"], fan_in_fan_out=True)
    merged = dict(load_model(tmp_path / bias).module.model.named_parameters())
    assert torch.equal(merged["transformer.h.0.attn.c_attn.bias"], tensors["transformer.h.0.attn.c_attn.base_layer.bias"])
    torch.testing.assert_close(merged["transformer.h.0.attn.c_attn.weight"], W + 3 * (B @ A).T, atol=1e-6, rtol=0)
    if bias == "all":
        assert torch.equal(merged["transformer.h.0.ln_1.bias"], tensors["transformer.h.0.ln_1.bias"])


def test_lora_bias_is_merged_with_the_update_scale(tiny_folders, tmp_path):
    """lora_bias=True gives lora_B a bias (``<module>.lora_B.bias``); merged like peft: b + s * lora_B.bias."""
    base = tiny_folders["bert-cls"]
    plain = dict(load_model(base).module.model.named_parameters())
    path = "bert.encoder.layer.0.attention.self.query"
    W, b = plain[f"{path}.weight"], plain[f"{path}.bias"]
    g = torch.Generator().manual_seed(5)
    A, B = _factors(g, 2, W.shape[1], W.shape[0])
    lora_bias = torch.randn(W.shape[0], generator=g)
    _save_adapter(tmp_path / "lb", base, {f"{path}.lora_A.weight": A, f"{path}.lora_B.weight": B, f"{path}.lora_B.bias": lora_bias},
                  lora_bias=True, target_modules=["query"])
    merged = dict(load_model(tmp_path / "lb").module.model.named_parameters())
    torch.testing.assert_close(merged[f"{path}.weight"], W + 3 * (B @ A), atol=1e-6, rtol=0)
    torch.testing.assert_close(merged[f"{path}.bias"], b + 3 * lora_bias, atol=1e-6, rtol=0)


def test_rank_that_disagrees_with_r_is_refused(tiny_folders, tmp_path):
    base = tiny_folders["bert-cls"]
    write_adapter(tmp_path / "rank", base, TARGETS["bert-cls"], r=4)
    cfg = json.loads((tmp_path / "rank" / "adapter_config.json").read_text())
    (tmp_path / "rank" / "adapter_config.json").write_text(json.dumps({**cfg, "r": 2}))
    with pytest.raises(SourceError, match=r"lora_A has shape \[4, 8\], which is not rank r = 2"):
        load_model(tmp_path / "rank")


def test_adapter_without_lora_weights_is_refused(tiny_folders, tmp_path):
    base = tiny_folders["bert-cls"]
    _save_adapter(tmp_path / "empty", base, {})
    with pytest.raises(SourceError, match="adapter_model.safetensors holds no LoRA weights"):
        load_model(tmp_path / "empty")


def test_deeply_nested_adapter_config_is_refused(tiny_folders, tmp_path):
    base = tiny_folders["bert-cls"]
    write_adapter(tmp_path / "nested", base, TARGETS["bert-cls"])
    (tmp_path / "nested" / "adapter_config.json").write_text('{"r": 2, "x": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(SourceError, match="adapter_config.json: not valid JSON .*nested deeper"):
        load_model(tmp_path / "nested")


@pytest.mark.parametrize("extra, message", [
    ({"init_lora_weights": "pissa_niter_4"}, "init_lora_weights = 'pissa_niter_4' changed the base weights"),
    ({"init_lora_weights": "olora"}, "path_initial_model_for_weight_conversion"),
    ({"trainable_token_indices": [3, 5]}, "trainable_token_indices is not supported"),
])
def test_adapters_that_need_more_than_the_base_are_refused_by_name(tiny_folders, tmp_path, extra, message):
    base = tiny_folders["bert-cls"]
    write_adapter(tmp_path / "a", base, TARGETS["bert-cls"])
    cfg = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps({**cfg, "init_lora_weights": True, **extra}))
    with pytest.raises(SourceError, match=message):
        load_model(tmp_path / "a")
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps({**cfg, "init_lora_weights": True}))
    load_model(tmp_path / "a")  # a plain (or converted) adapter says True
