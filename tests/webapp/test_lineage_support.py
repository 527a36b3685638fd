"""Helpers shared by the lineage web tests (no tests here).

``hf_independent_counts`` re-derives the Hugging Face snapshot's graph with the
csv module, sets and a union-find of its own, never the library's code.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from django.conf import settings

from analysis import lineage as lib
from webapp.catalog.services import checkpoint_create_from_file, experiment_create
from webapp.catalog.visibility import Visibility
from webapp.lineage import services

HF_DIR = settings.BASE_DIR / "data" / "hf-lineage"
HUB_FIXTURES = settings.BASE_DIR / "tests" / "lineage" / "fixtures" / "hub"
SPEC = {"kind": "mlp", "in": 4, "hidden": [3], "out": 2}


def graph_from_csv(text: str, *, owner, name: str = "test graph", visibility: str = Visibility.PUBLIC,
                   experiment=None):
    """A stored graph from CSV text, through the same services as the import form."""
    result = lib.import_edge_csv(io.StringIO(text, newline=""), source="edges.csv")
    return services.lineage_graph_import(owner=owner, name=name, result=result, source="upload",
                                         experiment=experiment, visibility=visibility)


def hf_independent_counts(directory: Path) -> dict:
    def clean(text: str) -> str:
        return text.strip().rstrip("/").strip()

    rows: list[str] = []
    pairs: Counter = Counter()
    self_loops = 0
    files = (("model_cards_parent_edges.csv", "id", None), ("manually_annotated_relations.csv", "current_model",
                                                             "base_model_relation"))
    for name, child_column, relation_column in files:
        with open(directory / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                child = clean(row[child_column])
                rows.append(child)
                if relation_column and row[relation_column] == "source":
                    continue  # annotated roots have no parent
                for parent in {clean(p) for p in row["base_model"].split(",")} - {""}:
                    if parent == child:
                        self_loops += 1
                    else:
                        pairs[(parent, child)] += 1
    edges = set(pairs)
    nodes = set(rows) | {p for p, _ in edges} | {c for _, c in edges}
    children = {c for _, c in edges}

    # Union-find over the undirected edges: families.
    up = {n: n for n in nodes}

    def find(n: str) -> str:
        while up[n] != n:
            up[n] = up[up[n]]
            n = up[n]
        return n

    for p, c in edges:
        a, b = find(p), find(c)
        if a != b:
            up[a] = b
    sizes = Counter(find(n) for n in nodes)
    roots_per_family = Counter(find(n) for n in nodes - children)
    return {
        "nodes": len(nodes), "edges": len(edges), "roots": len(nodes - children), "families": len(sizes),
        "largest": max(sizes.values()), "self_loops": self_loops, "duplicates": sum(v - 1 for v in pairs.values()),
        "placeholders": len(nodes - set(rows)), "rows": len(rows),
        # Every family as (size, number of roots), largest first: a fingerprint of the whole partition.
        "family_shapes": sorted(((sizes[r], roots_per_family[r]) for r in sizes), reverse=True),
    }


def tiny_state(seed: int = 0, spec: dict = SPEC) -> dict:
    """Weights of the SPEC MLP (or another spec), seeded."""
    import torch

    from analysis import zoo

    torch.manual_seed(seed)
    return {k: v.detach().clone() for k, v in zoo.build(spec).state_dict().items()}


def saved_checkpoint(experiment, name: str, state: dict, tmp_path: Path, *, parent=None, relation: str = "",
                     dataset: str = "digits", spec: dict = SPEC):
    """A real safetensors checkpoint of the tiny SPEC MLP (or another spec) in the catalog."""
    from analysis import checkpoints

    path = tmp_path / f"{name}.safetensors"
    checkpoints.save(path, state, spec)
    return checkpoint_create_from_file(experiment=experiment, name=name, path=path, spec=spec, dataset=dataset,
                                       num_parameters=sum(t.numel() for t in state.values()), parent=parent,
                                       relation=relation)


def experiment(owner, visibility=Visibility.PUBLIC, title="lineage test"):
    return experiment_create(title=title, owner=owner, visibility=visibility)
