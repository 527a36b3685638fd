"""Events of the lineage-recovery job kind (see webapp.jobs.event_types)."""

from __future__ import annotations

from typing import Any

from webapp.jobs.event_types import EventPayload, OpenPayload, Record


class RecoveryStage(EventPayload):
    stage: str
    message: str


class RecoveryModel(EventPayload):
    """One model of the zoo trained or loaded."""

    name: str
    done: int
    total: int
    action: str


class RecoveryDistances(EventPayload):
    names: list[str]
    distances: list[list[float | None]]  # None: models of different architectures


class RecoveryFamilies(EventPayload):
    families: list[list[str]]
    threshold: float


class TreeNode(OpenPayload):
    """A model placed on the tree; what else is known of it (task, checkpoint, ...) depends on where it came from."""

    id: str
    x: float
    y: float
    family: int
    true_family: int | None = None
    kurtosis: float | None = None
    quantized_bits: int | None = None


class TreeEdge(Record):
    parent: str
    child: str
    distance: float
    relation: str | None
    confidence: float | None
    evidence: Any = None
    status: str


class RecoveredTree(EventPayload):
    nodes: list[TreeNode]
    edges: list[TreeEdge]
    roots: list[str]
    metadata_known: bool
    disagreements: list[dict[str, Any]]
    missed: list[list[str]] | None = None


class RecoveryScore(EventPayload):
    clustering_accuracy: float
    relation_accuracy: float | None
    adjusted_rand_index: float
    directed_edge_accuracy: float
    undirected_edge_accuracy: float
    root_accuracy: float
    true_edges: int


RECOVERY_EVENTS = {"stage": RecoveryStage, "model": RecoveryModel, "distances": RecoveryDistances,
                   "families": RecoveryFamilies, "tree": RecoveredTree, "score": RecoveryScore}
