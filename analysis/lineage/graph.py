"""The lineage graph: models as nodes, "derived from" facts as directed edges.

An edge points from parent (base model) to child (derived model).  The graph
keeps itself a DAG: self-loops, duplicate edges and edges that would close a
cycle are refused (and the caller is told why), so every algorithm downstream
(generations, layout, drift) can rely on a topological order existing.

The parent/child adjacency is a networkx ``DiGraph``; reachability (the cycle
check, ancestors, descendants) and generations (topological generations) are
networkx's.  Families are weakly connected components.  They are maintained
incrementally with networkx's union-find, because the Hugging Face snapshot has
~34k nodes and the web app asks for "the family of X" constantly.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from networkx.utils import UnionFind

RELATIONS: tuple[str, ...] = ("finetune", "adapter", "quantized", "merge", "unknown")

# When a node has several parents, the layout draws one of them as its tree
# parent.  A merge is the least "tree-like" relation, so it loses ties.
RELATION_PRIORITY: dict[str, int] = {
    "finetune": 0,
    "adapter": 1,
    "quantized": 2,
    "unknown": 3,
    "merge": 4,
}


@dataclass
class LineageNode:
    """One model.  ``placeholder`` marks ids known only as someone's parent."""

    id: str
    attrs: dict[str, Any] = field(default_factory=dict)
    placeholder: bool = False


@dataclass(frozen=True)
class LineageEdge:
    """``parent`` -> ``child``; ``source`` says where the fact came from."""

    parent: str
    child: str
    relation: str = "unknown"
    source: str = ""


class EdgeStatus(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    SELF_LOOP = "self_loop"
    CYCLE = "cycle"


# ---------------------------------------------------------------------------
# Import problems
# ---------------------------------------------------------------------------

ISSUE_KINDS: tuple[str, ...] = (
    "cycle",
    "self_loop",
    "duplicate_edge",
    "duplicate_row",
    "missing_parent",
    "unknown_relation",
    "missing_column",
    "missing_value",
    "oversized_field",
    "malformed_row",
    "bad_yaml",
    "bad_value",
    "suspicious_id",
    "conflict",
    "fetch_failed",
    "too_many_rows",
)


@dataclass(frozen=True)
class ImportIssue:
    """A problem with one input row (or the whole file when ``row`` is None).

    ``severity`` is "error" when (part of) the row was not imported and
    "warning" when it was imported with a caveat.  Row numbers are 1-based
    line numbers for CSV files (the header is line 1) and 1-based record
    numbers for JSON lists, model-card collections and Hub requests.
    """

    row: int | None
    kind: str
    message: str
    source: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.source or 'input'}"
        if self.row is not None:
            where += f" row {self.row}"
        return f"{where}: {self.severity}: {self.kind}: {self.message}"


class ImportReport:
    """Collects per-row problems so one bad row never stops an import."""

    def __init__(self) -> None:
        self.issues: list[ImportIssue] = []
        self.rows_read = 0
        self.rows_imported = 0
        # Where each placeholder parent was first mentioned, so the
        # "missing parent" issue can point at a row.
        self._first_reference: dict[str, tuple[int | None, str]] = {}

    def add(
        self,
        kind: str,
        message: str,
        *,
        row: int | None = None,
        source: str = "",
        severity: str = "error",
    ) -> ImportIssue:
        if kind not in ISSUE_KINDS:
            raise ValueError(f"unknown issue kind {kind!r}")
        if severity not in ("error", "warning"):
            raise ValueError(f"severity must be 'error' or 'warning', not {severity!r}")
        issue = ImportIssue(row=row, kind=kind, message=message, source=source, severity=severity)
        self.issues.append(issue)
        return issue

    def note_reference(self, node_id: str, row: int | None, source: str) -> None:
        self._first_reference.setdefault(node_id, (row, source))

    def of_kind(self, kind: str) -> list[ImportIssue]:
        return [issue for issue in self.issues if issue.kind == kind]

    def counts(self) -> dict[str, int]:
        return dict(Counter(issue.kind for issue in self.issues))

    @property
    def errors(self) -> list[ImportIssue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[ImportIssue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    def refresh_missing_parents(self, graph: LineageGraph) -> list[ImportIssue]:
        """Re-derive the "missing parent" warnings from the graph's placeholders.

        Done at the end of an import rather than per row because a parent
        mentioned on row 10 may get its own row on row 20000 (or in the next
        file).  Earlier missing-parent issues are replaced, not duplicated.
        """
        self.issues = [issue for issue in self.issues if issue.kind != "missing_parent"]
        added = []
        for node in graph.nodes():
            if not node.placeholder:
                continue
            row, source = self._first_reference.get(node.id, (None, ""))
            added.append(
                self.add(
                    "missing_parent",
                    f"parent {node.id!r} has no row of its own; added as a placeholder node",
                    row=row,
                    source=source,
                    severity="warning",
                )
            )
        return added

    def summary(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{kind}={counts[kind]}" for kind in sorted(counts))
        return (
            f"{self.rows_read} rows read, {self.rows_imported} imported, "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings" + (f" ({parts})" if parts else "")
        )

    def to_dict(self, max_issues: int | None = 1000) -> dict[str, Any]:
        shown = self.issues if max_issues is None else self.issues[:max_issues]
        return {
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "counts": self.counts(),
            "issues": [
                {"row": i.row, "kind": i.kind, "message": i.message, "source": i.source, "severity": i.severity}
                for i in shown
            ],
            "issues_truncated": len(self.issues) - len(shown),
        }


# ---------------------------------------------------------------------------
# Families and statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A weakly connected component.  ``label`` is its largest root."""

    index: int
    label: str
    nodes: tuple[str, ...]
    roots: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True)
class FamilyStats:
    size: int
    num_edges: int
    depth: int  # longest root-to-leaf path, in edges
    max_branching: int  # most children of any one node
    mean_branching: float  # mean children over nodes that have children
    num_roots: int
    num_leaves: int
    num_merges: int  # nodes with two or more parents
    num_placeholders: int
    relation_counts: dict[str, int]


class LineageGraph:
    """Directed acyclic graph of models with O(1) parent/child lookups."""

    def __init__(self) -> None:
        self._nodes: dict[str, LineageNode] = {}
        self._dag = nx.DiGraph()  # parent -> child; its succ/pred keep insertion order
        self._edges: dict[tuple[str, str], LineageEdge] = {}
        self._components = UnionFind()  # networkx's union by weight with path compression
        self._families: list[Family] | None = None
        self._family_of: dict[str, int] | None = None

    # -- building ----------------------------------------------------------

    def add_node(self, node_id: str, attrs: dict[str, Any] | None = None, *, placeholder: bool = False) -> LineageNode:
        """Add a node, or update an existing one.

        Attributes are merged (new values win).  A real row for an id that
        was so far only a placeholder turns it into a real node; a
        placeholder call never demotes a real node.
        """
        if not isinstance(node_id, str) or not node_id:
            raise ValueError("node id must be a non-empty string")
        node = self._nodes.get(node_id)
        if node is None:
            node = LineageNode(id=node_id, attrs=dict(attrs or {}), placeholder=placeholder)
            self._nodes[node_id] = node
            self._dag.add_node(node_id)
            self._components[node_id]  # looking an item up adds it as its own set
            self._invalidate()
        else:
            if attrs:
                node.attrs.update(attrs)
            if not placeholder:
                node.placeholder = False
        return node

    def add_edge(self, parent: str, child: str, relation: str = "unknown", source: str = "") -> EdgeStatus:
        """Add ``parent -> child`` unless it is a self-loop, duplicate or closes a cycle.

        Unknown endpoints are created as placeholder nodes.  For a duplicate
        whose stored relation is "unknown", a specific relation upgrades it
        (two sources agreeing on the edge, one of them knowing more).
        """
        if relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}, not {relation!r}")
        if not parent or not child:
            raise ValueError("edge endpoints must be non-empty strings")
        if parent == child:
            return EdgeStatus.SELF_LOOP
        existing = self._edges.get((parent, child))
        if existing is not None:
            if existing.relation == "unknown" and relation != "unknown":
                self._edges[(parent, child)] = LineageEdge(parent, child, relation, existing.source or source)
            return EdgeStatus.DUPLICATE
        if child in self._nodes and parent in self._nodes and self._would_close_cycle(parent, child):
            return EdgeStatus.CYCLE
        if parent not in self._nodes:
            self.add_node(parent, placeholder=True)
        if child not in self._nodes:
            self.add_node(child, placeholder=True)
        self._edges[(parent, child)] = LineageEdge(parent, child, relation, source)
        self._dag.add_edge(parent, child)
        self._components.union(parent, child)
        self._invalidate()
        return EdgeStatus.ADDED

    def _would_close_cycle(self, parent: str, child: str) -> bool:
        # Different components cannot be connected by a path yet: O(1) exit
        # for the vast majority of edges.  Otherwise look *up* from the
        # parent: ancestor sets are small (lineages are shallow), while
        # descendant sets of popular base models are huge.
        if self._components[parent] != self._components[child]:
            return False
        return child in nx.ancestors(self._dag, parent)

    def _invalidate(self) -> None:
        self._families = None
        self._family_of = None

    # -- reading -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    @property
    def num_nodes(self) -> int:
        return len(self._nodes)

    @property
    def num_edges(self) -> int:
        return len(self._edges)

    def node(self, node_id: str) -> LineageNode:
        return self._nodes[node_id]

    def nodes(self) -> Iterator[LineageNode]:
        return iter(self._nodes.values())

    def node_ids(self) -> list[str]:
        return list(self._nodes)

    def edges(self) -> Iterator[LineageEdge]:
        return iter(self._edges.values())

    def edge(self, parent: str, child: str) -> LineageEdge | None:
        return self._edges.get((parent, child))

    def children(self, node_id: str) -> list[str]:
        return list(self._dag.succ[node_id])

    def parents(self, node_id: str) -> list[str]:
        return list(self._dag.pred[node_id])

    def roots(self) -> list[str]:
        """Nodes without parents (placeholders included), in insertion order."""
        return [n for n, ps in self._dag.pred.items() if not ps]

    def descendants(self, node_id: str) -> set[str]:
        return nx.descendants(self._dag, node_id)

    def ancestors(self, node_id: str) -> set[str]:
        return nx.ancestors(self._dag, node_id)

    def search(self, text: str, limit: int = 50) -> list[str]:
        """Case-insensitive substring search over ids (exact match first)."""
        needle = text.strip().lower()
        if not needle:
            return []
        hits = [n for n in self._nodes if needle in n.lower()]
        hits.sort(key=lambda n: (n.lower() != needle, len(n), n))
        return hits[:limit]

    # -- families ----------------------------------------------------------

    def families(self) -> list[Family]:
        """Weakly connected components, largest first (ties by label)."""
        if self._families is None:
            groups: dict[str, list[str]] = {}
            find = self._components.__getitem__
            for node_id in self._nodes:
                groups.setdefault(find(node_id), []).append(node_id)
            families = []
            for members in groups.values():
                roots = [n for n in members if not self._dag.pred[n]]
                # Label the family by the root with the most direct children:
                # that is the model a user would name the family after.
                label = max(roots, key=lambda r: (len(self._dag.succ[r]), -len(r), r)) if roots else members[0]
                families.append((members, roots, label))
            families.sort(key=lambda f: (-len(f[0]), f[2]))
            self._families = [
                Family(index=i, label=label, nodes=tuple(members), roots=tuple(roots))
                for i, (members, roots, label) in enumerate(families)
            ]
            self._family_of = {n: fam.index for fam in self._families for n in fam.nodes}
        return self._families

    def family_of(self, node_id: str) -> Family:
        families = self.families()
        assert self._family_of is not None
        return families[self._family_of[node_id]]

    def generations(self, nodes: Iterable[str] | None = None) -> dict[str, int]:
        """Generation = longest path from a root (roots are 0).

        Longest, not shortest, so that every edge goes from a lower to a
        strictly higher generation, also for merges of models of different
        ages.  ``nodes`` must be closed under parents (a family is).
        """
        members = self._dag if nodes is None else self._dag.subgraph(nodes)
        # A topological generation is the set of nodes whose parents all sit in earlier ones:
        # exactly the longest path from a root.
        return {n: depth for depth, layer in enumerate(nx.topological_generations(members)) for n in layer}

    def family_stats(self, family: Family | Iterable[str]) -> FamilyStats:
        members = list(family.nodes) if isinstance(family, Family) else list(family)
        member_set = set(members)
        generation = self.generations(members)
        child_counts = [sum(1 for c in self._dag.succ[n] if c in member_set) for n in members]
        internal = [c for c in child_counts if c > 0]
        relations: Counter[str] = Counter()
        num_edges = 0
        for n in members:
            for p in self._dag.pred[n]:
                if p in member_set:
                    num_edges += 1
                    relations[self._edges[(p, n)].relation] += 1
        return FamilyStats(
            size=len(members),
            num_edges=num_edges,
            depth=max(generation.values(), default=0),
            max_branching=max(child_counts, default=0),
            mean_branching=(sum(internal) / len(internal)) if internal else 0.0,
            num_roots=sum(1 for n in members if not any(p in member_set for p in self._dag.pred[n])),
            num_leaves=sum(1 for c in child_counts if c == 0),
            num_merges=sum(1 for n in members if sum(1 for p in self._dag.pred[n] if p in member_set) >= 2),
            num_placeholders=sum(1 for n in members if self._nodes[n].placeholder),
            relation_counts=dict(relations),
        )

    def subgraph(self, nodes: Iterable[str]) -> LineageGraph:
        """A copy holding only ``nodes`` and the edges among them."""
        keep = [n for n in dict.fromkeys(nodes) if n in self._nodes]
        keep_set = set(keep)
        sub = LineageGraph()
        for n in keep:
            node = self._nodes[n]
            sub.add_node(n, dict(node.attrs), placeholder=node.placeholder)
        for n in keep:
            for p in self._dag.pred[n]:
                if p in keep_set:
                    edge = self._edges[(p, n)]
                    sub.add_edge(p, n, edge.relation, edge.source)
        return sub
