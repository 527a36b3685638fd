"""The "recover lineage from weights" job: load (or train) models, recover, score, lay out.

``analysis.lineage.recovery`` does the maths (single-linkage families, then a
minimum directed spanning tree per family with a kurtosis direction hint).
This module streams what happens (each model trained or loaded, the distance
matrix, the families, the tree) and, when the true lineage is known (a
synthetic zoo, or checkpoints with parent links), scores the result.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from webapp.catalog.models import Checkpoint
from webapp.files import local_path
from webapp.jobs.context import JobContext

MAX_MATRIX_SHOWN = 120  # models; beyond that the distance heatmap is left out of the events


def _zoo_inputs(ctx: JobContext) -> tuple[dict, dict | None, dict | None, dict]:
    from analysis.lineage.synthetic_zoo import build_synthetic_zoo

    p = ctx.params
    total = p["n_families"] * (1 + p["children_per_root"] * (1 + p["grandchildren_per_child"]))
    ctx.emit("stage", {"stage": "training", "message": f"training a synthetic zoo of {total} digit classifiers"},
             progress=0.01)

    def on_progress(event: dict) -> None:
        ctx.emit("model", {"name": event["name"], "done": event["done"], "total": event["total"], "action": "trained"},
                 progress=0.8 * event["done"] / event["total"])

    zoo = build_synthetic_zoo(n_families=p["n_families"], children_per_root=p["children_per_root"],
                              grandchildren_per_child=p["grandchildren_per_child"], seed=p["seed"],
                              on_progress=on_progress)
    info = {m.name: {"task": m.task, "train_accuracy": round(m.train_accuracy, 4), "generation": m.generation}
            for m in zoo.models}
    return zoo.state_dicts(), zoo.true_parents(), zoo.true_families(), info


def _catalog_inputs(ctx: JobContext) -> tuple[dict, dict | None, dict | None, dict]:
    from analysis import checkpoints as ckpt

    slugs = ctx.params["checkpoints"]
    records = {c.slug: c for c in Checkpoint.objects.filter(slug__in=slugs)}
    ordered = [records[s] for s in slugs if s in records]
    ctx.emit("stage", {"stage": "loading", "message": f"loading {len(ordered)} checkpoints"}, progress=0.01)
    names, taken = {}, set()
    for c in ordered:
        names[c.pk] = c.name if c.name not in taken else f"{c.name} ({c.slug})"
        taken.add(names[c.pk])
    states, info = {}, {}
    for k, c in enumerate(ordered, start=1):
        states[names[c.pk]] = ckpt.load(local_path(c.file, sha256=c.sha256)).model.state_dict()
        info[names[c.pk]] = {"checkpoint": c.slug, "dataset": c.dataset}
        ctx.emit("model", {"name": names[c.pk], "done": k, "total": len(ordered), "action": "loaded"},
                 progress=0.6 * k / len(ordered))
    # The truth, when the catalog knows it: parent links inside the chosen set.
    parent = {names[c.pk]: names.get(c.parent_id) for c in ordered}
    if not any(parent.values()):
        return states, None, None, info
    family = _components(parent)
    return states, parent, family, info


def _components(parent: dict[str, str | None]) -> dict[str, int]:
    root_of: dict[str, str] = {}

    def find(n: str) -> str:
        seen = []
        while parent.get(n) is not None and n not in root_of:
            seen.append(n)
            n = parent[n]
        top = root_of.get(n, n)
        for s in seen:
            root_of[s] = top
        return top

    roots = sorted({find(n) for n in parent})
    index = {r: i for i, r in enumerate(roots)}
    return {n: index[find(n)] for n in parent}


def _edge_status(parent: str, child: str, true_parent: dict | None) -> str:
    if true_parent is None:
        return "unscored"
    if true_parent.get(child) == parent:
        return "correct"
    if true_parent.get(parent) == child:
        return "reversed"
    return "wrong"


def recovery_run(ctx: JobContext) -> dict:
    from analysis.lineage.layout import tidy_tree_layout
    from analysis.lineage.recovery import recover_lineage, score_recovery

    p = ctx.params
    states, true_parent, true_family, info = _zoo_inputs(ctx) if p["source"] == "synthetic" else _catalog_inputs(ctx)
    ctx.emit("stage", {"stage": "recovering", "message": "pairwise distances, families, directed trees"},
             progress=0.85)
    result = recover_lineage(states, direction_weight=p["direction_weight"])
    names = result.names
    if len(names) <= MAX_MATRIX_SHOWN:
        ctx.emit("distances", {"names": names, "distances": np.round(result.distances, 4).tolist()}, progress=0.9)
    families = [[str(n) for n in fam] for fam in result.families]
    ctx.emit("families", {"families": families, "threshold": result.threshold}, progress=0.93)

    graph = result.to_graph()
    layout = tidy_tree_layout(graph, graph.node_ids())
    label_of = {n: int(l) for n, l in zip(names, result.labels)}
    kurtosis = {n: float(k) for n, k in zip(names, result.kurtosis)}
    nodes = [{"id": n, "x": float(layout.x[i]), "y": float(layout.y[i]), "family": label_of[n],
              "true_family": true_family.get(n) if true_family else None, "kurtosis": round(kurtosis[n], 4),
              **info.get(n, {})} for i, n in enumerate(layout.node_ids)]
    edges = [{"parent": e.parent, "child": e.child, "distance": round(e.distance, 6),
              "status": _edge_status(e.parent, e.child, true_parent)} for e in result.edges]
    tree = {"nodes": nodes, "edges": edges, "roots": result.roots}
    if true_parent is not None:
        found = {(e.parent, e.child) for e in result.edges} | {(e.child, e.parent) for e in result.edges}
        tree["missed"] = [[tp, c] for c, tp in true_parent.items() if tp is not None and (tp, c) not in found]
    ctx.emit("tree", tree, progress=0.97)

    out = {"source": p["source"], "num_models": len(names), "num_families": len(families), "families": families,
           "threshold": result.threshold, "direction_weight": result.direction_weight, "tree": tree,
           "truth_known": true_parent is not None}
    if p["source"] == "experiment":
        out.update(source_experiment=p["source_experiment"], left_out=p.get("left_out", 0))
    if true_parent is not None:
        s = score_recovery(result, true_parent, true_family)
        out["score"] = {"clustering_accuracy": s.pairwise_clustering_accuracy,
                        "adjusted_rand_index": s.adjusted_rand_index,
                        "directed_edge_accuracy": s.directed_edge_accuracy,
                        "undirected_edge_accuracy": s.undirected_edge_accuracy,
                        "root_accuracy": s.root_accuracy, "true_edges": s.true_edges}
        ctx.emit("score", out["score"], progress=1.0)
    return out


def recovery_csv(result: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["parent", "child", "distance", "status"])
    for e in result.get("tree", {}).get("edges", []):
        writer.writerow([_cell(e["parent"]), _cell(e["child"]), repr(e["distance"]), e["status"]])
    return out.getvalue()


def _cell(text: str) -> str:
    # Checkpoint names are user text: never let a spreadsheet run one as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
