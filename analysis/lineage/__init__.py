"""Model-family trees: lineage graphs, importers, layouts, drift, kinship, recovery.

Pure Python/NumPy (plus PyTorch for the weight-based parts); never imports
Django, Celery or Channels.  Modules, one idea each:

- ``graph``: ``LineageGraph`` (a DAG kept acyclic), families, stats, ``ImportReport``
- ``records``: id/relation normalisation and the one place rows land in a graph
- ``edge_lists``: CSV/JSON edge lists, the Hugging Face snapshot files
- ``model_cards``: YAML front matter of model cards
- ``hub``: ``model_info`` responses (real client, or recorded replays)
- ``layout``: tidy (Buchheim-Walker) and radial layouts, collapsing, node cap
- ``drift``: trait transitions and change rates along edges
- ``kinship``: similarity of weight deltas (ModelKinship)
- ``recovery``: families and directed trees (with relations) from weights, metadata optional;
  its cues in ``weight_cues``, the streamed/sketched Gram matrix in ``weight_sketch``, the
  per-family tree in ``recovery_tree``, metadata in ``recovery_metadata``, scores in ``recovery_scoring``
- ``synthetic_zoo``: digits MLP families with known lineage (the classic zoo)
- ``zoo_recipes`` / ``zoo_models``: zoos made by many recipes (optimisers, converged roots,
  quantised leaves, merges, LoRA adapters, widths, a CNN) with true relations
- ``export``: JSON, GraphML, CSV

The torch-based modules (``kinship``, ``recovery``, the zoos) are
loaded on first use, so metadata-only callers do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .drift import categorical_drift, family_overview, numeric_drift
from .edge_lists import (
    HF_ANNOTATED_RELATIONS,
    HF_MODEL_CARD_EDGES,
    EdgeListFormat,
    ImportResult,
    detect_edge_format,
    import_edge_csv,
    import_edge_json,
    import_hf_snapshot,
)
from .export import to_csv_edges, to_csv_nodes, to_graphml, to_json, to_json_dict
from .graph import (
    RELATIONS,
    EdgeStatus,
    Family,
    FamilyStats,
    ImportIssue,
    ImportReport,
    LineageEdge,
    LineageGraph,
    LineageNode,
)
from .hub import HfHubClient, RecordedHubClient, import_from_hub, parse_model_info
from .layout import TreeLayout, radial_layout, tidy_tree_layout
from .model_cards import ModelCardError, import_model_cards, parse_model_card

_LAZY = {
    "delta_kinship": "kinship",
    "KinshipResult": "kinship",
    "recover_lineage": "recovery",
    "score_recovery": "recovery",
    "RecoveryResult": "recovery",
    "build_synthetic_zoo": "synthetic_zoo",
    "build_recipe_zoo": "zoo_recipes",
    "RECIPES": "zoo_recipes",
    "ModelMetadata": "recovery_metadata",
    "SyntheticZoo": "synthetic_zoo",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RELATIONS", "EdgeStatus", "Family", "FamilyStats", "ImportIssue", "ImportReport", "LineageEdge",
    "LineageGraph", "LineageNode", "EdgeListFormat", "ImportResult", "HF_ANNOTATED_RELATIONS",
    "HF_MODEL_CARD_EDGES", "detect_edge_format", "import_edge_csv", "import_edge_json", "import_hf_snapshot",
    "ModelCardError", "import_model_cards", "parse_model_card", "HfHubClient", "RecordedHubClient",
    "import_from_hub", "parse_model_info", "TreeLayout", "tidy_tree_layout", "radial_layout",
    "categorical_drift", "numeric_drift", "family_overview", "to_json", "to_json_dict", "to_graphml",
    "to_csv_edges", "to_csv_nodes", *_LAZY,
]
