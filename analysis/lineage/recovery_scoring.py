"""Scoring a recovered lineage against the known one.

- pairwise clustering accuracy: the Rand index, the share of model pairs
  whose "same family or not" call is right (``sklearn.metrics.rand_score``);
- adjusted Rand index: the same, corrected for chance;
- directed-edge accuracy: true parent -> child edges recovered with their
  direction (a merge has one true edge per parent);
- root accuracy: true roots recovered as roots;
- relation accuracy: true edges recovered with their direction *and* their
  relation (finetune / adapter / quantized / merge).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import adjusted_rand_score, rand_score

if TYPE_CHECKING:
    from .recovery import RecoveryResult


@dataclass(frozen=True)
class RecoveryScore:
    pairwise_clustering_accuracy: float
    adjusted_rand_index: float
    directed_edge_accuracy: float
    undirected_edge_accuracy: float
    root_accuracy: float
    true_edges: int
    relation_accuracy: float = float("nan")  # nan when the true relations are unknown


def adjusted_rand_index(a: Sequence[int], b: Sequence[int]) -> float:
    return float(adjusted_rand_score(np.asarray(a), np.asarray(b)))


def pairwise_clustering_accuracy(a: Sequence[int], b: Sequence[int]) -> float:
    return float(rand_score(np.asarray(a), np.asarray(b))) if len(a) > 1 else 1.0


def _parent_sets(true_parent: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    out = {}
    for child, parents in true_parent.items():
        if parents is None:
            out[child] = ()
        elif isinstance(parents, str):
            out[child] = (parents,)
        else:
            out[child] = tuple(parents)
    return out


def score_recovery(result: RecoveryResult, true_parent: Mapping[str, str | Iterable[str] | None],
                   true_family: Mapping[str, int], true_relation: Mapping[str, str | None] | None = None
                   ) -> RecoveryScore:
    """``true_parent``: child -> parent, or child -> parents (merges); ``true_relation``: child -> relation."""
    parents = _parent_sets(true_parent)
    names = result.names
    truth = [true_family[n] for n in names]
    true_edges = {(p, c) for c, ps in parents.items() for p in ps}
    found = {(e.parent, e.child): e.relation for e in result.edges}
    found_undirected = set(found) | {(c, p) for p, c in found}
    true_roots = {n for n, ps in parents.items() if not ps}
    n_true = len(true_edges)
    relation_accuracy = float("nan")
    if true_relation is not None:
        right = sum(1 for p, c in true_edges if found.get((p, c)) == true_relation.get(c))
        relation_accuracy = right / n_true if n_true else 1.0
    return RecoveryScore(
        pairwise_clustering_accuracy=pairwise_clustering_accuracy(result.labels, truth),
        adjusted_rand_index=adjusted_rand_index(result.labels, truth),
        directed_edge_accuracy=len(true_edges & set(found)) / n_true if n_true else 1.0,
        undirected_edge_accuracy=len(true_edges & found_undirected) / n_true if n_true else 1.0,
        root_accuracy=len(true_roots & set(result.roots)) / len(true_roots) if true_roots else 1.0,
        true_edges=n_true,
        relation_accuracy=relation_accuracy,
    )
