"""Architectures that Terrain can build from a JSON-able spec.

A *spec* is a plain dict with a ``"kind"`` key.  ``validate_spec`` checks it and
returns a normalised copy (defaults filled in); ``build`` turns it into an
``nn.Module`` whose ``state_dict`` keys depend only on the spec, so checkpoints,
landscapes and weight matching can rely on them.

Kinds
-----
``mlp``
    ``{"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10,
    "batchnorm": false, "activation": "relu", "bias": true}``.
    Modules ``fc0, bn0, act0, fc1, ..., out`` (``bnK`` only with batchnorm);
    the input is flattened from dimension 1 on.
``cnn``
    ``{"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [16, 32],
    "out": 10, "batchnorm": false, "kernel_size": 3, "activation": "relu",
    "pool": true}``.  Blocks ``convK`` (3x3, same padding), optional ``bnK``,
    activation, and a 2x2 max-pool while the image is at least 2 pixels wide;
    then ``flatten`` and a linear ``out``.  Flat inputs ``(N, C*H*W)`` are
    reshaped inside.
``transformer``
    ``{"kind": "transformer", "p": 113, "d_model": 128, "heads": 4,
    "layers": 1, "d_mlp": 512, "layernorm": false, "seq_len": 3}``.
    A small decoder-only transformer for modular arithmetic (Nanda et al.
    2023 style).  Tokens are ``0..p-1`` for numbers and ``p`` for "=";
    inputs are ``(N, 2)`` or ``(N, 3)`` integer tensors and the logits over
    ``p`` classes are read at the last position.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "SpecError",
    "KINDS",
    "LIMITS",
    "ACTIVATIONS",
    "validate_spec",
    "build",
    "count_parameters",
    "input_shape",
    "input_dtype",
    "output_size",
    "check_compatible",
    "parameter_shapes",
]


class SpecError(ValueError):
    """A spec is malformed; the message names the offending field."""


LIMITS = {
    "max_width": 4096,  # any hidden width, channel count, d_model, d_mlp, in/out size
    "max_layers": 8,  # hidden layers / conv blocks / transformer blocks
    "max_params": 20_000_000,
    "max_image_size": 256,
    "max_in_channels": 64,
    "max_p": 4096,
    "max_heads": 64,
    "max_seq_len": 16,
}

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [], "batchnorm": False, "activation": "relu", "bias": True},
    "cnn": {
        "in_channels": 1,
        "channels": [16, 32],
        "batchnorm": False,
        "activation": "relu",
        "kernel_size": 3,
        "pool": True,
    },
    "transformer": {
        "p": 113,
        "d_model": 128,
        "heads": 4,
        "layers": 1,
        "d_mlp": 512,
        "layernorm": False,
        "seq_len": 3,
    },
}
_REQUIRED = {
    "mlp": ("in", "out"),
    "cnn": ("image_size", "out"),
    "transformer": (),
}
KINDS = tuple(_DEFAULTS)
# Free-form, ignored by build(): lets callers label a spec without a SpecError.
_ANNOTATION_KEYS = ("name", "description")


# --------------------------------------------------------------------------- validation


def _int(spec: dict, key: str, lo: int, hi: int) -> int:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int):
        # JSON gives 64.0 sometimes; accept integral floats, reject the rest.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise SpecError(f"spec field {key!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise SpecError(f"spec field {key!r} must be between {lo} and {hi}, got {value}")
    return value


def _bool(spec: dict, key: str) -> bool:
    value = spec[key]
    if not isinstance(value, bool):
        raise SpecError(f"spec field {key!r} must be true or false, got {value!r}")
    return value


def _int_list(spec: dict, key: str, lo: int, hi: int, max_len: int, min_len: int = 0) -> list[int]:
    value = spec[key]
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"spec field {key!r} must be a list of integers, got {value!r}")
    if not min_len <= len(value) <= max_len:
        raise SpecError(f"spec field {key!r} must have between {min_len} and {max_len} entries, got {len(value)}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            raise SpecError(f"spec field {key!r}[{i}] must be an integer, got {item!r}")
        if not lo <= item <= hi:
            raise SpecError(f"spec field {key!r}[{i}] must be between {lo} and {hi}, got {item}")
        out.append(item)
    return out


def _activation(spec: dict) -> str:
    value = spec["activation"]
    if value not in ACTIVATIONS:
        raise SpecError(f"spec field 'activation' must be one of {sorted(ACTIVATIONS)}, got {value!r}")
    return value


def validate_spec(spec: Any) -> dict:
    """Check ``spec`` and return a normalised deep copy with defaults filled in.

    Raises :class:`SpecError` naming the bad field: unknown kind, missing or
    unknown fields, wrong types, sizes outside :data:`LIMITS`, or more than
    ``LIMITS["max_params"]`` parameters in total.
    """
    if not isinstance(spec, dict):
        raise SpecError(f"spec must be a JSON object (dict), got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _DEFAULTS:
        raise SpecError(f"spec field 'kind' must be one of {list(KINDS)}, got {kind!r}")
    out: dict[str, Any] = copy.deepcopy(_DEFAULTS[kind])
    for key in _REQUIRED[kind]:
        if key not in spec:
            raise SpecError(f"spec field {key!r} is required for kind {kind!r}")
    allowed = set(_DEFAULTS[kind]) | set(_REQUIRED[kind]) | {"kind"} | set(_ANNOTATION_KEYS)
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SpecError(f"spec field {unknown[0]!r} is not understood for kind {kind!r} (allowed: {sorted(allowed)})")
    out.update(copy.deepcopy(spec))
    for key in _ANNOTATION_KEYS:
        if key in out and not isinstance(out[key], str):
            raise SpecError(f"spec field {key!r} must be a string")

    W, L = LIMITS["max_width"], LIMITS["max_layers"]
    if kind == "mlp":
        out["in"] = _int(out, "in", 1, W * 4)  # flattened images may be wider than a hidden layer
        out["out"] = _int(out, "out", 1, W)
        out["hidden"] = _int_list(out, "hidden", 1, W, L)
        out["batchnorm"] = _bool(out, "batchnorm")
        out["bias"] = _bool(out, "bias")
        out["activation"] = _activation(out)
    elif kind == "cnn":
        out["in_channels"] = _int(out, "in_channels", 1, LIMITS["max_in_channels"])
        out["image_size"] = _int(out, "image_size", 1, LIMITS["max_image_size"])
        out["out"] = _int(out, "out", 1, W)
        out["channels"] = _int_list(out, "channels", 1, W, L, min_len=1)
        out["batchnorm"] = _bool(out, "batchnorm")
        out["pool"] = _bool(out, "pool")
        out["activation"] = _activation(out)
        out["kernel_size"] = _int(out, "kernel_size", 1, 7)
        if out["kernel_size"] % 2 == 0:
            raise SpecError("spec field 'kernel_size' must be odd (same padding)")
    else:
        out["p"] = _int(out, "p", 2, LIMITS["max_p"])
        out["d_model"] = _int(out, "d_model", 1, W)
        out["heads"] = _int(out, "heads", 1, LIMITS["max_heads"])
        out["layers"] = _int(out, "layers", 1, L)
        out["d_mlp"] = _int(out, "d_mlp", 1, W)
        out["layernorm"] = _bool(out, "layernorm")
        out["seq_len"] = _int(out, "seq_len", 2, LIMITS["max_seq_len"])
        if out["d_model"] % out["heads"]:
            raise SpecError(
                f"spec field 'heads' must divide 'd_model' ({out['d_model']} is not divisible by {out['heads']})"
            )

    n = count_parameters(out, _validated=True)
    if n > LIMITS["max_params"]:
        raise SpecError(f"spec has {n:,} parameters, more than the limit of {LIMITS['max_params']:,}")
    return out


def count_parameters(spec: dict, *, _validated: bool = False) -> int:
    """Number of trainable parameters ``build(spec)`` would have (computed, not built)."""
    s = spec if _validated else validate_spec(spec)
    kind = s["kind"]
    if kind == "mlp":
        sizes = [s["in"], *s["hidden"], s["out"]]
        n = 0
        for i in range(len(sizes) - 1):
            n += sizes[i] * sizes[i + 1] + (sizes[i + 1] if s["bias"] else 0)
            if s["batchnorm"] and i < len(sizes) - 2:
                n += 2 * sizes[i + 1]
        return n
    if kind == "cnn":
        k, c_in, size = s["kernel_size"], s["in_channels"], s["image_size"]
        n = 0
        for c in s["channels"]:
            n += c * c_in * k * k + c
            if s["batchnorm"]:
                n += 2 * c
            c_in = c
            if s["pool"] and size >= 2:
                size //= 2
        return n + c_in * size * size * s["out"] + s["out"]
    d, m, p, T = s["d_model"], s["d_mlp"], s["p"], s["seq_len"]
    per_block = 4 * d * d + 4 * d + 2 * d * m + m + d
    if s["layernorm"]:
        per_block += 4 * d
    n = (p + 1) * d + T * d + s["layers"] * per_block + d * p + p
    if s["layernorm"]:
        n += 2 * d
    return n


# --------------------------------------------------------------------------- modules


class _ToImage(nn.Module):
    """Reshape flat ``(N, C*H*W)`` inputs to ``(N, C, H, W)``; pass images through."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.shape = (channels, size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.reshape(x.shape[0], *self.shape)
        return x

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class _Attention(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)
        q = q.reshape(n, t, h, d // h).transpose(1, 2)
        k = k.reshape(n, t, h, d // h).transpose(1, 2)
        v = v.reshape(n, t, h, d // h).transpose(1, 2)
        # Written out (not scaled_dot_product_attention) so double backward and
        # torch.func transforms work on every backend.
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        out = scores.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, t, d))


class _MLPBlock(nn.Module):
    def __init__(self, d_model: int, d_mlp: int):
        super().__init__()
        self.fc_in = nn.Linear(d_model, d_mlp)
        self.fc_out = nn.Linear(d_mlp, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.relu(self.fc_in(x)))


class _Block(nn.Module):
    def __init__(self, d_model: int, heads: int, d_mlp: int, layernorm: bool):
        super().__init__()
        self.ln_attn = nn.LayerNorm(d_model) if layernorm else nn.Identity()
        self.attn = _Attention(d_model, heads)
        self.ln_mlp = nn.LayerNorm(d_model) if layernorm else nn.Identity()
        self.mlp = _MLPBlock(d_model, d_mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.mlp(self.ln_mlp(x))


class ModularTransformer(nn.Module):
    """Decoder-only transformer predicting ``(a + b) mod p`` at the last position."""

    def __init__(self, p: int, d_model: int, heads: int, layers: int, d_mlp: int, layernorm: bool, seq_len: int):
        super().__init__()
        self.p = p
        self.embed = nn.Embedding(p + 1, d_model)  # token p is "="
        self.pos_embed = nn.Parameter(torch.randn(seq_len, d_model) * 0.02)
        self.blocks = nn.ModuleList(_Block(d_model, heads, d_mlp, layernorm) for _ in range(layers))
        self.ln_final = nn.LayerNorm(d_model) if layernorm else nn.Identity()
        self.unembed = nn.Linear(d_model, p)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"transformer input must be (N, T) integer tokens, got shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.pos_embed.shape[0]:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds seq_len {self.pos_embed.shape[0]}")
        x = self.embed(tokens.long()) + self.pos_embed[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x[:, -1]))


def build(spec: dict) -> nn.Module:
    """Build the module described by ``spec`` (validated first).

    Initialisation uses the global torch RNG; seed it (or use
    ``torch.random.fork_rng``) for reproducible weights.  The returned module
    carries the normalised spec as ``module.terrain_spec``.
    """
    s = validate_spec(spec)
    kind = s["kind"]
    if kind == "mlp":
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten(1))]
        width = s["in"]
        for i, h in enumerate(s["hidden"]):
            layers.append((f"fc{i}", nn.Linear(width, h, bias=s["bias"])))
            if s["batchnorm"]:
                layers.append((f"bn{i}", nn.BatchNorm1d(h)))
            layers.append((f"act{i}", ACTIVATIONS[s["activation"]]()))
            width = h
        layers.append(("out", nn.Linear(width, s["out"], bias=s["bias"])))
        model: nn.Module = nn.Sequential(OrderedDict(layers))
    elif kind == "cnn":
        layers = [("reshape", _ToImage(s["in_channels"], s["image_size"]))]
        c_in, size, k = s["in_channels"], s["image_size"], s["kernel_size"]
        for i, c in enumerate(s["channels"]):
            layers.append((f"conv{i}", nn.Conv2d(c_in, c, k, padding=k // 2)))
            if s["batchnorm"]:
                layers.append((f"bn{i}", nn.BatchNorm2d(c)))
            layers.append((f"act{i}", ACTIVATIONS[s["activation"]]()))
            if s["pool"] and size >= 2:
                layers.append((f"pool{i}", nn.MaxPool2d(2)))
                size //= 2
            c_in = c
        layers.append(("flatten", nn.Flatten(1)))
        layers.append(("out", nn.Linear(c_in * size * size, s["out"])))
        model = nn.Sequential(OrderedDict(layers))
    else:
        model = ModularTransformer(
            s["p"], s["d_model"], s["heads"], s["layers"], s["d_mlp"], s["layernorm"], s["seq_len"]
        )
    model.terrain_spec = s
    return model


def parameter_shapes(spec: dict) -> dict[str, tuple[int, ...]]:
    """``state_dict`` key -> shape for ``build(spec)``, without allocating weights."""
    with torch.device("meta"):
        model = build(spec)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- data compatibility


def input_shape(spec: dict) -> tuple[int, ...]:
    """Shape of one input example the model accepts (flat form for mlp/cnn)."""
    s = validate_spec(spec)
    if s["kind"] == "mlp":
        return (s["in"],)
    if s["kind"] == "cnn":
        return (s["in_channels"] * s["image_size"] ** 2,)
    return (s["seq_len"],)


def input_dtype(spec: dict) -> str:
    return "int64" if validate_spec(spec)["kind"] == "transformer" else "float32"


def output_size(spec: dict) -> int:
    s = validate_spec(spec)
    return s["p"] if s["kind"] == "transformer" else s["out"]


def check_compatible(spec: dict, description: dict) -> None:
    """Raise :class:`SpecError` if ``spec`` cannot be trained on a dataset.

    ``description`` is what :func:`analysis.data.describe` returns.
    """
    s = validate_spec(spec)
    shape = tuple(description["input_shape"])
    flat = math.prod(shape)
    if s["kind"] == "transformer":
        if description.get("input_dtype") != "int64":
            raise SpecError("a transformer needs integer token inputs (e.g. the modular-addition dataset)")
        if len(shape) != 1 or not 2 <= shape[0] <= s["seq_len"]:
            raise SpecError(f"spec field 'seq_len' ({s['seq_len']}) does not fit input sequences of shape {shape}")
        vocab = description.get("vocab_size")
        if vocab is not None and vocab > s["p"] + 1:
            raise SpecError(f"spec field 'p' ({s['p']}) is too small for a vocabulary of {vocab} tokens")
    else:
        want = input_shape(s)[0]
        if flat != want:
            field = "in" if s["kind"] == "mlp" else "in_channels/image_size"
            raise SpecError(f"spec field {field!r} expects {want} input features but the data has {flat} {shape}")
    out = output_size(s)
    if description["task"] == "classification":
        if description["num_classes"] > out:
            raise SpecError(f"spec field 'out' ({out}) is smaller than the number of classes ({description['num_classes']})")
    else:
        if description.get("output_dim") != out:
            raise SpecError(f"spec field 'out' ({out}) must equal the regression target size ({description.get('output_dim')})")
