"""Importing the real Model Atlas snapshot, checked against counts computed here
with nothing but the csv module, sets and a breadth-first search."""

from __future__ import annotations

import csv
from collections import Counter, deque

import pytest

from analysis.lineage.layout import radial_layout, tidy_tree_layout


def _independent_counts(directory):
    """Re-derive the snapshot's graph from the README's rules alone."""
    node_rows: list[str] = []
    pair_occurrences: Counter = Counter()
    self_loops = 0

    def clean(text):
        return text.strip().rstrip("/").strip()

    with open(directory / "model_cards_parent_edges.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            child = clean(row["id"])
            node_rows.append(child)
            # Hub ids never contain commas; the one row with a trailing comma means one parent.
            for parent in {clean(p) for p in row["base_model"].split(",")} - {""}:
                if parent == child:
                    self_loops += 1
                else:
                    pair_occurrences[(parent, child)] += 1
    with open(directory / "manually_annotated_relations.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            child = clean(row["current_model"])
            node_rows.append(child)
            if row["base_model_relation"] == "source":
                continue
            for parent in {clean(p) for p in row["base_model"].split(",")} - {""}:
                if parent == child:
                    self_loops += 1
                else:
                    pair_occurrences[(parent, child)] += 1

    edges = set(pair_occurrences)
    nodes = set(node_rows) | {p for p, _ in edges} | {c for _, c in edges}
    has_parent = {c for _, c in edges}
    roots = nodes - has_parent
    missing_parents = nodes - set(node_rows)

    # Cycles: Kahn's algorithm consumes every node iff the graph is acyclic.
    indegree = Counter(c for _, c in edges)
    out: dict[str, list[str]] = {}
    for p, c in edges:
        out.setdefault(p, []).append(c)
    queue = deque(n for n in nodes if indegree[n] == 0)
    consumed = 0
    while queue:
        n = queue.popleft()
        consumed += 1
        for c in out.get(n, []):
            indegree[c] -= 1
            if indegree[c] == 0:
                queue.append(c)

    # Families: BFS over the undirected edges.
    undirected: dict[str, list[str]] = {n: [] for n in nodes}
    for p, c in edges:
        undirected[p].append(c)
        undirected[c].append(p)
    seen: set[str] = set()
    family_sizes = []
    for start in nodes:
        if start in seen:
            continue
        seen.add(start)
        size = 0
        queue = deque([start])
        while queue:
            n = queue.popleft()
            size += 1
            for m in undirected[n]:
                if m not in seen:
                    seen.add(m)
                    queue.append(m)
        family_sizes.append(size)

    return {
        "nodes": len(nodes),
        "edges": len(edges),
        "roots": len(roots),
        "families": len(family_sizes),
        "largest_family": max(family_sizes),
        "self_loops": self_loops,
        "duplicates": sum(v - 1 for v in pair_occurrences.values()),
        "missing_parents": len(missing_parents),
        "acyclic": consumed == len(nodes),
        "node_rows": len(node_rows),
    }


@pytest.fixture(scope="module")
def expected(hf_lineage_dir):
    return _independent_counts(hf_lineage_dir)


def test_snapshot_counts_match_an_independent_computation(hf_snapshot, expected):
    graph, report = hf_snapshot.graph, hf_snapshot.report
    assert expected["acyclic"]  # a fact about the data, so the cycle count below must be 0
    assert graph.num_nodes == expected["nodes"]
    assert graph.num_edges == expected["edges"]
    assert len(graph.roots()) == expected["roots"]
    families = graph.families()
    assert len(families) == expected["families"]
    assert families[0].size == expected["largest_family"]
    counts = report.counts()
    assert counts.get("self_loop", 0) == expected["self_loops"]
    assert counts.get("duplicate_edge", 0) == expected["duplicates"]
    assert counts.get("missing_parent", 0) == expected["missing_parents"]
    assert counts.get("cycle", 0) == 0
    assert sum(1 for n in graph.nodes() if n.placeholder) == expected["missing_parents"]
    # Every row landed: none of the snapshot's problems is fatal to its row.
    assert report.rows_read == expected["node_rows"]
    assert report.rows_imported == expected["node_rows"]


def test_snapshot_sanity_that_a_reader_can_check_by_eye(hf_snapshot, expected):
    graph, report = hf_snapshot.graph, hf_snapshot.report
    # Pinned so that a change in the data or the rules is noticed, not silently absorbed.
    assert (expected["nodes"], expected["edges"], expected["self_loops"]) == (34471, 22646, 7)
    assert not any(n.endswith("/") for n in graph.node_ids())
    merge = "abacusai/Slerp-CM-mist-dpo"
    assert sorted(graph.parents(merge)) == ["cookinai/CatMacaroni-Slerp", "mncai/mistral-7b-dpo-v5"]
    assert {graph.edge(p, merge).relation for p in graph.parents(merge)} == {"merge"}
    assert graph.node("01-ai/Yi-34B").attrs.get("declared_root") is True
    # Self-loops come with their row numbers (line 3372 is ChocoLlama's own row).
    loops = report.of_kind("self_loop")
    assert any(i.row == 3372 and "ChocoLlama" in i.message for i in loops)
    # Scraping debris in ids is flagged but kept.
    assert any("</a>" in i.message for i in report.of_kind("suspicious_id"))


def test_largest_family_stats_and_layout(hf_snapshot):
    graph = hf_snapshot.graph
    family = graph.families()[0]
    stats = graph.family_stats(family)
    assert stats.size == family.size
    assert stats.num_roots == len(family.roots) >= 1
    assert stats.depth >= 1 and stats.max_branching >= 2
    assert stats.num_merges >= 1  # the annotated merges land in the big Mistral family
    layout = tidy_tree_layout(graph, family)
    assert layout.visible_count == family.size
    for d in set(layout.depth.tolist()):
        xs = sorted(layout.x[layout.depth == d])
        assert all(b - a >= 1 - 1e-9 for a, b in zip(xs, xs[1:]))
    capped = radial_layout(graph, family, max_nodes=100)
    assert capped.visible_count <= 100 and capped.auto_collapsed
    assert capped.visible_count + capped.hidden_total == family.size
