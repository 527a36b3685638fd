"""Hugging Face model folders (``config.json`` + safetensors) as a :class:`LoadedModel`.

Safety, in the order the checks run (nothing is instantiated before all of
them pass): the folder holds safetensors weights (pickles such as
``pytorch_model.bin`` are refused, never opened); ``model_type`` is on an
allow-list of architectures that ship inside ``transformers`` (so no
``auto_map``/remote code is ever followed); the config's sizes are bounded
and the parameter count is computed on the meta device (no memory); every
tensor in the safetensors headers has the shape the config implies.  Only
then ``from_pretrained`` runs with ``local_files_only=True``,
``use_safetensors=True``, ``trust_remote_code=False`` and eager attention
(fused attention has no double backward on the CPU), and the weights are
checked for NaN/Inf.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a missing local path must never become a Hub download

import torch
from torch import nn

from ..bounded_json import loads as bounded_json_loads
from .base import (
    LoadedModel,
    SourceError,
    causal_lm_accuracy,
    causal_lm_loss,
    classification_accuracy,
    classification_loss,
    masked_lm_accuracy,
    masked_lm_loss,
)

__all__ = [
    "ALLOWED_MODEL_TYPES", "HEADS", "DEFAULT_MAX_PARAMETERS", "HFAdapter", "is_folder", "read_config", "read_json",
    "max_parameters_from_environment", "load",
]

TEXT_DECODERS = {"gpt2", "gpt_neox", "llama"}
TEXT_ENCODERS = {"bert", "roberta", "distilbert"}
VISION = {"vit", "resnet", "convnext"}
ALLOWED_MODEL_TYPES = TEXT_DECODERS | TEXT_ENCODERS | VISION
HEADS = ("causal-lm", "masked-lm", "sequence-classification", "image-classification")
HEADS_FOR = {
    **{t: ("causal-lm", "sequence-classification") for t in TEXT_DECODERS},
    **{t: ("masked-lm", "sequence-classification") for t in TEXT_ENCODERS},
    **{t: ("image-classification",) for t in VISION},
}
# on the user's own machine (the CLI, a notebook) the models researchers study load: GPT-2 124M, BERT-base,
# ViT-B; a shared web server defaults lower (webapp/settings.py, 30M); both read MAX_PARAMETERS_VARIABLE
DEFAULT_MAX_PARAMETERS = 200_000_000
MAX_PARAMETERS_VARIABLE = "TERRAIN_MAX_MODEL_PARAMETERS"
MAX_CONFIG_BYTES = 1_000_000
# sizes bounded before anything is built, so even the meta-device count stays instant
CONFIG_BOUNDS = {
    "num_hidden_layers": 512, "n_layer": 512, "n_layers": 512,
    "hidden_size": 65_536, "n_embd": 65_536, "dim": 65_536, "intermediate_size": 262_144,
    "vocab_size": 1_000_000, "num_attention_heads": 1024, "max_position_embeddings": 1_048_576,
    "n_positions": 1_048_576, "num_labels": 100_000, "image_size": 4096,
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".pt2")
SAFE_EXPORT = "save it with model.save_pretrained(folder, safe_serialization=True) and upload config.json with model.safetensors"


def _head_of_architecture(name: str) -> str | None:
    for suffix, head in (
        ("ForCausalLM", "causal-lm"), ("LMHeadModel", "causal-lm"), ("ForMaskedLM", "masked-lm"),
        ("ForSequenceClassification", "sequence-classification"), ("ForImageClassification", "image-classification"),
    ):
        if name.endswith(suffix):
            return head
    return None


def _auto_class(head: str):
    import transformers

    return {
        "causal-lm": transformers.AutoModelForCausalLM,
        "masked-lm": transformers.AutoModelForMaskedLM,
        "sequence-classification": transformers.AutoModelForSequenceClassification,
        "image-classification": transformers.AutoModelForImageClassification,
    }[head]


def is_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def max_parameters_from_environment() -> int:
    """The parameter limit: ``TERRAIN_MAX_MODEL_PARAMETERS`` if set, else :data:`DEFAULT_MAX_PARAMETERS`."""
    text = os.environ.get(MAX_PARAMETERS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PARAMETERS
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise SourceError(f"{MAX_PARAMETERS_VARIABLE} must be a positive whole number, got {text!r}")
    return limit


def read_json(f: Path, *, max_bytes: int = MAX_CONFIG_BYTES):
    """A JSON file of the folder, bounded in size and nesting; refusals name the file."""
    if f.stat().st_size > max_bytes:
        raise SourceError(f"{f.name}: larger than {max_bytes} bytes")
    try:
        return bounded_json_loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:  # json.JSONDecodeError and too deep nesting are ValueErrors
        raise SourceError(f"{f.name}: not valid JSON ({e})") from None


def read_config(folder: Path) -> dict:
    """``config.json`` as a dict, after the model_type / remote-code / size checks."""
    f = folder / "config.json"
    if not f.is_file():
        raise SourceError(f"{folder.name}: no config.json; {SAFE_EXPORT}")
    cfg = read_json(f)
    if not isinstance(cfg, dict):
        raise SourceError("config.json: must be a JSON object")
    mt = cfg.get("model_type")
    if mt not in ALLOWED_MODEL_TYPES:
        extra = " and asks for custom code (auto_map), which Terrain never runs" if "auto_map" in cfg else ""
        raise SourceError(
            f"config.json: model_type {mt!r} is not supported{extra}; accepted: {', '.join(sorted(ALLOWED_MODEL_TYPES))}. "
            "Export a model of one of these architectures with save_pretrained(..., safe_serialization=True), "
            "or export any model with torch.onnx.export(...) for lines and planes"
        )
    for key, bound in CONFIG_BOUNDS.items():
        v = cfg.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= bound:
            raise SourceError(f"config.json: {key} = {v!r} is outside 1..{bound}")
    return cfg


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors files of the folder (one file or the shards of an index); pickles refused."""
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        document = read_json(index)
        if not isinstance(document, dict) or "weight_map" not in document:
            raise SourceError("model.safetensors.index.json: not a valid index (needs a weight_map)")
        weight_map = document["weight_map"]
        names = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        files = []
        for n in names:
            if not isinstance(n, str) or Path(n).name != n or not n.endswith(".safetensors"):
                raise SourceError(f"model.safetensors.index.json: shard {n!r} must be a .safetensors file in the same folder")
            if not (folder / n).is_file():
                raise SourceError(f"model.safetensors.index.json: shard {n} is missing")
            files.append(folder / n)
        if not files:
            raise SourceError("model.safetensors.index.json: the weight_map is empty")
        return files
    pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise SourceError(
            f"{', '.join(pickles)}: pickled weights are never opened (loading a pickle can run code); {SAFE_EXPORT}"
        )
    raise SourceError(f"{folder.name}: no model.safetensors; {SAFE_EXPORT}")


def _header_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as sf:
                for k in sf.keys():
                    shapes[k] = tuple(sf.get_slice(k).get_shape())
        except Exception as e:  # the safetensors library reports corrupt headers as assorted errors
            raise SourceError(f"{f.name}: not a valid safetensors file ({e})") from None
    return shapes


def _check_num_labels(num_labels, head: str, model_type: str) -> None:
    if num_labels is None:
        return
    if not head.endswith("classification"):
        classifiers = [h for h in HEADS_FOR[model_type] if h.endswith("classification")]
        raise SourceError(
            f"num_labels (--num-labels): only a classification head has classes; the head here is {head} "
            f"(choose head {' or '.join(classifiers)}, or leave num_labels out)",
            field="num_labels",
        )
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or not 2 <= num_labels <= CONFIG_BOUNDS["num_labels"]:
        raise SourceError(
            f"num_labels (--num-labels) must be a whole number of classes in 2..{CONFIG_BOUNDS['num_labels']}, got {num_labels!r}",
            field="num_labels",
        )


def _config_error(cfg: dict, error: Exception) -> SourceError:
    """transformers' own complaint about a config value, as a refusal naming config.json and, where it can, the field."""
    detail = " ".join(line.strip() for line in str(error).splitlines())[:300]
    field = None
    if isinstance(error, KeyError) and error.args:  # e.g. an activation name looked up in a table
        field = next((k for k, v in cfg.items() if isinstance(v, str) and v == error.args[0]), None)
    if field is None:  # validation errors quote the field: "Validation error for field 'layer_norm_epsilon'"
        field = next((k for k in cfg if f"'{k}'" in detail or f"`{k}`" in detail), None)
    where = f"config.json: {field} = {cfg[field]!r} is not accepted" if field else "config.json: transformers cannot build the model"
    return SourceError(f"{where} ({type(error).__name__}: {detail})")


def _config_object(cfg: dict, head: str, num_labels: int | None):
    from transformers import CONFIG_MAPPING

    cfg = {k: v for k, v in cfg.items() if k != "auto_map"}
    try:
        config = CONFIG_MAPPING[cfg["model_type"]].from_dict(cfg)
    except Exception as e:  # transformers validates values with assorted exception types
        raise _config_error(cfg, e) from None
    if num_labels is not None:
        config.num_labels = num_labels
    if head == "sequence-classification" and config.pad_token_id is None:
        config.pad_token_id = getattr(config, "eos_token_id", None) or 0
    config.use_cache = False
    return config


def _meta_model(config, head: str, cfg: dict) -> nn.Module:
    try:
        with torch.device("meta"):
            return _auto_class(head).from_config(config, attn_implementation="eager")
    except Exception as e:  # e.g. an unknown activation name (KeyError) or heads that do not divide the width
        raise _config_error(cfg, e) from None


def _is_head_tensor(name: str, prefix: str, head: str) -> bool:
    """Tensors of the head rather than the base model: outside the base prefix, plus BERT's pooler for a classifier
    (BertForMaskedLM is saved without it; only the classification head uses it)."""
    if not prefix or not name.startswith(prefix + "."):
        return True
    return head == "sequence-classification" and name.startswith(f"{prefix}.pooler.")


def _check_against_config(
    meta: nn.Module, shapes: dict[str, tuple[int, ...]], files: list[Path], head: str, num_labels: int | None
) -> tuple[str, list[str]]:
    """Every stored tensor the model has must have the model's shape.  Returns where the weights are and the head
    tensors to replace: with ``num_labels`` asked for, a stored classifier of another size is re-initialised."""
    expected = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
    prefix = getattr(meta, "base_model_prefix", "")
    if prefix and not any(k.startswith(prefix + ".") for k in shapes):
        shapes = {f"{prefix}.{k}": s for k, s in shapes.items()}  # a bare base model under a head
    where = files[0].name if len(files) == 1 else "model.safetensors shards"
    replaced = []
    for k, s in shapes.items():
        if k in expected and expected[k] != s:
            if num_labels is not None and _is_head_tensor(k, prefix, head):
                replaced.append(k)  # the checkpoint's classifier has another number of classes than asked for
                continue
            raise SourceError(f"{where}: tensor {k} has shape {list(s)} but config.json implies {list(expected[k])}")
    # names transformers renames on load (legacy checkpoints) are checked by from_pretrained itself
    return where, sorted(replaced)


def _check_loading_info(model: nn.Module, info: dict, where: str, head: str, replaced: list[str]) -> list[str]:
    """Refuse mismatched shapes and a base model with holes; return the head tensors that were initialised."""
    mismatched = [k for k in info.get("mismatched_keys") or [] if (k[0] if isinstance(k, (tuple, list)) else k) not in replaced]
    if mismatched:
        k = mismatched[0]
        name, got, want = (k if isinstance(k, (tuple, list)) and len(k) == 3 else (k, "?", "?"))
        raise SourceError(f"{where}: tensor {name} has shape {list(got)} but config.json implies {list(want)}")
    prefix = getattr(model, "base_model_prefix", "")
    missing = sorted(info.get("missing_keys") or [])
    base_missing = [k for k in missing if not _is_head_tensor(k, prefix, head)]
    if base_missing:
        raise SourceError(f"{where}: missing {len(base_missing)} tensors of the model, e.g. {base_missing[:3]}")
    return sorted({*missing, *replaced})


class HFAdapter(nn.Module):
    """One plain tensor in, logits out: token ids ``(N, T)`` or pixels ``(N, C, H, W)``.

    For encoders with a pad token, padding is masked out of attention from
    the ids themselves; decoders need no mask (right padding cannot affect
    earlier positions, and padded labels are ``-100``).
    """

    def __init__(self, model: nn.Module, input_kind: str, pad_token_id: int | None = None):
        super().__init__()
        self.model = model
        self.input_kind = input_kind
        self.pad_token_id = pad_token_id

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.input_kind == "images":
            return self.model(pixel_values=X).logits
        kwargs = {"input_ids": X}
        if self.pad_token_id is not None:
            kwargs["attention_mask"] = (X != self.pad_token_id).long()
        return self.model(**kwargs).logits


LOSSES = {
    "causal-lm": (causal_lm_loss, causal_lm_accuracy),
    "masked-lm": (masked_lm_loss, masked_lm_accuracy),
    "sequence-classification": (classification_loss, classification_accuracy),
    "image-classification": (classification_loss, classification_accuracy),
}


def wrap(model: nn.Module, head: str, provenance: dict) -> LoadedModel:
    mt = model.config.model_type
    kind = "images" if mt in VISION else "tokens"
    pad = model.config.pad_token_id if mt in TEXT_ENCODERS else None
    loss_fn, acc_fn = LOSSES[head]
    module = HFAdapter(model.eval(), kind, pad).eval()
    return LoadedModel(module=module, loss_fn=loss_fn, accuracy_fn=acc_fn, input_kind=kind, provenance=provenance)


def check_finite(module: nn.Module, where: str) -> None:
    for n, p in module.state_dict().items():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise SourceError(f"{where}: tensor {n} holds NaN or Inf values")


def load(
    path: str | os.PathLike,
    *,
    head: str | None = None,
    num_labels: int | None = None,
    max_parameters: int | None = None,
    seed: int = 0,
) -> LoadedModel:
    """Load a Hugging Face folder.  ``head`` overrides the one named in ``architectures``;
    a head the weights lack (e.g. a classifier on a bare ``BertModel``, with BERT's pooler) is initialised
    from ``seed``, and so is a stored classifier whose number of classes differs from ``num_labels``.
    ``max_parameters`` defaults to :func:`max_parameters_from_environment`."""
    if max_parameters is None:
        max_parameters = max_parameters_from_environment()
    folder = Path(path).resolve()
    cfg = read_config(folder)
    mt = cfg["model_type"]
    if head is None:
        archs = cfg.get("architectures") or []
        head = next((h for h in map(_head_of_architecture, archs) if h), None) or HEADS_FOR[mt][0]
    if head not in HEADS_FOR[mt]:
        raise SourceError(f"head: {head!r} is not available for {mt}; choose one of {list(HEADS_FOR[mt])}", field="head")
    _check_num_labels(num_labels, head, mt)
    files = _weight_files(folder)
    if (folder / "generation_config.json").is_file():  # from_pretrained reads it for generative heads
        read_json(folder / "generation_config.json")
    config = _config_object(cfg, head, num_labels)
    meta = _meta_model(config, head, cfg)
    count = sum(p.numel() for p in meta.parameters())
    if count > max_parameters:
        raise SourceError(
            f"config.json: the model has {count:,} parameters, above this worker's limit of {max_parameters:,} "
            f"(raise {MAX_PARAMETERS_VARIABLE} on the worker to allow it)"
        )
    where, replaced = _check_against_config(meta, _header_shapes(files), files, head, num_labels)
    del meta
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model, info = _auto_class(head).from_pretrained(
                str(folder),
                config=config,
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=False,
                attn_implementation="eager",
                dtype=torch.float32,
                output_loading_info=True,
                ignore_mismatched_sizes=bool(replaced),  # only head tensors, checked above
            )
        except (RuntimeError, ValueError, OSError) as e:  # size mismatches, unreadable shards
            raise SourceError(f"{where}: the weights do not fit config.json ({str(e).splitlines()[0][:300]})") from None
    initialised = _check_loading_info(model, info, where, head, replaced)
    check_finite(model, where)
    provenance = {
        "source": "huggingface",
        "architecture": type(model).__name__,
        "model_type": mt,
        "head": head,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "path": str(folder),
        **({"initialised_head": initialised, "head_seed": seed} if initialised else {}),
    }
    return wrap(model, head, provenance)
