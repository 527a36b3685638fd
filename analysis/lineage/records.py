"""One model's lineage facts, and the single place they are checked and landed.

Every importer (CSV/JSON edge lists, model cards, the Hub) turns its input into
``ModelRecord`` objects and hands them to ``apply_record``, so the rules for
ids, relations, oversized fields and graph conflicts live in one place and
give the same per-row messages whatever the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .graph import RELATIONS, EdgeStatus, ImportReport, LineageGraph

MAX_FIELD_CHARS = 1000

# Hugging Face repo ids are "name" or "owner/name" with letters, digits,
# "-", "_" and ".".  Ids outside that shape are kept (the data is the data)
# but flagged, because they are usually scraping debris such as HTML tails.
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?$")

_RELATION_ALIASES: dict[str, str] = {
    "finetune": "finetune",
    "fine-tune": "finetune",
    "fine_tune": "finetune",
    "finetuned": "finetune",
    "fine-tuned": "finetune",
    "adapter": "adapter",
    "adapters": "adapter",
    "lora": "adapter",
    "peft": "adapter",
    "quantized": "quantized",
    "quantised": "quantized",
    "quantization": "quantized",
    "quant": "quantized",
    "merge": "merge",
    "merged": "merge",
    "unknown": "unknown",
    # Model Atlas annotation: the parent is known, the kind of derivation is not.
    "unknown_annotated": "unknown",
}

# "source" marks an original model (a root) in the Model Atlas annotations.
ROOT_MARKERS = frozenset({"source", "root", "original"})


def normalize_model_id(raw: Any) -> str:
    """Strip whitespace and trailing slashes ("org/model/" -> "org/model")."""
    if raw is None:
        return ""
    return str(raw).strip().rstrip("/").strip()


def looks_like_repo_id(model_id: str) -> bool:
    return bool(_REPO_ID.match(model_id))


def split_parent_field(raw: Any, separator: str | None = ",") -> list[str]:
    """Parents from one field.  Commas never occur in Hub ids, so a comma
    always separates parents (merge rows, or a stray trailing comma)."""
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        pieces = [str(p) for p in raw]
    elif separator:
        pieces = str(raw).split(separator)
    else:
        pieces = [str(raw)]
    parents = []
    for piece in pieces:
        pid = normalize_model_id(piece)
        if pid and pid not in parents:
            parents.append(pid)
    return parents


@dataclass
class ModelRecord:
    """What one input row says about one model."""

    model_id: str
    parents: list[str] = field(default_factory=list)
    relation: str | None = None  # raw relation text as found in the input
    attrs: dict[str, Any] = field(default_factory=dict)


def normalize_relation(raw: str | None, num_parents: int) -> tuple[str, bool, str | None]:
    """Map raw relation text to (relation, declared_root, problem).

    Without a stated relation, several parents mean a merge (the Hub infers
    the same); one parent stays "unknown" rather than guessing "finetune".
    """
    text = (raw or "").strip().lower()
    if not text:
        return ("merge" if num_parents > 1 else "unknown"), False, None
    if text in ROOT_MARKERS:
        return "unknown", True, None
    if text in _RELATION_ALIASES:
        return _RELATION_ALIASES[text], False, None
    if text.startswith("unknown"):
        return "unknown", False, None
    shown = text if len(text) <= 60 else text[:57] + "..."
    return "unknown", False, f"unknown relation {shown!r} (expected one of {', '.join(RELATIONS)} or 'source')"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def apply_record(
    graph: LineageGraph,
    record: ModelRecord,
    report: ImportReport,
    *,
    row: int | None,
    source: str,
    max_field_chars: int = MAX_FIELD_CHARS,
    seen_in_source: dict[str, int] | None = None,
) -> bool:
    """Land one record in the graph, reporting (never raising) on bad data.

    Returns True when the model itself was imported (even if some of its
    parent edges were refused).
    """
    model_id = normalize_model_id(record.model_id)
    if not model_id:
        report.add("missing_value", "empty model id; row skipped", row=row, source=source)
        return False
    if len(model_id) > max_field_chars:
        report.add(
            "oversized_field",
            f"model id is {len(model_id)} characters (limit {max_field_chars}); row skipped",
            row=row,
            source=source,
        )
        return False
    if not looks_like_repo_id(model_id):
        report.add("suspicious_id", f"model id {_shorten(model_id)!r} is not an owner/name repo id; kept",
                   row=row, source=source, severity="warning")

    if seen_in_source is not None:
        if model_id in seen_in_source:
            report.add(
                "duplicate_row",
                f"{model_id!r} already appeared on row {seen_in_source[model_id]}; facts merged",
                row=row,
                source=source,
                severity="warning",
            )
        else:
            seen_in_source[model_id] = row if row is not None else -1

    parents: list[str] = []
    for parent in record.parents:
        if len(parent) > max_field_chars:
            report.add(
                "oversized_field",
                f"parent id of {model_id!r} is {len(parent)} characters (limit {max_field_chars}); edge skipped",
                row=row,
                source=source,
            )
            continue
        parents.append(parent)

    relation, declared_root, problem = normalize_relation(record.relation, len(parents))
    if problem:
        report.add("unknown_relation", f"{problem}; {model_id!r} kept with relation 'unknown'",
                   row=row, source=source, severity="warning")

    attrs = dict(record.attrs)
    if declared_root:
        attrs["declared_root"] = True
    graph.add_node(model_id, attrs)

    if declared_root and (parents or graph.parents(model_id)):
        others = parents or graph.parents(model_id)
        report.add(
            "conflict",
            f"{model_id!r} is annotated as a source model but has parent(s) {_shorten(', '.join(others))!r}; "
            "parent edges kept",
            row=row,
            source=source,
            severity="warning",
        )

    for parent in parents:
        if not looks_like_repo_id(parent):
            report.add("suspicious_id", f"parent id {_shorten(parent)!r} of {model_id!r} is not an owner/name "
                       "repo id; kept", row=row, source=source, severity="warning")
        if parent not in graph:
            report.note_reference(parent, row, source)
        status = graph.add_edge(parent, model_id, relation, source)
        if status is EdgeStatus.SELF_LOOP:
            report.add("self_loop", f"{model_id!r} lists itself as its base model; edge skipped",
                       row=row, source=source)
        elif status is EdgeStatus.DUPLICATE:
            report.add("duplicate_edge", f"edge {parent!r} -> {model_id!r} already imported; ignored",
                       row=row, source=source, severity="warning")
        elif status is EdgeStatus.CYCLE:
            report.add("cycle", f"edge {parent!r} -> {model_id!r} would close a cycle "
                       f"({model_id!r} is already an ancestor of {parent!r}); edge skipped",
                       row=row, source=source)
    return True
