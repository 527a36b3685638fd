"""The merge methods by name, with their knobs: what the CLI, the sweep and the web job call.

Each method is ``prepare(base, models, spec, params) -> merged(knob_value)``:
the expensive part that does not depend on the swept knob (task vectors,
TIES election, DARE masks, weight matching, Procrustes rotations) is done once,
so a sweep over the main knob costs one cheap combination per point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from . import aligned, average, dare, orthogonal, task_arithmetic, ties
from .state_dicts import StateDict, add_scaled, task_vectors

__all__ = ["Knob", "MergeMethod", "METHODS", "get_method", "merge", "alpha_weights"]

Merged = Callable[[float], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Knob:
    name: str
    label: str
    default: float
    low: float
    high: float


@dataclass(frozen=True)
class MergeMethod:
    name: str
    label: str
    citation: str
    needs_base: bool
    knob: Knob  # the main knob: what a sweep varies
    prepare: Callable[..., Merged]
    extra_knobs: tuple[Knob, ...] = ()
    needs_permutation_spec: bool = False


def alpha_weights(alpha: float, n: int) -> list[float]:
    """``1 - alpha`` on the first model, ``alpha`` shared by the rest (two models: the straight path)."""
    if n == 1:
        return [1.0]
    return [1.0 - alpha] + [alpha / (n - 1)] * (n - 1)


def _average(base, models, spec, params) -> Merged:
    return lambda alpha: average.weighted_average(models, alpha_weights(alpha, len(models)))


def _aligned(base, models, spec, params) -> Merged:
    if spec is None:
        raise ValueError("aligned averaging needs the architecture spec (its permutation structure)")
    result = aligned.aligned_average(models, spec, reference=int(params.get("reference", 0)), seed=int(params.get("seed", 0)))
    return lambda alpha: average.weighted_average(result.aligned, alpha_weights(alpha, len(models)))


def _task_arithmetic(base, models, spec, params) -> Merged:
    summed = task_arithmetic.summed_task_vector(base, models)
    return lambda lam: add_scaled(base, summed, lam)


def _ties(base, models, spec, params) -> Merged:
    vectors = task_vectors(base, models)
    lam = float(params.get("lam", 1.0))
    return lambda density: add_scaled(base, ties.ties_combine(vectors, density), lam)


def _dare(base, models, spec, params) -> Merged:
    merged_vector = dare.dare_merge(
        base, models, p=float(params.get("p", 0.5)), lam=1.0, seed=int(params.get("seed", 0)),
        combine=str(params.get("combine", "task_arithmetic")), density=float(params.get("density", 1.0)),
    )
    delta = {k: merged_vector[k].double() - base[k].double() for k in merged_vector if torch.is_floating_point(base[k])}
    return lambda lam: add_scaled(base, delta, lam)


def _orthogonal(base, models, spec, params) -> Merged:
    parts = orthogonal.orthogonal_parts(base, models)
    return lambda lam: orthogonal.orthogonal_combine(parts, lam)


LAMBDA = Knob("lam", "lambda (scale of the summed task vectors)", 1.0, 0.0, 2.0)
METHODS: dict[str, MergeMethod] = {
    m.name: m
    for m in (
        MergeMethod("average", "weighted average", "Wortsman et al. 2022 (model soups)", False,
                    Knob("alpha", "alpha (weight of the models after the first)", 0.5, 0.0, 1.0), _average),
        MergeMethod("aligned", "permutation-aligned average", "Ainsworth et al. 2023 (Git Re-Basin)", False,
                    Knob("alpha", "alpha (weight of the models after the first)", 0.5, 0.0, 1.0), _aligned,
                    needs_permutation_spec=True),
        MergeMethod("task_arithmetic", "task arithmetic", "Ilharco et al. 2023", True, LAMBDA, _task_arithmetic),
        MergeMethod("ties", "TIES", "Yadav et al. 2023", True,
                    Knob("density", "density (fraction of each task vector kept)", 0.2, 0.01, 1.0), _ties,
                    extra_knobs=(LAMBDA,)),
        MergeMethod("dare", "DARE (then task arithmetic)", "Yu et al. 2024", True, LAMBDA, _dare,
                    extra_knobs=(Knob("p", "p (drop probability)", 0.5, 0.0, 0.99),)),
        MergeMethod("orthogonal", "orthogonal-residual (OrthoMerge-style)", "OrthoMerge 2025; Schönemann 1966", True,
                    Knob("lam", "lambda (scale on the Lie algebra and the residual)", 0.5, 0.0, 2.0), _orthogonal),
    )
}


def get_method(name: str) -> MergeMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown merge method {name!r}; choose one of {sorted(METHODS)}") from None


def prepare(
    method: str, *, base: StateDict | None, models: Sequence[StateDict], spec: dict | None = None, params: Mapping | None = None
) -> Merged:
    m = get_method(method)
    if not models:
        raise ValueError("no models to merge")
    if m.needs_base and base is None:
        raise ValueError(f"{m.label} needs a base model")
    return m.prepare(base, list(models), spec, dict(params or {}))


def merge(
    method: str, *, base: StateDict | None = None, models: Sequence[StateDict], spec: dict | None = None, **params
) -> dict[str, torch.Tensor]:
    """One merged state dict; the main knob comes from ``params`` (or its default)."""
    m = get_method(method)
    value = float(params.pop(m.knob.name, m.knob.default))
    return prepare(method, base=base, models=models, spec=spec, params=params)(value)
