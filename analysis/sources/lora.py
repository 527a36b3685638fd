"""LoRA adapters (``adapter_config.json`` + ``adapter_model.safetensors``) merged into their base.

Merging is done here, by hand, so peft is not needed at run time:
``W' = W + s * B @ A`` with ``s = lora_alpha / r`` (``lora_alpha / sqrt(r)``
with ``use_rslora``), transposed for layers that store ``(in, out)``
weights (GPT-2's ``Conv1D``, or ``fan_in_fan_out: true``), and
``E' = E + s * (B @ A)^T`` for embeddings, and ``b' = b + s * lora_B.bias``
with ``lora_bias``.  Tensors the adapter holds outright replace the base's
before the updates are added: what it trains (``modules_to_save``,
``bias="all"``/``"lora_only"``, saved as ``<module>.base_layer.bias`` for a
LoRA-wrapped module) and the base embedding/output weights peft saves beside
an embedding or ``lm_head`` update (``<module>.base_layer.weight``, its
``save_embedding_layers``): the update was trained on those, and peft loads
them in place of the base's too.  DoRA and convolution adapters are refused
with a message.  As with peft's
``merge_and_unload``, an update to a tied weight (GPT-2's ``wte`` is its
output layer too) changes every place the weight is used.

The base is a Hugging Face folder: ``base=`` or, failing that,
``base_model_name_or_path`` when it is an existing local folder (never a Hub
download).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn

from . import huggingface
from .base import LoadedModel, SourceError

__all__ = ["load", "merge", "read_adapter"]

MAX_ADAPTER_BYTES = 2 * 2**30
PREFIX = "base_model.model."
BASE_CHANGING_INITS = {"pissa", "olora", "corda"}  # peft subtracts the initial update from the base weights
SAVE_ADAPTER = "save it with peft_model.save_pretrained(folder) (adapter_config.json + adapter_model.safetensors)"


def read_adapter(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    cfg_path = folder / "adapter_config.json"
    try:
        cfg = huggingface.read_json(cfg_path)  # bounded in size and nesting like config.json
    except OSError as e:
        raise SourceError(f"adapter_config.json: cannot be read ({e})") from None
    if not isinstance(cfg, dict):
        raise SourceError("adapter_config.json: must be a JSON object")
    if cfg.get("peft_type", "LORA") != "LORA":
        raise SourceError(f"adapter_config.json: peft_type {cfg.get('peft_type')!r} is not supported (only LORA)")
    if cfg.get("use_dora"):
        raise SourceError("adapter_config.json: use_dora adapters are not supported; train a plain LoRA (use_dora=False)")
    r, alpha = cfg.get("r"), cfg.get("lora_alpha", cfg.get("r"))
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 4096:
        raise SourceError(f"adapter_config.json: r = {r!r} must be an integer in 1..4096")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise SourceError(f"adapter_config.json: lora_alpha = {alpha!r} must be a number")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise SourceError("adapter_config.json: rank_pattern/alpha_pattern are not supported; use one r and lora_alpha")
    init = cfg.get("init_lora_weights")
    if isinstance(init, str) and init.split("_niter_")[0] in BASE_CHANGING_INITS:
        raise SourceError(
            f"adapter_config.json: init_lora_weights = {init!r} changed the base weights during training, so merging onto "
            "the original base would be wrong; convert it to a plain LoRA with peft_model.save_pretrained(folder, "
            "path_initial_model_for_weight_conversion=...)"
        )
    if cfg.get("trainable_token_indices"):
        raise SourceError("adapter_config.json: trainable_token_indices is not supported; train the embedding with "
                          "target_modules or modules_to_save instead")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        bins = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth")]
        what = f"{', '.join(bins)}: pickled adapters are never opened; " if bins else "no adapter_model.safetensors; "
        raise SourceError(what + SAVE_ADAPTER)
    if weights.stat().st_size > MAX_ADAPTER_BYTES:
        raise SourceError(f"adapter_model.safetensors: larger than {MAX_ADAPTER_BYTES} bytes")
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # corrupt headers surface as assorted errors
        raise SourceError(f"adapter_model.safetensors: not a valid safetensors file ({e})") from None
    for k, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise SourceError(f"adapter_model.safetensors: tensor {k} holds NaN or Inf values")
    return cfg, tensors


def _split(key: str) -> tuple[str, str] | None:
    """``(module path, part)`` for a LoRA factor key, part in lora_A/lora_B/lora_embedding_A/lora_embedding_B/lora_B.bias."""
    k = key[len(PREFIX):] if key.startswith(PREFIX) else key
    for tail, part in ((".lora_B.bias", "lora_B.bias"), (".lora_B.default.bias", "lora_B.bias")):
        if k.endswith(tail):
            return k[: -len(tail)], part
    for part in ("lora_embedding_A", "lora_embedding_B", "lora_A", "lora_B"):
        for tail in (f".{part}.weight", f".{part}.default.weight", f".{part}", f".{part}.default"):
            if k.endswith(tail):
                return k[: -len(tail)], part
    return None


def _base_parameter(params: dict[str, nn.Parameter], name: str, t: torch.Tensor) -> nn.Parameter:
    """The base parameter a tensor the adapter holds outright replaces (``x.base_layer.bias`` is ``x.bias``)."""
    for candidate in (name, name.replace(".base_layer.", ".")):
        if candidate in params and params[candidate].shape == t.shape:
            return params[candidate]
    raise SourceError(f"adapter_model.safetensors: tensor {name} does not match a base parameter")


def _check_rank(path: str, f: dict[str, torch.Tensor], r: int) -> None:
    """Every factor's rank is the config's r, or the alpha/r scale would be silently wrong."""
    for part, axis in (("lora_A", 0), ("lora_B", 1), ("lora_embedding_A", 0), ("lora_embedding_B", 1)):
        t = f.get(part)
        if t is not None and (t.dim() <= axis or t.shape[axis] != r):
            raise SourceError(
                f"adapter_model.safetensors: {path}.{part} has shape {list(t.shape)}, which is not rank r = {r} "
                "as adapter_config.json says; save the adapter again with peft (r must match the tensors)"
            )


def merge(model: nn.Module, cfg: dict, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Merge the adapter into ``model`` (a Hugging Face model) in place; returns the merged module paths."""
    r = cfg["r"]
    alpha = cfg.get("lora_alpha", r)
    scale = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    factors: dict[str, dict[str, torch.Tensor]] = {}
    plain: dict[str, torch.Tensor] = {}
    for key, t in tensors.items():
        s = _split(key)
        if s:
            factors.setdefault(s[0], {})[s[1]] = t
        else:
            plain[(key[len(PREFIX):] if key.startswith(PREFIX) else key).replace(".modules_to_save.default", "")] = t
    if not factors:
        raise SourceError("adapter_model.safetensors holds no LoRA weights (no lora_A/lora_B tensors): " + SAVE_ADAPTER)
    merged = []
    with torch.no_grad():
        # outright tensors first: a saved base_layer.weight is what the update below was trained on
        for name, t in plain.items():
            param = _base_parameter(params, name, t)
            param.copy_(t.to(param.dtype))
        for path, f in sorted(factors.items()):
            mod = modules.get(path)
            if mod is None or not isinstance(getattr(mod, "weight", None), torch.Tensor):
                raise SourceError(f"adapter_model.safetensors: LoRA targets {path!r}, which the base model does not have")
            W = mod.weight
            if "lora_embedding_A" in f and "lora_embedding_B" in f:
                _check_rank(path, f, r)
                delta = (f["lora_embedding_B"] @ f["lora_embedding_A"]).T
            elif "lora_A" in f and "lora_B" in f:
                A, B = f["lora_A"], f["lora_B"]
                if A.dim() != 2 or B.dim() != 2:
                    raise SourceError(f"adapter_model.safetensors: {path}: convolution adapters are not supported")
                _check_rank(path, f, r)
                delta = B @ A
                if type(mod).__name__ == "Conv1D" or cfg.get("fan_in_fan_out"):  # weights stored (in, out)
                    delta = delta.T
            else:
                raise SourceError(f"adapter_model.safetensors: {path} lacks its lora_A or lora_B factor")
            if delta.shape != W.shape:
                raise SourceError(f"adapter_model.safetensors: {path}: B @ A has shape {list(delta.shape)}, the base weight {list(W.shape)}")
            W.add_(scale * delta.to(W.dtype))
            if "lora_B.bias" in f:  # lora_bias=True: lora_B has a bias of its own, scaled like the weight
                b = getattr(mod, "bias", None)
                if not isinstance(b, torch.Tensor) or b.shape != f["lora_B.bias"].shape:
                    raise SourceError(
                        f"adapter_model.safetensors: {path}.lora_B.bias (lora_bias=True) needs a base layer with a bias "
                        f"of {f['lora_B.bias'].numel()} values, and {path} has none that fits"
                    )
                b.add_(scale * f["lora_B.bias"].to(b.dtype))
            merged.append(path)
    return merged


def load(path: str | os.PathLike, *, base: str | os.PathLike | None = None, **options) -> LoadedModel:
    folder = Path(path).resolve()
    cfg, tensors = read_adapter(folder)
    if base is None:
        named = cfg.get("base_model_name_or_path")
        if isinstance(named, str) and os.path.isabs(named) and huggingface.is_folder(Path(named)):
            base = named
        else:
            raise SourceError(
                f"adapter_config.json: base model {named!r} is not a local folder; upload or choose the base "
                "(a Hugging Face folder) together with the adapter", field="base",
            )
    based = huggingface.load(base, **options)
    hf = based.module.model
    merged = merge(hf, cfg, tensors)
    huggingface.check_finite(hf, "merged model")
    based.provenance = {
        **based.provenance,
        "source": "lora",
        "base": based.provenance.get("path"),
        "path": str(folder),
        "lora": {"r": cfg["r"], "lora_alpha": cfg.get("lora_alpha", cfg["r"]), "use_rslora": bool(cfg.get("use_rslora")), "merged_modules": merged},
    }
    return based
