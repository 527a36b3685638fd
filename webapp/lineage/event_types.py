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


class KinshipModel(EventPayload):
    """One of the three models loaded (role: base, a or b)."""

    role: str
    slug: str
    name: str
    parameters: int


class KinshipLayer(EventPayload):
    """One tensor's deltas compared (None: undefined, e.g. the cosine of a zero delta)."""

    name: str
    pearson: float | None
    cosine: float | None
    euclidean: float | None
    numel: int


KINSHIP_EVENTS = {"model": KinshipModel, "layer": KinshipLayer}


class ImportStage(EventPayload):
    stage: str
    files: int | None = None
    hub_ids: int | None = None
    models: int | None = None
    edges: int | None = None


class ImportFile(EventPayload):
    """One file read: the graph's size so far and the issues this file added to the report."""

    name: str
    kind: str
    models: int
    edges: int
    issues: int


class ImportHubRequest(EventPayload):
    """One Hub request, announced before it is made (``budget``: the most the job will make)."""

    model: str
    request: int
    budget: int


class ImportIssue(Record):
    row: int | None
    kind: str
    message: str
    source: str
    severity: str


class ImportReport(EventPayload):
    """The report of an import that landed nothing (the job then fails)."""

    summary: str
    rows_read: int
    rows_imported: int
    counts: dict[str, int]
    errors: int
    warnings: int
    issues: list[ImportIssue]
    issues_truncated: int


IMPORT_EVENTS = {"stage": ImportStage, "file": ImportFile, "hub": ImportHubRequest, "report": ImportReport}
