"""Trait drift along edges, on a family whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from analysis.lineage.drift import categorical_drift, family_overview, numeric_drift
from analysis.lineage.graph import LineageGraph


@pytest.fixture
def family() -> LineageGraph:
    #            root (mit, en, 100)
    #           /    \
    #   a (mit, en, 300)   b (apache, [fr, en], 50)
    #     |        \             |
    #   a1 (gpl)   a2 (mit)    b1 (apache, no card_length)
    #   merge: a2 + b1 -> m (apache)
    g = LineageGraph()
    attrs = {
        "root": {"license": "MIT", "language": ["en"], "card_length": 100, "metrics": {"acc": 0.5}},
        "a": {"license": "mit", "language": "en", "card_length": 300, "metrics": {"acc": 0.7}},
        "b": {"license": "apache-2.0", "language": ["fr", "en"], "card_length": 50},
        "a1": {"license": "gpl-3.0", "card_length": 400, "metrics": {"acc": 0.6}},
        "a2": {"license": "mit", "card_length": 300},
        "b1": {"license": "apache-2.0", "language": ["en", "fr"]},
        "m": {"license": "apache-2.0", "card_length": 0},
    }
    for node, a in attrs.items():
        g.add_node(node, a)
    for p, c, r in [("root", "a", "finetune"), ("root", "b", "finetune"), ("a", "a1", "adapter"),
                    ("a", "a2", "finetune"), ("b", "b1", "quantized"), ("a2", "m", "merge"), ("b1", "m", "merge")]:
        g.add_edge(p, c, r)
    return g


def test_categorical_license_drift(family):
    drift = categorical_drift(family, "license")
    # Edges: root->a same, root->b change | a->a1 change, a->a2 same, b->b1 same | a2->m change, b1->m same
    assert drift.edges_compared == 7 and drift.edges_missing == 0
    assert drift.edges_changed == 3
    assert drift.change_rate == pytest.approx(3 / 7)
    rates = {g.generation: (g.edges, g.changed) for g in drift.by_generation}
    assert rates == {0: (2, 1), 1: (3, 1), 2: (2, 1)}
    assert drift.transitions[("mit", "mit")] == 2  # case folded: "MIT" == "mit"
    assert drift.transitions[("mit", "apache-2.0")] == 2
    assert drift.top_transitions(1) == [(("mit", "apache-2.0"), 2)]


def test_multi_valued_traits_compare_as_sets_and_missing_values_are_counted(family):
    drift = categorical_drift(family, "language")
    # Known on both ends: root->a (same), root->b (en -> en,fr: change), b->b1 (same set, other order)
    assert (drift.edges_compared, drift.edges_changed, drift.edges_missing) == (3, 1, 4)


def test_relation_filter(family):
    drift = categorical_drift(family, "license", relations={"merge"})
    assert (drift.edges_compared, drift.edges_changed) == (2, 1)


def test_numeric_drift(family):
    drift = numeric_drift(family, "card_length")
    # Known on both ends: root->a +200, root->b -50, a->a1 +100, a->a2 0, a2->m -300
    deltas = [200, -50, 100, 0, -300]
    assert drift.edges_compared == 5 and drift.edges_missing == 2
    mean = sum(deltas) / 5
    assert drift.mean_change == pytest.approx(mean)
    assert drift.std_change == pytest.approx(math.sqrt(sum((d - mean) ** 2 for d in deltas) / 5))
    assert drift.mean_abs_change == pytest.approx(650 / 5)
    by_gen = {g.generation: (g.edges, g.mean_change) for g in drift.by_generation}
    assert by_gen == {0: (2, pytest.approx(75.0)), 1: (2, pytest.approx(50.0)), 2: (1, pytest.approx(-300.0))}
    metric = numeric_drift(family, "metrics.acc")
    assert metric.edges_compared == 2
    assert metric.mean_change == pytest.approx(((0.7 - 0.5) + (0.6 - 0.7)) / 2)


def test_family_overview(family):
    stats = family_overview(family, family.family_of("m"))
    assert (stats.size, stats.depth, stats.max_branching, stats.num_roots, stats.num_merges) == (7, 3, 2, 1, 1)


def test_drift_on_the_real_snapshot_runs_and_is_empty_without_traits(hf_snapshot):
    # The snapshot has no licences: every edge is "missing", none is invented.
    drift = categorical_drift(hf_snapshot.graph, "license")
    assert drift.edges_compared == 0 and drift.edges_missing == hf_snapshot.graph.num_edges
    assert math.isnan(drift.change_rate)
