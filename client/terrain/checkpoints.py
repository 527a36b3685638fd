"""Turning a model into the one safetensors file Terrain accepts (never a pickle).

- A Terrain spec model (built by `analysis.zoo.build`, or any module with the same
  parameter names, given `spec=`): `terrain.checkpoint.v1`, the spec in the metadata.
- A Hugging Face model: its state dict under the `save_pretrained` key names (tied
  weights stored once) and its `config.json` in the metadata: `terrain.hf.v1`.
- A LoRA adapter (a peft model, or `adapter=` tensors with `lora_config=`): only the
  adapter's tensors and its `adapter_config.json`: `terrain.lora.v1`.

`snapshot()` copies the tensors at call time (so training can go on); `write()`
serialises a snapshot, in the uploader's thread.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from terrain.errors import ValidationError

TERRAIN = "terrain.checkpoint.v1"
HF = "terrain.hf.v1"
LORA = "terrain.lora.v1"


@dataclass
class Snapshot:
    step: int
    tensors: dict[str, Any]  # name -> CPU tensor or numpy array, copied at log time
    metadata: dict[str, str] = field(default_factory=dict)


def _copy(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """Detached CPU copies, each storage once (tied weights share one: keep the first name, as save_pretrained does)."""
    out: dict[str, Any] = {}
    seen: set[tuple[int, int]] = set()
    for name, value in tensors.items():
        if hasattr(value, "detach"):
            key = (value.untyped_storage().data_ptr(), value.storage_offset()) if value.device.type != "meta" else (id(value), 0)
            if key in seen and value.numel() > 0:
                continue
            seen.add(key)
            out[name] = value.detach().to("cpu", copy=True).contiguous()
        else:
            import numpy as np

            out[name] = np.ascontiguousarray(np.array(value, copy=True))
    return out


def _peft_config(model) -> dict | None:
    configs = getattr(model, "peft_config", None)
    if not configs:
        return None
    config = configs.get("default") or next(iter(configs.values()))
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    return json.loads(json.dumps(data, default=lambda o: sorted(o) if isinstance(o, (set, frozenset)) else str(o)))


def snapshot(model, *, step: int, spec: dict | None = None, adapter: Mapping[str, Any] | None = None,
             lora_config: dict | None = None, meta: dict | None = None) -> Snapshot:
    """Copy what should be stored for `model` at `step` (see the module docstring for the three kinds)."""
    meta = dict(meta or {}, step=step)
    if adapter is not None or lora_config is not None or _peft_config(model) is not None:
        config = lora_config or _peft_config(model)
        if config is None:
            raise ValidationError("lora_config: give the adapter's configuration (adapter_config.json) with adapter=",
                                  errors={"lora_config": ["required with adapter="]})
        if adapter is None:
            adapter = _lora_state(model)
        return Snapshot(step, _copy(adapter), {"format": "pt", "terrain.format": LORA, "terrain.config": json.dumps(config),
                                               "terrain.meta": json.dumps(meta)})
    config = getattr(model, "config", None)
    if spec is None and config is not None and hasattr(config, "to_dict") and hasattr(model, "save_pretrained"):
        return Snapshot(step, _copy(model.state_dict()), {"format": "pt", "terrain.format": HF,
                                                          "terrain.config": config.to_json_string(use_diff=False)
                                                          if hasattr(config, "to_json_string") else json.dumps(config.to_dict()),
                                                          "terrain.meta": json.dumps(meta)})
    spec = spec or getattr(model, "terrain_spec", None)
    if spec is None:
        raise ValidationError("spec: this model carries no Terrain spec; pass spec={...} (e.g. {'kind': 'mlp', 'in': 64, "
                              "'hidden': [32], 'out': 10}), or log a Hugging Face model or a LoRA adapter",
                              errors={"spec": ["required for a model that is neither a Terrain, Hugging Face nor LoRA model"]})
    state = model.state_dict() if hasattr(model, "state_dict") else model
    return Snapshot(step, _copy(state), {"terrain.format": TERRAIN, "terrain.spec": json.dumps(spec), "terrain.meta": json.dumps(meta)})


def _lora_state(model) -> dict[str, Any]:
    try:
        from peft import get_peft_model_state_dict
    except ImportError:  # peft is optional: its adapter keys are the ones with lora_ in their names
        return {name: value for name, value in model.state_dict().items() if "lora_" in name}
    return get_peft_model_state_dict(model)


def write(snap: Snapshot, path: Path) -> Path:
    """Serialise to `path` atomically (a half-written file is never uploaded)."""
    tmp = path.with_suffix(".tmp")
    first = next(iter(snap.tensors.values()), None)
    if first is not None and hasattr(first, "detach"):
        from safetensors.torch import save_file
    else:
        from safetensors.numpy import save_file
    save_file(snap.tensors, str(tmp), metadata=snap.metadata)
    os.replace(tmp, path)
    return path
