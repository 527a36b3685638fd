"""Checkpoint files a training script sends: safetensors only, validated before keeping.

The client writes one safetensors file per checkpoint; its header metadata says
what it is (`terrain.format`):

- `terrain.checkpoint.v1`: a Terrain spec model (`terrain.spec`), read by analysis.checkpoints;
- `terrain.hf.v1`: a Hugging Face model's state dict (the `save_pretrained` key names) with
  its `config.json` as `terrain.config`;
- `terrain.lora.v1`: a LoRA adapter's tensors with its `adapter_config.json` as `terrain.config`.
"""

from __future__ import annotations

from pathlib import Path

from webapp.bounded_json import JsonRejected, parse_json
from webapp.runs.models import CheckpointSource

FORMATS = {
    "terrain.checkpoint.v1": CheckpointSource.TERRAIN,
    "terrain.hf.v1": CheckpointSource.HF,
    "terrain.lora.v1": CheckpointSource.LORA,
}
MAX_CONFIG_CHARS = 1_000_000


class CheckpointFileRejected(ValueError):
    pass


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except Exception as exc:  # a corrupt header: safetensors raises its own error types
        raise CheckpointFileRejected(f"not a readable safetensors file ({type(exc).__name__}: {exc})") from None


def source_of(path: Path) -> str:
    """Which kind of checkpoint the file holds, from its header alone (never unpickles: safetensors only)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        raise CheckpointFileRejected("checkpoints must be safetensors files (pickled .pt/.bin files are not accepted here)")
    fmt = _metadata(path).get("terrain.format", "")
    if fmt not in FORMATS:
        raise CheckpointFileRejected(f"unknown terrain.format {fmt!r} in the safetensors metadata (expected one of {', '.join(FORMATS)})")
    return FORMATS[fmt]


def inspect_foreign(path: Path, source: str) -> tuple[dict, int]:
    """Validate an HF / LoRA file: a JSON config object, float tensors, no NaN/Inf. Returns (config, parameters)."""
    import torch
    from safetensors import safe_open

    text = _metadata(path).get("terrain.config", "")
    if not text or len(text) > MAX_CONFIG_CHARS:
        raise CheckpointFileRejected("the file carries no terrain.config (the model's config.json / adapter_config.json)")
    try:
        config = parse_json(text, field="terrain.config", expect=dict)
    except JsonRejected as exc:
        raise CheckpointFileRejected(str(exc)) from None
    needed = "model_type" if source == CheckpointSource.HF else "r"
    if needed not in config:
        raise CheckpointFileRejected(f"terrain.config has no {needed!r}: is this a {CheckpointSource(source).label}?")
    total = 0
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
        if not keys:
            raise CheckpointFileRejected("the file holds no tensors")
        for key in keys:
            tensor = handle.get_tensor(key)
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointFileRejected(f"tensor {key!r} holds NaN or Inf")
            total += tensor.numel()
    return config, total
