"""Trait drift along lineage edges.

For a categorical trait (license, language, task, library) we count
parent -> child value transitions and the fraction of edges that change the
value, per generation: an edge's generation is its parent's generation, so
"generation 0" means edges leaving the roots.  For a numeric trait (card
length, downloads, ``metrics.<name>``) we summarise child - parent along edges.

Edges where either end lacks the trait are skipped and counted, never guessed:
placeholders and sparse metadata are the norm in Hub data.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..json_safe import finite_or_none
from .graph import Family, FamilyStats, LineageGraph

CATEGORICAL_TRAITS = ("license", "language", "task", "library")
NUMERIC_TRAITS = ("card_length", "downloads", "likes")


@dataclass(frozen=True)
class GenerationRate:
    generation: int
    edges: int  # edges with the trait known on both ends
    changed: int

    @property
    def rate(self) -> float:
        return self.changed / self.edges if self.edges else math.nan


@dataclass
class CategoricalDrift:
    trait: str
    transitions: dict[tuple[str, str], int]  # (parent value, child value) -> edges
    by_generation: list[GenerationRate]
    edges_compared: int
    edges_changed: int
    edges_missing: int  # trait unknown on at least one end

    @property
    def change_rate(self) -> float:
        return self.edges_changed / self.edges_compared if self.edges_compared else math.nan

    def top_transitions(self, k: int = 10, *, changes_only: bool = True) -> list[tuple[tuple[str, str], int]]:
        items = [(t, c) for t, c in self.transitions.items() if not changes_only or t[0] != t[1]]
        return sorted(items, key=lambda tc: (-tc[1], tc[0]))[:k]


@dataclass(frozen=True)
class NumericGeneration:
    generation: int
    edges: int
    mean_change: float
    std_change: float


@dataclass
class NumericDrift:
    trait: str
    edges_compared: int
    edges_missing: int
    mean_change: float  # mean of child - parent
    std_change: float  # population std of child - parent
    mean_abs_change: float
    mean_relative_change: float  # mean of (child - parent) / |parent|, parents != 0
    by_generation: list[NumericGeneration]


def trait_value(attrs: dict[str, Any], trait: str) -> Any:
    """Look up ``trait``; a dotted name walks into dicts (``metrics.accuracy``)."""
    if trait in attrs:
        return attrs[trait]
    value: Any = attrs
    for part in trait.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _categorical(value: Any) -> str | None:
    # Multi-valued traits (languages) compare as sets: ["fr", "en"] == ["en", "fr"].
    if value is None:
        return None
    if isinstance(value, (list, tuple, set)):
        parts = sorted({str(v).strip().lower() for v in value if str(v).strip()})
        return ",".join(parts) if parts else None
    text = str(value).strip().lower()
    return text or None


def _numeric(value: Any) -> float | None:
    """A trait's number; card values may be numbers written as text ("0.5")."""
    try:
        return finite_or_none(float(value) if isinstance(value, str) else value)
    except (TypeError, ValueError):  # text that is no number, a list, a dict
        return None


def _edges_with_generation(graph: LineageGraph, nodes: Iterable[str] | None, relations: Collection[str] | None):
    members = list(graph.node_ids() if nodes is None else (nodes.nodes if isinstance(nodes, Family) else nodes))
    member_set = set(members)
    generation = graph.generations(members)
    for child in members:
        for parent in graph.parents(child):
            if parent not in member_set:
                continue
            edge = graph.edge(parent, child)
            if relations is not None and edge is not None and edge.relation not in relations:
                continue
            yield parent, child, generation.get(parent, 0)


def categorical_drift(
    graph: LineageGraph,
    trait: str,
    *,
    nodes: Family | Iterable[str] | None = None,
    relations: Collection[str] | None = None,
) -> CategoricalDrift:
    """Transition counts and per-generation change rate of a categorical trait."""
    transitions: Counter[tuple[str, str]] = Counter()
    per_gen_edges: Counter[int] = Counter()
    per_gen_changed: Counter[int] = Counter()
    missing = 0
    for parent, child, gen in _edges_with_generation(graph, nodes, relations):
        a = _categorical(trait_value(graph.node(parent).attrs, trait))
        b = _categorical(trait_value(graph.node(child).attrs, trait))
        if a is None or b is None:
            missing += 1
            continue
        transitions[(a, b)] += 1
        per_gen_edges[gen] += 1
        if a != b:
            per_gen_changed[gen] += 1
    by_gen = [GenerationRate(g, per_gen_edges[g], per_gen_changed[g]) for g in sorted(per_gen_edges)]
    return CategoricalDrift(
        trait=trait,
        transitions=dict(transitions),
        by_generation=by_gen,
        edges_compared=sum(per_gen_edges.values()),
        edges_changed=sum(per_gen_changed.values()),
        edges_missing=missing,
    )


def numeric_drift(
    graph: LineageGraph,
    trait: str,
    *,
    nodes: Family | Iterable[str] | None = None,
    relations: Collection[str] | None = None,
) -> NumericDrift:
    """Mean and spread of child - parent for a numeric trait, overall and per generation."""
    deltas: list[float] = []
    relative: list[float] = []
    gens: list[int] = []
    missing = 0
    for parent, child, gen in _edges_with_generation(graph, nodes, relations):
        a = _numeric(trait_value(graph.node(parent).attrs, trait))
        b = _numeric(trait_value(graph.node(child).attrs, trait))
        if a is None or b is None:
            missing += 1
            continue
        deltas.append(b - a)
        gens.append(gen)
        if a != 0:
            relative.append((b - a) / abs(a))
    d = np.asarray(deltas, dtype=float)
    g = np.asarray(gens, dtype=int)
    by_gen = [
        NumericGeneration(int(k), int((g == k).sum()), float(d[g == k].mean()), float(d[g == k].std()))
        for k in np.unique(g)
    ]
    return NumericDrift(
        trait=trait,
        edges_compared=len(d),
        edges_missing=missing,
        mean_change=float(d.mean()) if len(d) else math.nan,
        std_change=float(d.std()) if len(d) else math.nan,
        mean_abs_change=float(np.abs(d).mean()) if len(d) else math.nan,
        mean_relative_change=float(np.mean(relative)) if relative else math.nan,
        by_generation=by_gen,
    )


def family_overview(graph: LineageGraph, family: Family | Iterable[str]) -> FamilyStats:
    """Size, depth, branching, roots and merges of one family (see ``FamilyStats``)."""
    return graph.family_stats(family)
