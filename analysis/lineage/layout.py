"""Tidy-tree and radial layouts for one family, with collapsing and a node cap.

Families with merges are DAGs; a tree layout needs one parent per node.  The
*primary parent* is the parent of highest generation (ties: non-merge
relation first, then id), so tree depth equals generation and every edge,
including the extra (non-tree) merge edges, still points strictly downward.

The tidy layout is Walker's algorithm with the linear-time fixes of Buchheim,
Jünger and Leipert (2002): subtrees are packed as close as their contours
allow, a parent is centred over its children, and isomorphic subtrees get the
same shape.  It is written over integer arrays with iterative traversals (no
recursion: a 10k-node chain is a valid family).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import numpy as np

from .graph import RELATION_PRIORITY, Family, LineageGraph


@dataclass
class TreeLayout:
    """Positions of the visible nodes of one family.

    Arrays are indexed like ``node_ids``.  ``y`` grows downward (screen
    convention) for the tidy layout; for the radial layout ``radius`` and
    ``angle`` hold polar coordinates and ``x, y`` their Cartesian form.
    """

    kind: str  # "tidy" or "radial"
    node_ids: list[str]
    x: np.ndarray
    y: np.ndarray
    depth: np.ndarray  # generation of each visible node
    tree_parent: np.ndarray  # index of the primary parent, -1 for roots
    hidden_count: np.ndarray  # descendants hidden under each node (0 if expanded)
    extra_edges: list[tuple[int, int, str]]  # non-tree edges among visible nodes
    collapsed: list[str]  # user-collapsed nodes that actually hide something
    auto_collapsed: list[str]  # collapsed to respect max_nodes
    total_nodes: int  # family size before hiding
    hidden_total: int
    radius: np.ndarray | None = None
    angle: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def visible_count(self) -> int:
        return len(self.node_ids)

    def index_of(self, node_id: str) -> int:
        return self.node_ids.index(node_id)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "nodes": [
                {"id": n, "x": float(self.x[i]), "y": float(self.y[i]), "depth": int(self.depth[i]),
                 "parent": int(self.tree_parent[i]), "hidden": int(self.hidden_count[i])}
                for i, n in enumerate(self.node_ids)
            ],
            "extra_edges": [list(e) for e in self.extra_edges],
            "collapsed": self.collapsed,
            "auto_collapsed": self.auto_collapsed,
            "total_nodes": self.total_nodes,
            "hidden_total": self.hidden_total,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------
# Spanning tree of a family
# ---------------------------------------------------------------------------


@dataclass
class FamilyTree:
    """A family as a rooted forest (primary parents) plus its leftover edges."""

    node_ids: list[str]
    children: list[list[int]]
    parent: list[int]
    roots: list[int]
    depth: list[int]
    extra_edges: list[tuple[int, int, str]]


def family_tree(graph: LineageGraph, family: Family | Iterable[str]) -> FamilyTree:
    members = list(family.nodes) if isinstance(family, Family) else list(dict.fromkeys(family))
    index = {n: i for i, n in enumerate(members)}
    generation = graph.generations(members)
    n = len(members)
    parent = [-1] * n
    extra: list[tuple[int, int, str]] = []
    for i, node in enumerate(members):
        candidates = [p for p in graph.parents(node) if p in index]
        if not candidates:
            continue
        relation = {p: graph.edge(p, node).relation for p in candidates}  # type: ignore[union-attr]
        best = min(candidates, key=lambda p: (-generation[p], RELATION_PRIORITY[relation[p]], p))
        parent[i] = index[best]
        extra.extend((index[p], i, relation[p]) for p in candidates if p != best)
    children: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        if parent[i] >= 0:
            children[parent[i]].append(i)
    # Sorted by id: a stable, explainable order that survives re-imports.
    for kids in children:
        kids.sort(key=lambda c: members[c])
    roots = sorted((i for i in range(n) if parent[i] < 0), key=lambda r: members[r])
    depth = [generation[m] for m in members]
    return FamilyTree(members, children, parent, roots, depth, extra)


def _subtree_sizes(tree: FamilyTree) -> list[int]:
    size = [1] * len(tree.node_ids)
    for v in reversed(_preorder(tree.children, tree.roots)):
        p = tree.parent[v]
        if p >= 0:
            size[p] += size[v]
    return size


def _preorder(children: list[list[int]], roots: list[int]) -> list[int]:
    order = []
    stack = list(reversed(roots))
    while stack:
        v = stack.pop()
        order.append(v)
        stack.extend(reversed(children[v]))
    return order


def _choose_visible(
    tree: FamilyTree, collapsed: Collection[str], max_nodes: int | None
) -> tuple[list[bool], set[int], set[int]]:
    """Decide which nodes are drawn.

    User-collapsed nodes hide their subtrees.  Then, if more than
    ``max_nodes`` remain, expand level by level from the roots, smallest
    fan-out first, and collapse every node whose children no longer fit: the
    deepest levels and the widest fan-outs are the ones folded away.
    """
    n = len(tree.node_ids)
    index = {m: i for i, m in enumerate(tree.node_ids)}
    user = {index[c] for c in collapsed if c in index}
    auto: set[int] = set()
    budget = max_nodes if max_nodes is not None else math.inf
    level = list(tree.roots)
    count = len(level)
    while level:
        nxt = []
        for v in sorted(level, key=lambda v: len(tree.children[v])):
            kids = tree.children[v]
            if not kids or v in user:
                continue
            if count + len(kids) <= budget:
                count += len(kids)
                nxt.extend(kids)
            else:
                auto.add(v)
        # A deterministic order within a level keeps the choice reproducible.
        level = sorted(nxt)
    visible = [False] * n
    for v in _preorder([[] if (v in user or v in auto) else kids for v, kids in enumerate(tree.children)],
                       tree.roots):
        visible[v] = True
    return visible, user, auto


# ---------------------------------------------------------------------------
# Buchheim-Walker tidy tree
# ---------------------------------------------------------------------------


def tidy_x(children: list[list[int]], roots: list[int], separation: float = 1.0) -> np.ndarray:
    """x coordinate of every node of a forest, neighbours >= ``separation`` apart.

    Roots become children of a virtual super-root so a forest is laid out
    like one tree.  Nodes not reachable from ``roots`` get NaN.
    """
    n = len(children)
    top = n
    kids = [list(c) for c in children] + [list(roots)]
    N = n + 1
    parent = [-1] * N
    number = [0] * N
    for v in range(N):
        for i, c in enumerate(kids[v]):
            parent[c] = v
            number[c] = i
    prelim = [0.0] * N
    mod = [0.0] * N
    shift = [0.0] * N
    change = [0.0] * N
    thread = [-1] * N
    ancestor = list(range(N))
    mid = [0.0] * N

    def next_left(v: int) -> int:
        k = kids[v]
        return k[0] if k else thread[v]

    def next_right(v: int) -> int:
        k = kids[v]
        return k[-1] if k else thread[v]

    def apportion(v: int, left_sibling: int, leftmost: int, default_ancestor: int) -> int:
        vip = vop = v
        vim = left_sibling
        vom = leftmost
        sip = mod[vip]
        sop = mod[vop]
        sim = mod[vim]
        som = mod[vom]
        nr = next_right(vim)
        nl = next_left(vip)
        while nr != -1 and nl != -1:
            vim = nr
            vip = nl
            vom = next_left(vom)
            vop = next_right(vop)
            ancestor[vop] = v
            gap = (prelim[vim] + sim) - (prelim[vip] + sip) + separation
            if gap > 0:
                a = ancestor[vim]
                wl = a if parent[a] == parent[v] else default_ancestor
                subtrees = number[v] - number[wl]
                change[v] -= gap / subtrees
                shift[v] += gap
                change[wl] += gap / subtrees
                prelim[v] += gap
                mod[v] += gap
                sip += gap
                sop += gap
            sim += mod[vim]
            sip += mod[vip]
            som += mod[vom]
            sop += mod[vop]
            nr = next_right(vim)
            nl = next_left(vip)
        if nr != -1 and next_right(vop) == -1:
            thread[vop] = nr
            mod[vop] += sim - sop
        if nl != -1 and next_left(vom) == -1:
            thread[vom] = nl
            mod[vom] += sip - som
            default_ancestor = v
        return default_ancestor

    # First walk, post-order.  The sibling-dependent part of a node's first
    # walk (placing it right of its left sibling, then apportioning) runs when
    # its parent is processed; that is equivalent to the recursive order
    # because a subtree's internal work never looks at its siblings.
    order = _preorder(kids, [top])
    for v in reversed(order):
        ch = kids[v]
        if not ch:
            continue
        default_ancestor = ch[0]
        for i, w in enumerate(ch):
            if i == 0:
                prelim[w] = mid[w] if kids[w] else 0.0
            else:
                prelim[w] = prelim[ch[i - 1]] + separation
                if kids[w]:
                    mod[w] = prelim[w] - mid[w]
                default_ancestor = apportion(w, ch[i - 1], ch[0], default_ancestor)
        s = 0.0
        c = 0.0
        for w in reversed(ch):
            prelim[w] += s
            mod[w] += s
            c += change[w]
            s += shift[w] + c
        mid[v] = 0.5 * (prelim[ch[0]] + prelim[ch[-1]])
    prelim[top] = mid[top]

    # Second walk, pre-order: absolute x = prelim + sum of ancestors' mods.
    x = np.full(N, np.nan)
    stack = [(top, 0.0)]
    while stack:
        v, m = stack.pop()
        x[v] = prelim[v] + m
        m2 = m + mod[v]
        for w in kids[v]:
            stack.append((w, m2))
    return x[:n]


def _visible_subforest(tree: FamilyTree, hide_below: set[int]) -> tuple[list[int], list[list[int]], list[int]]:
    """Pre-order ids of the drawn nodes, and the forest they form, renumbered."""
    old_ids = _preorder([[] if v in hide_below else k for v, k in enumerate(tree.children)], tree.roots)
    new_index = {v: i for i, v in enumerate(old_ids)}
    children = [[new_index[c] for c in tree.children[v]] if v not in hide_below else [] for v in old_ids]
    roots = [new_index[r] for r in tree.roots]
    return old_ids, children, roots


def tidy_tree_layout(
    graph: LineageGraph,
    family: Family | Iterable[str],
    *,
    collapsed: Collection[str] = (),
    max_nodes: int | None = None,
    separation: float = 1.0,
    level_gap: float = 1.0,
) -> TreeLayout:
    """Tidy layered layout of one family (roots at y=0, children below).

    ``collapsed`` node ids hide their descendants (the node records how many);
    with ``max_nodes`` set, further subtrees are collapsed until at most that
    many nodes are drawn (roots are always drawn, so a family with more
    roots than ``max_nodes`` still exceeds it; ``notes`` says so).
    """
    tree = family_tree(graph, family)
    visible, user, auto = _choose_visible(tree, collapsed, max_nodes)
    hide_below = user | auto
    old_ids, children, roots = _visible_subforest(tree, hide_below)
    x = tidy_x(children, roots, separation) if old_ids else np.zeros(0)
    if len(x):
        x = x - np.nanmin(x)
    sizes = _subtree_sizes(tree)
    new_index = {v: i for i, v in enumerate(old_ids)}
    depth = np.array([tree.depth[v] for v in old_ids], dtype=int)
    hidden = np.array([sizes[v] - 1 if v in hide_below else 0 for v in old_ids], dtype=int)
    tree_parent = np.array([new_index.get(tree.parent[v], -1) for v in old_ids], dtype=int)
    extra = [(new_index[p], new_index[c], rel) for p, c, rel in tree.extra_edges
             if p in new_index and c in new_index]
    notes = []
    dropped = len(tree.extra_edges) - len(extra)
    if dropped:
        notes.append(f"{dropped} non-tree edge(s) touch hidden nodes and are not drawn")
    if max_nodes is not None and len(old_ids) > max_nodes:
        notes.append(f"{len(tree.roots)} roots exceed max_nodes={max_nodes}; drawn anyway")
    if auto:
        notes.append(f"{len(auto)} subtree(s) collapsed to stay within max_nodes={max_nodes}")
    return TreeLayout(
        kind="tidy",
        node_ids=[tree.node_ids[v] for v in old_ids],
        x=x,
        y=depth.astype(float) * level_gap,
        depth=depth,
        tree_parent=tree_parent,
        hidden_count=hidden,
        extra_edges=extra,
        collapsed=[tree.node_ids[v] for v in sorted(user) if visible[v] and sizes[v] > 1],
        auto_collapsed=[tree.node_ids[v] for v in sorted(auto)],
        total_nodes=len(tree.node_ids),
        hidden_total=len(tree.node_ids) - len(old_ids),
        notes=notes,
    )


def radial_layout(
    graph: LineageGraph,
    family: Family | Iterable[str],
    *,
    collapsed: Collection[str] = (),
    max_nodes: int | None = None,
    separation: float = 1.0,
    ring_gap: float = 1.0,
) -> TreeLayout:
    """The tidy layout wrapped around a centre: generation g on ring g.

    Angles keep the tidy order; each ring's radius is grown until its
    closest neighbours are at least ``separation`` apart (chord length), and
    rings are at least ``ring_gap`` apart, so nodes never overlap and every
    child sits further out than its parent.
    """
    tidy = tidy_tree_layout(graph, family, collapsed=collapsed, max_nodes=max_nodes, separation=separation)
    n = tidy.visible_count
    if n == 0:
        tidy.kind = "radial"
        tidy.radius = np.zeros(0)
        tidy.angle = np.zeros(0)
        return tidy
    span = float(tidy.x.max() - tidy.x.min()) + separation  # + separation: first and last don't meet
    angle = 2.0 * math.pi * (tidy.x - tidy.x.min()) / span
    depth = tidy.depth
    levels = int(depth.max()) + 1
    radius_of_level = np.zeros(levels)
    previous = None
    for level in range(levels):
        on_ring = np.sort(angle[depth == level])
        needed = 0.0
        if len(on_ring) >= 2:
            gaps = np.diff(on_ring)
            smallest = min(float(gaps.min()), 2.0 * math.pi - float(on_ring[-1] - on_ring[0]))
            # chord = 2 r sin(gap/2) >= separation
            needed = separation / (2.0 * math.sin(min(smallest, math.pi) / 2.0))
        if previous is None:
            r = needed
        else:
            r = max(previous + ring_gap, needed)
        if len(on_ring) == 0 and previous is not None:
            r = previous + ring_gap
        radius_of_level[level] = r
        previous = r
    radius = radius_of_level[depth]
    tidy.kind = "radial"
    tidy.radius = radius
    tidy.angle = angle
    tidy.x = radius * np.cos(angle)
    tidy.y = radius * np.sin(angle)
    return tidy
