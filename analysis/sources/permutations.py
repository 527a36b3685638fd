"""Permutation symmetries of Hugging Face models, for weight matching (Git Re-Basin).

Each function returns a :class:`analysis.permutation_spec.PermutationSpec` over
the state-dict names of an :class:`~analysis.sources.huggingface.HFAdapter`
(prefix ``model.``).  Only permutations that leave the function unchanged
exactly are listed, each local to one block so the residual stream is left
alone:

* MLP hidden units of every block (GPT-2 ``c_fc``/``c_proj``, BERT-style
  ``intermediate``/``output``, DistilBERT ``lin1``/``lin2``, Llama
  ``gate``/``up``/``down``, GPT-NeoX ``dense_h_to_4h``/``dense_4h_to_h``);
* attention heads of every block (GPT-2, BERT-style and DistilBERT: a head's
  query, key and value rows move together with its columns of the output
  projection);
* the inner channels of every ResNet residual block (a convolution's output
  channels, its BatchNorm, and the next convolution's input channels).
"""

from __future__ import annotations

import re

from torch import nn

from ..permutation_spec import PermutationSpec

__all__ = ["permutation_spec_for"]

BN = ("weight", "bias", "running_mean", "running_var")
MLP_ONLY = {
    "llama": (["mlp.gate_proj", "mlp.up_proj"], "mlp.down_proj"),
    "gpt_neox": (["mlp.dense_h_to_4h"], "mlp.dense_4h_to_h"),
}


def _blocks(keys: list[str], pattern: str) -> list[str]:
    """Distinct block prefixes (``...layer.3``) of the keys that match ``pattern`` (a regex with one group)."""
    seen: dict[str, None] = {}
    for k in keys:
        m = re.match(pattern, k)
        if m:
            seen[m.group(1)] = None
    return list(seen)


def _mlp(spec: PermutationSpec, keys, shapes, pattern: str, fc_in: list[str], fc_out: str, conv1d: bool) -> None:
    """Hidden units between the input projection(s) ``fc_in`` and the output projection ``fc_out``."""
    for i, block in enumerate(_blocks(keys, pattern)):
        p = f"mlp{i}"
        for name in fc_in:
            w = f"{block}.{name}.weight"
            spec.perms[p] = shapes[w][1] if conv1d else shapes[w][0]
            spec.axes[w] = (None, (None, p) if conv1d else (p, None))
            if f"{block}.{name}.bias" in shapes:
                spec.axes[f"{block}.{name}.bias"] = (None, (p,))
        spec.axes[f"{block}.{fc_out}.weight"] = (None, (p, None) if conv1d else (None, p))


def _heads_linear(spec: PermutationSpec, keys, shapes, pattern: str, qkv: list[str], out: str, heads: int) -> None:
    """BERT-style attention: separate (out, in) Linear q, k, v and an output Linear."""
    for i, block in enumerate(_blocks(keys, pattern)):
        p = f"head{i}"
        d_out, d_in = shapes[f"{block}.{qkv[0]}.weight"]
        hd = d_out // heads
        spec.perms[p] = heads
        for name in qkv:
            spec.axes[f"{block}.{name}.weight"] = ((heads, hd, d_in), (p, None, None))
            spec.axes[f"{block}.{name}.bias"] = ((heads, hd), (p, None))
        o = shapes[f"{block}.{out}.weight"][0]
        spec.axes[f"{block}.{out}.weight"] = ((o, heads, hd), (None, p, None))


def _gpt2(keys, shapes, heads: int) -> PermutationSpec:
    spec = PermutationSpec({}, {})
    _mlp(spec, keys, shapes, r"(.*\.h\.\d+)\.mlp\.c_fc\.weight$", ["mlp.c_fc"], "mlp.c_proj", conv1d=True)
    for i, block in enumerate(_blocks(keys, r"(.*\.h\.\d+)\.attn\.c_attn\.weight$")):
        p = f"head{i}"
        d, three_d = shapes[f"{block}.attn.c_attn.weight"]
        hd = three_d // 3 // heads
        spec.perms[p] = heads
        # Conv1D stores (in, out); the out axis is [q | k | v], each split into heads
        spec.axes[f"{block}.attn.c_attn.weight"] = ((d, 3, heads, hd), (None, None, p, None))
        spec.axes[f"{block}.attn.c_attn.bias"] = ((3, heads, hd), (None, p, None))
        spec.axes[f"{block}.attn.c_proj.weight"] = ((heads, hd, d), (p, None, None))
    return spec


def _resnet(keys, shapes) -> PermutationSpec:
    spec = PermutationSpec({}, {})
    for i, block in enumerate(_blocks(keys, r"(.*\.layers\.\d+)\.layer\.0\.convolution\.weight$")):
        convs = sorted({int(m.group(1)) for k in keys if (m := re.match(re.escape(block) + r"\.layer\.(\d+)\.convolution\.weight$", k))})
        for j in convs[:-1]:  # every convolution but the block's last feeds only the next one
            p = f"block{i}.{j}"
            conv = f"{block}.layer.{j}"
            spec.perms[p] = shapes[f"{conv}.convolution.weight"][0]
            prev = spec.axes.get(f"{conv}.convolution.weight", (None, (None, None, None, None)))[1][1]
            spec.axes[f"{conv}.convolution.weight"] = (None, (p, prev, None, None))
            for k in BN:
                spec.axes[f"{conv}.normalization.{k}"] = (None, (p,))
            spec.axes[f"{conv}.normalization.num_batches_tracked"] = (None, ())
            spec.axes[f"{block}.layer.{j + 1}.convolution.weight"] = (None, (None, p, None, None))
    return spec


def permutation_spec_for(module: nn.Module) -> PermutationSpec:
    """The permutation structure of a Hugging Face model wrapped by :class:`HFAdapter` (or a LoadedModel's module)."""
    module = getattr(module, "module", module)
    hf = getattr(module, "model", None)
    config = getattr(hf, "config", None)
    if config is None:
        raise NotImplementedError("weight matching of this model needs a zoo spec or a Hugging Face model")
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    keys = list(shapes)
    mt = config.model_type
    if mt == "gpt2":
        return _gpt2(keys, shapes, config.n_head)
    if mt in ("bert", "roberta"):
        spec = PermutationSpec({}, {})
        _mlp(spec, keys, shapes, r"(.*\.layer\.\d+)\.intermediate\.dense\.weight$", ["intermediate.dense"], "output.dense", conv1d=False)
        _heads_linear(spec, keys, shapes, r"(.*\.layer\.\d+)\.attention\.self\.query\.weight$",
                      ["attention.self.query", "attention.self.key", "attention.self.value"], "attention.output.dense", config.num_attention_heads)
        return spec
    if mt == "distilbert":
        spec = PermutationSpec({}, {})
        _mlp(spec, keys, shapes, r"(.*\.layer\.\d+)\.ffn\.lin1\.weight$", ["ffn.lin1"], "ffn.lin2", conv1d=False)
        _heads_linear(spec, keys, shapes, r"(.*\.layer\.\d+)\.attention\.q_lin\.weight$",
                      ["attention.q_lin", "attention.k_lin", "attention.v_lin"], "attention.out_lin", config.n_heads)
        return spec
    if mt in MLP_ONLY:  # grouped-query / rotary attention: heads are left in place
        spec = PermutationSpec({}, {})
        fc_in, fc_out = MLP_ONLY[mt]
        _mlp(spec, keys, shapes, rf"(.*\.layers\.\d+)\.{re.escape(fc_in[0])}\.weight$", fc_in, fc_out, conv1d=False)
        return spec
    if mt == "resnet":
        return _resnet(keys, shapes)
    raise NotImplementedError(f"weight matching does not cover {mt} models yet (GPT-2, BERT-style, Llama, GPT-NeoX and ResNet do)")
