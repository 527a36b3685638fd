"""Which node attributes a tree can be coloured by (and compared along edges).

Attributes come from whatever the source carried: CSV columns, model-card
fields, Hub metadata, checkpoint metrics.  A trait is *categorical* (text,
booleans, lists of text such as languages) or *numeric* (numbers, including
``metrics.<name>`` inside a card's metrics).  Id-like fields that would give
every node its own colour are left out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from analysis import lineage as lib
from analysis.json_safe import finite_or_none

NOT_TRAITS = frozenset({"checkpoint", "created", "tags", "declared_root_row"})
MAX_TRAITS = 24
# Present on every tree whatever the source: computed from the graph itself.
DERIVED_TRAITS = [
    {"name": "relation", "kind": "categorical", "label": "relation to parent"},
    {"name": "generation", "kind": "numeric", "label": "generation"},
    {"name": "children", "kind": "numeric", "label": "number of children"},
    {"name": "placeholder", "kind": "categorical", "label": "placeholder (no row of its own)"},
]


def _kind_of(value: Any) -> str | None:
    if isinstance(value, (bool, str)):
        return "categorical"
    if isinstance(value, (int, float)):
        return "numeric" if finite_or_none(value) is not None else None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return "categorical"
    return None


def _flat(attrs: dict) -> dict[str, Any]:
    flat = {}
    for key, value in attrs.items():
        if key in NOT_TRAITS:
            continue
        if isinstance(value, dict) and key == "metrics":
            for name, metric in value.items():
                if isinstance(metric, (int, float)) and not isinstance(metric, bool):
                    flat[f"metrics.{name}"] = metric
        else:
            flat[key] = value
    return flat


def traits_of(graph: lib.LineageGraph) -> list[dict]:
    """[{name, kind, count}] of attributes seen on nodes, most common first."""
    kinds: dict[str, Counter] = {}
    for node in graph.nodes():
        for key, value in _flat(node.attrs).items():
            kind = _kind_of(value)
            if kind:
                kinds.setdefault(key, Counter())[kind] += 1
    traits = []
    for name, counter in kinds.items():
        kind = counter.most_common(1)[0][0]
        traits.append({"name": name, "kind": kind, "count": sum(counter.values()), "label": name.replace("_", " ")})
    traits.sort(key=lambda t: (-t["count"], t["name"]))
    return traits[:MAX_TRAITS]


def categorical_value(value: Any) -> str | None:
    """Same folding as the library's drift: case-insensitive, lists as sorted sets."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        parts = sorted({str(v).strip().lower() for v in value if str(v).strip()})
        return ",".join(parts) or None
    text = str(value).strip().lower()
    return text[:80] or None


def numeric_value(value: Any) -> float | None:
    return finite_or_none(value) if isinstance(value, (int, float)) else None


def trait_value(attrs: dict, name: str) -> Any:
    return lib.drift.trait_value(attrs, name)
