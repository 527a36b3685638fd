"""Data for users' models: token ids, text through the model's own tokenizer, image arrays.

Everything comes back as ``(X, y)`` tensors that a
:class:`~analysis.sources.base.LoadedModel` takes: ``X`` token ids ``(N, T)``
int64 or images ``(N, C, H, W)`` float32, ``y`` the labels its loss wants
(``-100`` marks positions without a target).  :func:`check_against` checks
shapes, vocabulary range and label range against the model before any job
is queued.  Arrays are read with ``allow_pickle=False`` or from safetensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .base import IGNORE_INDEX, LoadedModel, SourceError

__all__ = ["load_tokens", "load_images", "tokenize_text", "check_against", "MAX_DATA_BYTES"]

MAX_DATA_BYTES = 512 * 2**20


def _arrays(path: Path, field: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise SourceError(f"{path.name}: no such file", field=field)
    if path.stat().st_size > MAX_DATA_BYTES:
        raise SourceError(f"{path.name}: larger than {MAX_DATA_BYTES} bytes", field=field)
    try:
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(path)))
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:  # pickled object arrays are refused by allow_pickle=False
        raise SourceError(f"{path.name}: unreadable ({e})", field=field) from None
    raise SourceError(f"{path.name}: expected a .npz or .safetensors file", field=field)


def _int_array(arrays: dict, key: str, name: str, field: str) -> torch.Tensor:
    a = arrays[key]
    if not np.issubdtype(a.dtype, np.integer):
        raise SourceError(f"{name}: {key} must hold integers, not {a.dtype}", field=field)
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:  # would wrap to negative as int64
        raise SourceError(f"{name}: {key} holds {int(a.max())}, beyond any vocabulary or label range", field=field)
    return torch.from_numpy(a.astype(np.int64))


def load_tokens(path: str | os.PathLike, *, head: str = "causal-lm", field: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids (N, T)``, optional ``attention_mask (N, T)`` and ``labels``.

    Without labels a causal LM predicts its own next tokens (padding, mask 0, gets -100).
    """
    path = Path(path)
    arrays = _arrays(path, field)
    if "input_ids" not in arrays:
        raise SourceError(f"{path.name}: needs an input_ids array (N, T)", field=field)
    X = _int_array(arrays, "input_ids", path.name, field)
    if X.dim() != 2 or X.shape[0] == 0:
        raise SourceError(f"{path.name}: input_ids must have shape (N, T), got {list(X.shape)}", field=field)
    mask = _int_array(arrays, "attention_mask", path.name, field) if "attention_mask" in arrays else None
    if mask is not None and mask.shape != X.shape:
        raise SourceError(f"{path.name}: attention_mask has shape {list(mask.shape)}, input_ids {list(X.shape)}", field=field)
    if "labels" in arrays:
        y = _int_array(arrays, "labels", path.name, field)
    elif head == "causal-lm":
        y = X.clone()
    else:
        raise SourceError(f"{path.name}: a {head} model needs a labels array", field=field)
    if mask is not None and y.shape == X.shape:
        y = y.masked_fill(mask == 0, IGNORE_INDEX)  # the mask folded into the labels
    return X, y


def load_images(path: str | os.PathLike, *, field: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` (N, C, H, W) floats and ``y`` (N,) integer classes, as arrays named X and y."""
    path = Path(path)
    arrays = _arrays(path, field)
    if "X" not in arrays or "y" not in arrays:
        raise SourceError(f"{path.name}: needs arrays X (N, C, H, W) and y (N,)", field=field)
    X = torch.from_numpy(np.asarray(arrays["X"], dtype=np.float32))
    y = _int_array(arrays, "y", path.name, field)
    if X.dim() != 4 or y.shape != (X.shape[0],):
        raise SourceError(f"{path.name}: X must be (N, C, H, W) and y (N,), got {list(X.shape)} and {list(y.shape)}", field=field)
    if not torch.isfinite(X).all():
        raise SourceError(f"{path.name}: X holds NaN or Inf values", field=field)
    return X, y


def tokenize_text(
    path: str | os.PathLike, tokenizer_json: str | os.PathLike, *, seq_len: int = 64, head: str = "causal-lm",
    max_lines: int = 10_000, field: str = "data",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sequence per non-empty line, tokenised with the folder's ``tokenizer.json`` (no code runs),
    truncated/padded to ``seq_len``; labels as for :func:`load_tokens` (causal LM only)."""
    from tokenizers import Tokenizer

    path = Path(path)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise SourceError(
            f"seq_len (--seq-len) must be at least 2 tokens (a causal LM predicts each token from those before it), got {seq_len!r}",
            field="seq_len",
        )
    if path.stat().st_size > MAX_DATA_BYTES:
        raise SourceError(f"{path.name}: larger than {MAX_DATA_BYTES} bytes", field=field)
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()][:max_lines]
    except UnicodeDecodeError:
        raise SourceError(f"{path.name}: not UTF-8 text", field=field) from None
    if not lines:
        raise SourceError(f"{path.name}: no text", field=field)
    if head != "causal-lm":
        raise SourceError(f"{path.name}: plain text gives next-token labels, which only a causal-lm head uses", field=field)
    try:
        tok = Tokenizer.from_file(str(tokenizer_json))
    except Exception as e:  # the tokenizers library reports every unreadable file as a bare Exception
        raise SourceError(f"tokenizer.json: cannot be read as a tokenizer ({str(e)[:200]})", field=field) from None
    pad = tok.token_to_id("[PAD]") or tok.token_to_id("<pad>") or 0
    tok.enable_truncation(seq_len)
    tok.enable_padding(length=seq_len, pad_id=pad)
    enc = tok.encode_batch(lines)
    X = torch.tensor([e.ids for e in enc], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
    return X, X.masked_fill(mask == 0, IGNORE_INDEX)


def _config_value(model: LoadedModel, *names: str):
    cfg = getattr(getattr(model.module, "model", None), "config", None)
    for n in names:
        v = getattr(cfg, n, None) if cfg is not None else None
        if v is not None:
            return v
    return None


def check_against(model: LoadedModel, X: torch.Tensor, y: torch.Tensor, *, field: str = "data") -> None:
    """Refuse data the model cannot take: wrong kind or shape, ids outside the vocabulary, labels out of range."""
    if X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise SourceError(f"inputs and labels must have the same number of samples (> 0), got {X.shape[0]} and {y.shape[0]}", field=field)
    if model.input_kind == "tokens":
        if X.is_floating_point() or X.dim() != 2:
            raise SourceError(f"the model takes token ids (N, T) integers, got {X.dtype} {list(X.shape)}", field=field)
        if X.shape[1] == 0:
            raise SourceError("sequences must hold at least one token, got (N, 0) token ids", field=field)
        vocab = _config_value(model, "vocab_size")
        if vocab is not None and (int(X.min()) < 0 or int(X.max()) >= vocab):
            raise SourceError(f"token ids must lie in 0..{vocab - 1} (the model's vocab_size), found {int(X.min())}..{int(X.max())}", field=field)
        positions = _usable_positions(model)
        if positions is not None and X.shape[1] > positions:
            raise SourceError(f"sequences of {X.shape[1]} tokens exceed the model's {positions} positions", field=field)
    elif model.input_kind == "images":
        _check_images(model, X, field)
    head = model.provenance.get("head")
    if head in ("causal-lm", "masked-lm") and y.shape != X.shape:
        raise SourceError(f"a {head} model needs labels shaped like the token ids {list(X.shape)}, got {list(y.shape)}", field=field)
    if head and head.endswith("classification") and y.dim() != 1:
        raise SourceError(f"a classifier needs one integer label per sample (N,), got {list(y.shape)}", field=field)
    if head in ("causal-lm", "masked-lm"):
        bound = _config_value(model, "vocab_size")
        valid = y[y != IGNORE_INDEX]
    else:
        bound = _config_value(model, "num_labels")
        valid = y
    if bound is not None and len(valid) and (int(valid.min()) < 0 or int(valid.max()) >= bound):
        raise SourceError(f"labels must lie in 0..{bound - 1}" + (" (or -100)" if head and head.endswith("lm") else "")
                          + f", found {int(valid.min())}..{int(valid.max())}", field=field)
    _check_some_targets(head, y, field)


def _usable_positions(model: LoadedModel) -> int | None:
    positions = _config_value(model, "max_position_embeddings", "n_positions")
    if positions is not None and _config_value(model, "model_type") == "roberta":
        # RoBERTa numbers positions from pad_token_id + 1, so that many position embeddings are never used
        positions -= (_config_value(model, "pad_token_id") or 0) + 1
    return positions


def _check_images(model: LoadedModel, X: torch.Tensor, field: str) -> None:
    channels, size = _config_value(model, "num_channels"), _config_value(model, "image_size")
    if X.dim() != 4 or (channels is not None and X.shape[1] != channels):
        raise SourceError(f"the model takes images (N, {channels}, H, W), got {list(X.shape)}", field=field)
    model_type = _config_value(model, "model_type")
    if isinstance(size, int) and tuple(X.shape[2:]) != (size, size) and model_type == "vit":
        raise SourceError(f"the model takes {size}x{size} images, got {list(X.shape[2:])}", field=field)
    if model_type == "convnext":  # a patch of patch_size, then a 2x2 downsampling before every later stage
        smallest = _config_value(model, "patch_size") * 2 ** (_config_value(model, "num_stages") - 1)
        if min(X.shape[2:]) < smallest:
            raise SourceError(f"the model takes images of at least {smallest}x{smallest} pixels, got {list(X.shape[2:])}", field=field)


def _check_some_targets(head: str | None, y: torch.Tensor, field: str) -> None:
    """A language model's loss averages over the positions with a target: with none there is nothing to measure."""
    if head == "causal-lm" and not (y[:, 1:] != IGNORE_INDEX).any():
        raise SourceError("no position has a next-token target: a causal LM needs sequences of at least 2 tokens "
                          "with labels other than -100 after the first", field=field)
    if head == "masked-lm" and not (y != IGNORE_INDEX).any():
        raise SourceError("no position has a label: every label is -100 (give the masked positions their token ids)", field=field)
