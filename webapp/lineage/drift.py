"""Trait drift as JSON for the pages: the library's numbers, shaped once.

Whole-graph drift is computed at import (a 35k-node graph takes a second) and
stored on the graph; a family's drift is small enough to compute on request.
"""

from __future__ import annotations


from analysis import lineage as lib
from analysis.json_safe import finite_or_none
from webapp.lineage import traits as trait_catalog

# Always shown, even with no data, so a reader sees "unknown" rather than nothing.
CORE_CATEGORICAL = ("license", "language", "task")
CORE_NUMERIC = ("card_length", "downloads", "likes")
MAX_EXTRA = 6
TOP_TRANSITIONS = 15


def _num(value: float) -> float | None:
    number = finite_or_none(value)
    return None if number is None else round(number, 6)


def categorical_json(d) -> dict:
    same = sum(count for (a, b), count in d.transitions.items() if a == b)
    return {
        "trait": d.trait,
        "edges_compared": d.edges_compared,
        "edges_changed": d.edges_changed,
        "edges_same": same,
        "edges_missing": d.edges_missing,
        "change_rate": _num(d.change_rate),
        "by_generation": [{"generation": g.generation, "edges": g.edges, "changed": g.changed, "rate": _num(g.rate)}
                          for g in d.by_generation],
        "top_transitions": [[a, b, n] for (a, b), n in d.top_transitions(TOP_TRANSITIONS)],
    }


def numeric_json(d) -> dict:
    return {
        "trait": d.trait,
        "edges_compared": d.edges_compared,
        "edges_missing": d.edges_missing,
        "mean_change": _num(d.mean_change),
        "std_change": _num(d.std_change),
        "mean_abs_change": _num(d.mean_abs_change),
        "mean_relative_change": _num(d.mean_relative_change),
        "by_generation": [{"generation": g.generation, "edges": g.edges, "mean_change": _num(g.mean_change),
                           "std_change": _num(g.std_change)} for g in d.by_generation],
    }


def _empty(trait: str, kind: str, edges: int) -> dict:
    # No node carries the trait: every edge is "missing", and the library pass can be skipped.
    if kind == "categorical":
        return {"trait": trait, "edges_compared": 0, "edges_changed": 0, "edges_same": 0, "edges_missing": edges,
                "change_rate": None, "by_generation": [], "top_transitions": []}
    return {"trait": trait, "edges_compared": 0, "edges_missing": edges, "mean_change": None, "std_change": None,
            "mean_abs_change": None, "mean_relative_change": None, "by_generation": []}


def graph_drift(graph: lib.LineageGraph) -> dict:
    """Drift of the core traits plus the most common other traits of ``graph``."""
    found = trait_catalog.traits_of(graph)
    present = {t["name"] for t in found}
    categorical = list(CORE_CATEGORICAL) + [t["name"] for t in found if t["kind"] == "categorical"
                                            and t["name"] not in CORE_CATEGORICAL][:MAX_EXTRA]
    numeric = list(CORE_NUMERIC) + [t["name"] for t in found if t["kind"] == "numeric"
                                    and t["name"] not in CORE_NUMERIC][:MAX_EXTRA]
    edges = graph.num_edges
    return {
        "categorical": [categorical_json(lib.categorical_drift(graph, t)) if t in present
                        else _empty(t, "categorical", edges) for t in categorical],
        "numeric": [numeric_json(lib.numeric_drift(graph, t)) if t in present else _empty(t, "numeric", edges)
                    for t in numeric],
    }
