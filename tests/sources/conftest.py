"""Tiny random-init Hugging Face models of every allowed family, saved with save_pretrained (no download)."""

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

VOCAB = 24


def _config(family: str):
    import transformers as T

    text = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2)
    if family == "gpt2":
        return T.GPT2LMHeadModel, T.GPT2Config(n_embd=8, n_layer=1, n_head=2, n_positions=8, **text)
    if family == "llama":
        return T.LlamaForCausalLM, T.LlamaConfig(
            hidden_size=8, intermediate_size=12, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            max_position_embeddings=8, **text,
        )
    if family == "gpt_neox":
        return T.GPTNeoXForCausalLM, T.GPTNeoXConfig(
            hidden_size=8, intermediate_size=12, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=8,
            rotary_pct=0.5, **text,
        )
    bert = dict(hidden_size=8, intermediate_size=12, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=8,
                pad_token_id=0, vocab_size=VOCAB)
    if family == "bert-mlm":
        return T.BertForMaskedLM, T.BertConfig(**bert)
    if family == "bert-cls":
        return T.BertForSequenceClassification, T.BertConfig(num_labels=3, **bert)
    if family == "roberta-mlm":  # RoBERTa pads with 1 and offsets positions past it
        return T.RobertaForMaskedLM, T.RobertaConfig(**{**bert, "pad_token_id": 1, "max_position_embeddings": 10})
    if family == "distilbert-cls":
        return T.DistilBertForSequenceClassification, T.DistilBertConfig(
            vocab_size=VOCAB, dim=8, n_layers=1, n_heads=2, hidden_dim=12, max_position_embeddings=8, pad_token_id=0, num_labels=3,
        )
    if family == "convnext":
        return T.ConvNextForImageClassification, T.ConvNextConfig(
            num_channels=3, num_stages=2, hidden_sizes=[4, 8], depths=[1, 1], num_labels=3,
        )
    if family == "vit":
        return T.ViTForImageClassification, T.ViTConfig(
            image_size=8, patch_size=4, num_channels=3, hidden_size=8, intermediate_size=12, num_hidden_layers=1,
            num_attention_heads=2, num_labels=3,
        )
    if family == "resnet":
        return T.ResNetForImageClassification, T.ResNetConfig(
            num_channels=3, embedding_size=4, hidden_sizes=[4, 6], depths=[1, 1], layer_type="basic", num_labels=3,
        )
    raise KeyError(family)


FAMILIES = ["gpt2", "llama", "gpt_neox", "bert-mlm", "bert-cls", "roberta-mlm", "distilbert-cls", "vit", "resnet", "convnext"]
PAD = {"roberta-mlm": 1}


def make_data(family: str, n: int = 4, seed: int = 0):
    """``(X, y, reference_kwargs)``: the plain batch, its targets and the keyword arguments that give
    the same loss through the Hugging Face model's own ``labels=`` code path (the independent reference)."""
    g = torch.Generator().manual_seed(seed)
    if family in ("vit", "resnet", "convnext"):
        size = 8 if family == "vit" else 16
        X = torch.randn(n, 3, size, size, generator=g)
        y = torch.randint(0, 3, (n,), generator=g)
        return X, y, {"pixel_values": X, "labels": y}
    X = torch.randint(3, VOCAB, (n, 6), generator=g)
    pad = PAD.get(family, 0)
    if family.endswith("-cls"):
        X[0, -2:] = pad  # padding: masked out of attention from the ids
        y = torch.randint(0, 3, (n,), generator=g)
        return X, y, {"input_ids": X, "attention_mask": (X != pad).long(), "labels": y}
    if family.endswith("-mlm"):
        X[0, -1] = pad
        y = torch.full_like(X, -100)
        y[:, 1] = torch.randint(3, VOCAB, (n,), generator=g)
        y[:, 3] = torch.randint(3, VOCAB, (n,), generator=g)
        return X, y, {"input_ids": X, "attention_mask": (X != pad).long(), "labels": y}
    y = X.clone()
    y[0, -2:] = -100  # padded tail of the first sequence
    return X, y, {"input_ids": X, "labels": y}


def save_tiny(family: str, folder: Path, seed: int = 0) -> Path:
    cls, config = _config(family)
    torch.manual_seed(seed)
    model = cls(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {f: save_tiny(f, root / f) for f in FAMILIES}
