"""Model kinship: how alike two fine-tunes are, judged by their weight deltas.

Following ModelKinship (Hu et al., 2024, "Exploring Model Kinship for
Merging Large Language Models"): with a shared base model ``B`` and two
derived models ``A1, A2``, compare the deltas ``d1 = A1 - B`` and
``d2 = A2 - B`` with Pearson correlation, cosine similarity and Euclidean
distance, per tensor and over all tensors flattened together.  Comparing
deltas rather than raw weights removes the (huge) shared part that would
make any two relatives look identical.

Undefined values are NaN, not 0: the cosine of a zero delta and the Pearson
correlation of a constant delta have no meaning, and a fake 0 would read as
"unrelated".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class DeltaSimilarity:
    pearson: float
    cosine: float
    euclidean: float
    numel: int


@dataclass(frozen=True)
class LayerKinship:
    name: str
    similarity: DeltaSimilarity


@dataclass(frozen=True)
class KinshipResult:
    overall: DeltaSimilarity
    layers: list[LayerKinship]
    skipped: list[str]  # tensors left out (not floating point, or excluded)

    @property
    def pearson(self) -> float:
        return self.overall.pearson

    @property
    def cosine(self) -> float:
        return self.overall.cosine

    @property
    def euclidean(self) -> float:
        return self.overall.euclidean

    def layer(self, name: str) -> DeltaSimilarity:
        for entry in self.layers:
            if entry.name == name:
                return entry.similarity
        raise KeyError(name)


def _check_tensor(name: str, which: str, tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{which}[{name!r}] is a {type(tensor).__name__}, expected a torch.Tensor")
    return tensor


def weight_deltas(base: StateDict, derived: StateDict, *, keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """``derived - base`` per floating-point tensor, in float64.

    Raises ``ValueError`` with the offending name on missing keys, shape
    mismatches and non-finite values: comparing different architectures is
    a caller error, not a similarity of 0.
    """
    names = list(keys) if keys is not None else list(base.keys())
    missing = [k for k in names if k not in derived]
    if missing:
        raise ValueError(f"derived model lacks {len(missing)} tensor(s) of the base, e.g. {missing[0]!r}")
    extra = [k for k in derived if k not in base] if keys is None else []
    if extra:
        raise ValueError(f"derived model has {len(extra)} tensor(s) the base lacks, e.g. {extra[0]!r}")
    deltas = {}
    for name in names:
        b = _check_tensor(name, "base", base[name])
        d = _check_tensor(name, "derived", derived[name])
        if b.shape != d.shape:
            raise ValueError(f"shape mismatch for {name!r}: base {tuple(b.shape)} vs derived {tuple(d.shape)}")
        if not (b.is_floating_point() and d.is_floating_point()):
            continue
        delta = d.detach().to("cpu", torch.float64) - b.detach().to("cpu", torch.float64)
        if not torch.isfinite(delta).all():
            raise ValueError(f"non-finite weights in {name!r}")
        deltas[name] = delta.reshape(-1)
    return deltas


def delta_similarity(d1: torch.Tensor, d2: torch.Tensor) -> DeltaSimilarity:
    """Pearson, cosine and Euclidean distance between two flat delta vectors."""
    d1 = d1.reshape(-1).to(torch.float64)
    d2 = d2.reshape(-1).to(torch.float64)
    if d1.shape != d2.shape:
        raise ValueError(f"delta sizes differ: {d1.numel()} vs {d2.numel()}")
    euclidean = float(torch.linalg.vector_norm(d1 - d2))
    n1 = float(torch.linalg.vector_norm(d1))
    n2 = float(torch.linalg.vector_norm(d2))
    cosine = float(d1 @ d2) / (n1 * n2) if n1 > 0 and n2 > 0 else math.nan
    c1 = d1 - d1.mean()
    c2 = d2 - d2.mean()
    s1 = float(torch.linalg.vector_norm(c1))
    s2 = float(torch.linalg.vector_norm(c2))
    pearson = float(c1 @ c2) / (s1 * s2) if s1 > 0 and s2 > 0 else math.nan
    # Rounding can push |r| a hair above 1.
    if not math.isnan(cosine):
        cosine = max(-1.0, min(1.0, cosine))
    if not math.isnan(pearson):
        pearson = max(-1.0, min(1.0, pearson))
    return DeltaSimilarity(pearson=pearson, cosine=cosine, euclidean=euclidean, numel=d1.numel())


def delta_kinship(
    base: StateDict,
    model_a: StateDict,
    model_b: StateDict,
    *,
    include: Iterable[str] | None = None,
    on_layer: Callable[[LayerKinship, int, int], None] | None = None,
) -> KinshipResult:
    """Kinship of two models derived from ``base``: per tensor and overall.

    ``include`` restricts the comparison to the named tensors.  Non-float
    tensors (BatchNorm's ``num_batches_tracked``) are skipped and listed.
    ``on_layer(layer, index, total)`` hears of each tensor as it is compared.
    """
    keys = list(include) if include is not None else None
    deltas_a = weight_deltas(base, model_a, keys=keys)
    deltas_b = weight_deltas(base, model_b, keys=keys)
    names = [k for k in (keys if keys is not None else base.keys()) if k in deltas_a]
    skipped = [k for k in (keys if keys is not None else base.keys()) if k not in deltas_a]
    if not names:
        raise ValueError("no floating-point tensors to compare")
    layers = []
    for index, k in enumerate(names):
        layers.append(LayerKinship(k, delta_similarity(deltas_a[k], deltas_b[k])))
        if on_layer is not None:
            on_layer(layers[-1], index, len(names))
    overall = delta_similarity(torch.cat([deltas_a[k] for k in names]), torch.cat([deltas_b[k] for k in names]))
    return KinshipResult(overall=overall, layers=layers, skipped=skipped)
