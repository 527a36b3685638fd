"""The "recover lineage from weights" job: load (or train) models, recover, score, lay out.

``analysis.lineage.recovery`` does the maths (families from shared
initialisation, then per family quantised leaves, merges and a tree oriented
by several independent cues; every edge gets a relation and a confidence).
This module streams what happens (each model trained or loaded, the distance
matrix, the families, the tree) and, when the true lineage is known (a
synthetic zoo, or checkpoints with parent links), scores the result.  For
catalog checkpoints their declared parents and upload times are the
metadata: the tree lists where the weights disagree with it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import networkx as nx

from analysis.json_safe import finite_or_none
from webapp.catalog.models import Checkpoint
from webapp.files import local_path
from webapp.jobs.context import JobContext

MAX_MATRIX_SHOWN = 120  # models; beyond that the distance heatmap is left out of the events


@dataclass
class _Inputs:
    states: dict
    true_parent: dict | None = None
    true_family: dict | None = None
    info: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    true_relation: dict | None = None


CATALOG_RELATIONS = {"quantize": "quantized"}  # the catalog's word -> the recovery's


def _zoo_inputs(ctx: JobContext) -> _Inputs:
    from analysis.lineage.synthetic_zoo import build_synthetic_zoo
    from analysis.lineage.zoo_recipes import RECIPES, build_recipe_zoo

    p = ctx.params
    recipe = p.get("recipe") or ""
    if recipe:
        r = RECIPES[recipe]
        total = sum(1 + r.children * (1 + r.grandchildren) + r.chain + r.lora_children + len(r.quantized) + r.merges
                    for _ in range(r.n_families))
        message = f"training a zoo of about {total} digit classifiers by the recipe {recipe!r}: {r.description}"
    else:
        total = p["n_families"] * (1 + p["children_per_root"] * (1 + p["grandchildren_per_child"]))
        message = f"training a synthetic zoo of {total} digit classifiers"
    ctx.emit("stage", {"stage": "training", "message": message}, progress=0.01)

    def on_progress(event: dict) -> None:
        done, of = event["done"], max(event.get("total", total), event["done"])
        ctx.emit("model", {"name": event["name"], "done": done, "total": of, "action": "trained"},
                 progress=0.8 * done / of)

    if recipe:
        zoo = build_recipe_zoo(recipe, p["seed"], on_progress=on_progress)
        info = {m.name: {"task": m.task, "true_relation": m.relation} for m in zoo.models}
        return _Inputs(zoo.state_dicts(), dict(zoo.true_parents()), zoo.true_families(), info,
                       true_relation={m.name: m.relation for m in zoo.models})
    zoo = build_synthetic_zoo(n_families=p["n_families"], children_per_root=p["children_per_root"],
                              grandchildren_per_child=p["grandchildren_per_child"], seed=p["seed"],
                              on_progress=on_progress)
    info = {m.name: {"task": m.task, "train_accuracy": round(m.train_accuracy, 4), "generation": m.generation}
            for m in zoo.models}
    return _Inputs(zoo.state_dicts(), zoo.true_parents(), zoo.true_families(), info,
                   true_relation={m.name: "finetune" if m.parent else None for m in zoo.models})


def _catalog_inputs(ctx: JobContext) -> _Inputs:
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
    # The truth, when the catalog knows it: parent links inside the chosen set.  The same links
    # and the upload times are the metadata the weights are compared with.
    parent = {names[c.pk]: names.get(c.parent_id) for c in ordered}
    metadata = {names[c.pk]: {"declared_parents": [parent[names[c.pk]]] if parent[names[c.pk]] else [],
                              "uploaded_at": c.created_at.timestamp()} for c in ordered}
    if not any(parent.values()):
        return _Inputs(states, info=info, metadata=metadata)
    relation = {names[c.pk]: CATALOG_RELATIONS.get(c.relation, c.relation) or None for c in ordered}
    return _Inputs(states, parent, _components(parent), info, metadata, relation)


def _components(parent: dict[str, str | None]) -> dict[str, int]:
    graph = nx.Graph()
    graph.add_nodes_from(parent)
    graph.add_edges_from((c, p) for c, p in parent.items() if p is not None)
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    return {n: i for i, members in enumerate(components) for n in members}


def _parents(value) -> tuple:
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


def _edge_status(parent: str, child: str, true_parent: dict | None) -> str:
    if true_parent is None:
        return "unscored"
    if parent in _parents(true_parent.get(child)):
        return "correct"
    if child in _parents(true_parent.get(parent)):
        return "reversed"
    return "wrong"


def recovery_run(ctx: JobContext) -> dict:
    from analysis.lineage.layout import tidy_tree_layout
    from analysis.lineage.recovery import recover_lineage, score_recovery

    p = ctx.params
    inputs = _zoo_inputs(ctx) if p["source"] == "synthetic" else _catalog_inputs(ctx)
    true_parent, true_family, info, metadata = inputs.true_parent, inputs.true_family, inputs.info, inputs.metadata
    ctx.emit("stage", {"stage": "recovering", "message": "pairwise distances, families, directed trees"},
             progress=0.85)
    def on_progress(event: dict) -> None:
        # About ten stage events however many models: progress, not a flood.
        step = max(1, event["total"] // 10)
        if event["done"] % step == 0 or event["done"] == event["total"]:
            what = "weights read" if event["stage"] == "reading" else "families arranged"
            ctx.emit("stage", {"stage": "recovering", "message": f"{event['done']} of {event['total']} {what}"},
                     progress=(0.85 if event["stage"] == "reading" else 0.88) + 0.02 * event["done"] / event["total"])

    result = recover_lineage(inputs.states, direction_weight=p["direction_weight"], metadata=metadata or None,
                             on_progress=on_progress)
    names = result.names
    if len(names) <= MAX_MATRIX_SHOWN:
        # Models of different architectures have no distance (NaN): JSON has no NaN, so null.
        matrix = [[None if (d := finite_or_none(v)) is None else round(d, 4) for v in row] for row in result.distances]
        ctx.emit("distances", {"names": names, "distances": matrix}, progress=0.9)
    families = [[str(n) for n in fam] for fam in result.families]
    ctx.emit("families", {"families": families, "threshold": result.threshold}, progress=0.93)

    graph = result.to_graph()
    layout = tidy_tree_layout(graph, graph.node_ids())
    label_of = {n: int(l) for n, l in zip(names, result.labels)}
    kurtosis = {n: float(k) for n, k in zip(names, result.kurtosis)}
    bits = {n: s.bits for n, s in result.stats.items()}
    nodes = [{"id": n, "x": float(layout.x[i]), "y": float(layout.y[i]), "family": label_of[n],
              "true_family": true_family.get(n) if true_family else None, "kurtosis": round(kurtosis[n], 4),
              "quantized_bits": bits.get(n), **info.get(n, {})} for i, n in enumerate(layout.node_ids)]
    edges = [{"parent": e.parent, "child": e.child, "distance": round(e.distance, 6), "relation": e.relation,
              "confidence": e.confidence, "evidence": e.evidence,
              "status": _edge_status(e.parent, e.child, true_parent)} for e in result.edges]
    tree = {"nodes": nodes, "edges": edges, "roots": result.roots,
            "metadata_known": bool(metadata), "disagreements": [d.to_dict() for d in result.disagreements]}
    if true_parent is not None:
        found = {(e.parent, e.child) for e in result.edges} | {(e.child, e.parent) for e in result.edges}
        tree["missed"] = [[tp, c] for c, ps in true_parent.items() for tp in _parents(ps) if (tp, c) not in found]
    ctx.emit("tree", tree, progress=0.97)

    out = {"source": p["source"], "num_models": len(names), "num_families": len(families), "families": families,
           "threshold": result.threshold, "direction_weight": result.direction_weight, "tree": tree,
           "truth_known": true_parent is not None}
    if p["source"] == "experiment":
        out.update(source_experiment=p["source_experiment"], left_out=p.get("left_out", 0))
    if true_parent is not None:
        s = score_recovery(result, true_parent, true_family, inputs.true_relation)
        out["score"] = {"clustering_accuracy": s.pairwise_clustering_accuracy,
                        "relation_accuracy": finite_or_none(s.relation_accuracy),
                        "adjusted_rand_index": s.adjusted_rand_index,
                        "directed_edge_accuracy": s.directed_edge_accuracy,
                        "undirected_edge_accuracy": s.undirected_edge_accuracy,
                        "root_accuracy": s.root_accuracy, "true_edges": s.true_edges}
        ctx.emit("score", out["score"], progress=1.0)
    return out


def recovery_csv(result: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["parent", "child", "distance", "relation", "confidence", "status"])
    for e in result.get("tree", {}).get("edges", []):
        writer.writerow([_cell(e["parent"]), _cell(e["child"]), repr(e["distance"]), e.get("relation", ""),
                         e.get("confidence", ""), e["status"]])
    return out.getvalue()


def _cell(text: str) -> str:
    # Checkpoint names are user text: never let a spreadsheet run one as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
