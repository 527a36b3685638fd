"""One pass over the checkpoints: inner products of their weights, and per-model statistics.

Everything the recovery needs from the weights of many models at once
(distances, cosines of weight deltas, merge fits) is a function of the Gram
matrix ``G[i, j] = <w_i, w_j>`` of the flattened weights: ``|a - b|^2 =
G_aa + G_bb - 2 G_ab`` and ``<a - v, b - v> = G_ab - G_av - G_bv + G_vv``.
So models are read one at a time and only their Gram matrix is kept.

Small models are kept exactly.  Above ``sketch_dim`` parameters each model
is reduced to a count sketch (Charikar et al. 2002; "feature hashing",
Weinberger et al. 2009): every coordinate is added, with a random sign, to
one of ``sketch_dim`` buckets.  It is a sparse random projection, linear
(the sketch of a difference is the difference of sketches, so delta
geometry survives) and unbiased for inner products, with error about
``|x| |y| / sqrt(sketch_dim)``; it costs O(parameters) per model, reads
each model once, and holds ``models x sketch_dim`` numbers instead of
``models x parameters``.  The hash is drawn from a fixed seed per tensor
name, so every model is projected the same way.

Each tensor is centred on its own mean first: a LayerNorm gain of 1.0 is
not evidence that two models share an ancestor.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .weight_cues import ModelStats, model_stats

StateDict = Mapping[str, torch.Tensor]


def float_keys(state: StateDict) -> list[str]:
    return [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]


def architecture_signature(state: StateDict) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((k, tuple(state[k].shape)) for k in float_keys(state))


def centred_flat(state: StateDict, keys: list[str], name: str) -> np.ndarray:
    parts = []
    for k in keys:
        t = state[k].detach().to("cpu", torch.float64).reshape(-1)
        parts.append(t - t.mean())
    row = torch.cat(parts).numpy()
    if not np.isfinite(row).all():
        raise ValueError(f"{name!r} has non-finite weights")
    return row


def _count_sketch(row: np.ndarray, keys: list[str], sizes: list[int], dim: int, seed: int) -> np.ndarray:
    out = np.zeros(dim)
    start = 0
    for k, n in zip(keys, sizes):
        rng = np.random.default_rng([seed, zlib.crc32(k.encode())])
        bucket = rng.integers(0, dim, n)
        sign = rng.integers(0, 2, n) * 2.0 - 1.0
        out += np.bincount(bucket, weights=sign * row[start:start + n], minlength=dim)
        start += n
    return out


@dataclass
class WeightGram:
    """Gram matrix of one architecture's models (rows in ``names`` order) and their statistics."""

    names: list[str]
    keys: list[str]
    gram: np.ndarray
    stats: list[ModelStats]
    sketched: bool
    num_params: int

    def distances(self) -> np.ndarray:
        # From inner products, not scipy's pdist: the (possibly sketched) weight rows are not kept.
        d = np.diag(self.gram)
        d2 = np.maximum(d[:, None] + d[None, :] - 2.0 * self.gram, 0.0)
        D = np.sqrt(d2)
        np.fill_diagonal(D, 0.0)
        return (D + D.T) / 2.0

    def cosines(self) -> np.ndarray:
        d = np.sqrt(np.maximum(np.diag(self.gram), 1e-300))
        return self.gram / d[:, None] / d[None, :]


def weight_gram(checkpoints: Mapping[str, StateDict], names: list[str], *, sketch_dim: int | None = 1 << 14,
                seed: int = 0, on_progress: Callable[[int, int], None] | None = None) -> WeightGram:
    """Gram matrix of ``names`` (one architecture), exact or count-sketched, in one pass."""
    first = checkpoints[names[0]]
    keys = float_keys(first)
    if not keys:
        raise ValueError(f"{names[0]!r} has no floating-point tensors")
    signature = architecture_signature(first)
    sizes = [int(first[k].numel()) for k in keys]
    total = sum(sizes)
    sketched = sketch_dim is not None and total > sketch_dim
    rows, stats = [], []
    for i, name in enumerate(names):
        state = checkpoints[name]
        if architecture_signature(state) != signature:
            raise ValueError(f"{name!r} does not share the tensor names and shapes of {names[0]!r}")
        row = centred_flat(state, keys, name)
        stats.append(model_stats(state, keys))
        rows.append(_count_sketch(row, keys, sizes, sketch_dim, seed) if sketched else row)
        if on_progress is not None:
            on_progress(i + 1, len(names))
    X = np.stack(rows)
    gram = X @ X.T
    return WeightGram(list(names), keys, (gram + gram.T) / 2.0, stats, sketched, total)
