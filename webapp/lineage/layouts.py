"""Server-side layout of one family, shaped as compact JSON for the tree page.

The browser draws what this returns and nothing more, so a family of 10^4
nodes costs the browser only what is visible: at most ``cap`` nodes (3,000 by
default).  Beyond the cap, subtrees are folded level by level from the roots
(the library's rule: the widest fan-outs at the deepest levels go first), and
the payload says which ones.  A subtree the user expands stays expanded even
if that goes over the cap, so every node can be reached; one the user
collapses stays collapsed.

Payloads are column-oriented (one list per field) and categorical traits are
sent as small integer codes into a list of levels: a 2,000-node family with a
dozen traits is ~100 kB of JSON.  Results are cached per family and request,
because a graph never changes after import (a rebuilt catalog graph is a new
graph, with a new creation time in the key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from django.core.cache import cache

from analysis.lineage.layout import FamilyTree, family_tree, radial_layout, tidy_tree_layout
from webapp.lineage import selectors
from webapp.lineage import traits as trait_catalog
from webapp.lineage.models import Family

MAX_DRAWN = 3000
MAX_CAP = 10_000
MAX_LEVELS = 12  # categorical colours: the most common values, the rest become "other"
CACHE_SECONDS = 600


def choose_auto_collapsed(tree: FamilyTree, collapsed: set[int], expanded: set[int], cap: int) -> set[int]:
    """Nodes to fold so that about ``cap`` nodes are drawn; user choices win over the cap."""
    auto: set[int] = set()
    level = list(tree.roots)
    count = len(level)
    while level:
        following = []
        # Explicitly expanded nodes first, then the smallest fan-outs: most nodes stay visible.
        for v in sorted(level, key=lambda v: (v not in expanded, len(tree.children[v]), v)):
            kids = tree.children[v]
            if not kids or v in collapsed:
                continue
            if v in expanded or count + len(kids) <= cap:
                count += len(kids)
                following.extend(kids)
            else:
                auto.add(v)
        level = sorted(following)
    return auto


def _round(values, digits: int = 3) -> list[float]:
    return [round(float(v), digits) for v in values]


def _cache_key(family: Family, kind: str, collapsed, expanded, focus, cap: int) -> str:
    # The graph's creation time is in the key: row ids can be reused after a graph is deleted.
    version = family.graph.created_at.isoformat()
    digest = hashlib.sha1(repr((version, sorted(collapsed), sorted(expanded), focus)).encode()).hexdigest()
    return f"lineage-layout:v2:{family.pk}:{kind}:{cap}:{digest}"


def family_layout(
    *,
    family: Family,
    kind: str = "tidy",
    collapsed: Collection[int] = (),
    expanded: Collection[int] = (),
    focus: int | None = None,
    cap: int = MAX_DRAWN,
) -> dict:
    """Layout payload of ``family``.  Node keys are ModelNode primary keys."""
    kind = "radial" if kind == "radial" else "tidy"
    cap = max(10, min(int(cap), MAX_CAP))
    key = _cache_key(family, kind, collapsed, expanded, focus, cap)
    cached = cache.get(key)
    if cached is not None:
        return cached
    payload = _compute(family, kind, set(collapsed), set(expanded), focus, cap)
    cache.set(key, payload, CACHE_SECONDS)
    return payload


def _compute(family: Family, kind: str, collapsed_keys: set[int], expanded_keys: set[int], focus: int | None,
             cap: int) -> dict:
    graph, keys = selectors.family_lib_graph(family=family)
    node_ids = graph.node_ids()
    tree = family_tree(graph, node_ids)
    position = {key: i for i, key in enumerate(keys[n] for n in tree.node_ids)}
    user_collapsed = {position[k] for k in collapsed_keys if k in position}
    user_expanded = {position[k] for k in expanded_keys if k in position}
    notes = []
    if focus is not None and focus in position:
        # Open the path down to the focused node so it is drawn whatever the cap.
        v = tree.parent[position[focus]]
        while v >= 0:
            user_collapsed.discard(v)
            user_expanded.add(v)
            v = tree.parent[v]
    auto = choose_auto_collapsed(tree, user_collapsed, user_expanded, cap)
    fold = [tree.node_ids[v] for v in user_collapsed | auto]
    if kind == "radial":
        # Rings further apart than the library's default: a wide first generation would
        # otherwise push every later one onto nearly the same circle.
        visible_estimate = max(1, len(node_ids) - sum(1 for _ in fold))
        layout = radial_layout(graph, node_ids, collapsed=fold, ring_gap=max(1.0, 0.25 * visible_estimate ** 0.5))
    else:
        layout = tidy_tree_layout(graph, node_ids, collapsed=fold)

    ids = layout.node_ids
    tree_parent = layout.tree_parent.tolist()
    relation = []
    for i, node_id in enumerate(ids):
        p = tree_parent[i]
        edge = graph.edge(ids[p], node_id) if p >= 0 else None
        relation.append(edge.relation if edge else "")
    children = [len(graph.children(n)) for n in ids]
    if auto:
        notes.append(f"{len(auto)} subtree(s) folded to draw at most about {cap:,} of {layout.total_nodes:,} nodes; "
                     "expand any of them to see inside")
    notes.extend(n for n in layout.notes if "max_nodes" not in n)
    if len(ids) > cap:
        notes.append(f"{len(ids):,} nodes drawn: more than the cap of {cap:,} because of subtrees you expanded")

    traits = [t for t in family.graph.traits]
    values = {}
    for trait in traits:
        raw = [trait_catalog.trait_value(graph.node(n).attrs, trait["name"]) for n in ids]
        if not any(v is not None for v in raw):
            continue
        if trait["kind"] == "numeric":
            values[trait["name"]] = [trait_catalog.numeric_value(v) for v in raw]
        else:
            values[trait["name"]] = _codes([trait_catalog.categorical_value(v) for v in raw])
    available = trait_catalog.DERIVED_TRAITS + [t for t in traits if t["name"] in values]
    values["relation"] = _codes([r or None for r in relation])
    values["placeholder"] = _codes(["yes" if graph.node(n).placeholder else "no" for n in ids])
    values["generation"] = layout.depth.tolist()
    values["children"] = children

    checkpoints = selectors.family_checkpoints(family=family)
    return {
        "family": family.index,
        "label": family.label,
        "kind": layout.kind,
        "cap": cap,
        "total_nodes": layout.total_nodes,
        "visible": len(ids),
        "hidden_total": layout.hidden_total,
        "collapsed": sorted(keys[n] for n in layout.collapsed),
        "auto_collapsed": sorted(keys[tree.node_ids[v]] for v in auto),
        "focus": focus if focus in position else None,
        "notes": notes,
        "nodes": {
            "key": [keys[n] for n in ids],
            "id": ids,
            "x": _round(layout.x),
            "y": _round(layout.y),
            "depth": layout.depth.tolist(),
            "parent": tree_parent,
            "hidden": layout.hidden_count.tolist(),
            "relation": relation,
            "placeholder": [1 if graph.node(n).placeholder else 0 for n in ids],
            "checkpoint": [checkpoints.get(n) for n in ids] if checkpoints else None,
        },
        "extra_edges": [list(e) for e in layout.extra_edges],
        "traits": available,
        "values": values,
    }


def _codes(values: list[str | None]) -> dict:
    """Categorical column as {levels, codes}: the most common values, then "other"; -1 = unknown."""
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    levels = sorted(counts, key=lambda v: (-counts[v], v))
    other = len(levels) > MAX_LEVELS
    if other:
        levels = levels[: MAX_LEVELS - 1]
    index = {v: i for i, v in enumerate(levels)}
    if other:
        levels.append("other")
    codes = [-1 if v is None else index.get(v, len(levels) - 1) for v in values]
    return {"levels": levels, "codes": codes}
