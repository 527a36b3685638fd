"""Model-card metadata: the YAML front matter at the top of a Hub README.md.

Only ``yaml.safe_load`` is used (cards are untrusted text), the front matter
size is capped before parsing, and every problem becomes a message instead of
an exception escaping the importer.  ``card_metadata_fields`` is shared with
the Hub importer, whose ``cardData`` is the same mapping already parsed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .edge_lists import ImportResult
from .graph import ImportReport, LineageGraph
from .records import MAX_FIELD_CHARS, ModelRecord, apply_record, split_parent_field

MAX_FRONT_MATTER_CHARS = 64 * 1024
MAX_CARD_CHARS = 2 * 1024 * 1024


class ModelCardError(ValueError):
    """The card cannot be used at all (bad YAML, wrong shape, too large)."""


class CardTooLargeError(ModelCardError):
    """The card or its front matter exceeds the size limit."""


@dataclass
class ModelCard:
    model_id: str
    base_models: list[str]
    relation: str | None
    attrs: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # non-fatal, per field


def split_front_matter(text: str) -> tuple[str | None, str]:
    """Return (front matter YAML or None, body).  The block must open the card."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith("---"):
        return None, text
    lines = stripped.split("\n")
    if lines[0].strip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:])
    raise ModelCardError("front matter opened with '---' is never closed")


def _text_list(value: Any, name: str, problems: list[str]) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value.strip()] if value.strip() else None
    if isinstance(value, list):
        good = [v.strip() for v in value if isinstance(v, str) and v.strip()]
        if len(good) != len(value):
            problems.append(f"{name}: ignored {len(value) - len(good)} entr(y/ies) that are not text")
        return good or None
    problems.append(f"{name}: expected text or a list of text, got {type(value).__name__}; ignored")
    return None


def _metrics_from_model_index(model_index: Any, problems: list[str]) -> dict[str, float]:
    """Flatten ``model-index`` results to ``{"dataset/metric": value}``."""
    metrics: dict[str, float] = {}
    if model_index is None:
        return metrics
    if not isinstance(model_index, list):
        problems.append("model-index: expected a list; ignored")
        return metrics
    for entry in model_index:
        results = entry.get("results") if isinstance(entry, dict) else None
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            dataset = result.get("dataset")
            dataset_name = None
            if isinstance(dataset, dict):
                dataset_name = dataset.get("name") or dataset.get("type")
            for metric in result.get("metrics") or []:
                if not isinstance(metric, dict):
                    continue
                value = metric.get("value")
                kind = metric.get("type") or metric.get("name")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not isinstance(kind, str):
                    continue
                if not math.isfinite(value):
                    continue
                key = f"{dataset_name}/{kind}" if isinstance(dataset_name, str) else kind
                metrics[key[:200]] = float(value)
    return metrics


def card_metadata_fields(meta: Mapping[str, Any]) -> tuple[list[str], str | None, dict[str, Any], list[str]]:
    """(parents, raw relation, attrs, problems) from card metadata."""
    problems: list[str] = []
    attrs: dict[str, Any] = {}

    raw_base = meta.get("base_model")
    parents: list[str] = []
    if isinstance(raw_base, str):
        parents = split_parent_field(raw_base)
    elif isinstance(raw_base, list):
        texts = [b for b in raw_base if isinstance(b, str)]
        if len(texts) != len(raw_base):
            problems.append(f"base_model: ignored {len(raw_base) - len(texts)} entr(y/ies) that are not text")
        parents = split_parent_field(texts)
    elif raw_base is not None:
        problems.append(f"base_model: expected a model id or a list of ids, got {type(raw_base).__name__}; "
                        "ignored")

    raw_relation = meta.get("base_model_relation")
    relation: str | None = None
    if isinstance(raw_relation, str):
        relation = raw_relation
    elif raw_relation is not None:
        problems.append(f"base_model_relation: expected text, got {type(raw_relation).__name__}; ignored")
    if relation and not parents:
        problems.append(f"base_model_relation {relation[:40]!r} given without a base_model")

    licence = _text_list(meta.get("license"), "license", problems)
    if licence:
        attrs["license"] = licence[0] if len(licence) == 1 else ",".join(sorted(licence))
    language = _text_list(meta.get("language"), "language", problems)
    if language:
        attrs["language"] = sorted(set(language))
    for key, attr in (("pipeline_tag", "task"), ("library_name", "library")):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            attrs[attr] = value.strip()
        elif value is not None:
            problems.append(f"{key}: expected text, got {type(value).__name__}; ignored")
    tags = _text_list(meta.get("tags"), "tags", problems)
    if tags:
        attrs["tags"] = tags
    metrics = _metrics_from_model_index(meta.get("model-index"), problems)
    if metrics:
        attrs["metrics"] = metrics
    return parents, relation, attrs, problems


def parse_model_card(text: str, model_id: str, *, max_front_matter_chars: int = MAX_FRONT_MATTER_CHARS) -> ModelCard:
    """Parse a README.md.  Raises ``ModelCardError`` when nothing is usable."""
    if not isinstance(text, str):
        raise ModelCardError(f"card text must be a string, got {type(text).__name__}")
    front, body = split_front_matter(text)
    meta: Any = {}
    if front is not None:
        if len(front) > max_front_matter_chars:
            raise CardTooLargeError(f"front matter is {len(front)} characters (limit {max_front_matter_chars})")
        try:
            meta = yaml.safe_load(front)
        except yaml.YAMLError as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                # Marks are 0-based and the front matter starts after the "---" line.
                leading = text[: len(text) - len(text.lstrip("\ufeff \t\r\n"))].count("\n")
                where = f" at line {mark.line + 2 + leading}, column {mark.column + 1} of the card"
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ModelCardError(f"invalid YAML{where}: {problem}") from None
        except RecursionError:  # PyYAML composes recursively: hostile nesting must not escape
            raise ModelCardError("invalid YAML: nested too deeply") from None
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise ModelCardError(f"front matter is a {type(meta).__name__}, expected a mapping of fields")
    parents, relation, attrs, problems = card_metadata_fields(meta)
    attrs["card_length"] = len(body.strip())
    return ModelCard(model_id=model_id, base_models=parents, relation=relation, attrs=attrs, problems=problems)


def import_model_cards(
    cards: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    graph: LineageGraph | None = None,
    report: ImportReport | None = None,
    source: str = "model cards",
    max_card_chars: int = MAX_CARD_CHARS,
    max_field_chars: int = MAX_FIELD_CHARS,
    finalize: bool = True,
) -> ImportResult:
    """Import ``(model_id, README text)`` pairs; row numbers count pairs from 1."""
    graph = graph if graph is not None else LineageGraph()
    report = report if report is not None else ImportReport()
    items = cards.items() if isinstance(cards, Mapping) else cards
    seen: dict[str, int] = {}
    for row, item in enumerate(items, start=1):
        report.rows_read += 1
        try:
            model_id, text = item
        except (TypeError, ValueError):
            report.add("malformed_row", "expected a (model id, card text) pair; skipped", row=row, source=source)
            continue
        if not isinstance(model_id, str):
            report.add("bad_value", "model id is not text; card skipped", row=row, source=source)
            continue
        if not isinstance(text, str):
            report.add("bad_value", f"card of {model_id[:80]!r} is a {type(text).__name__}, not text; skipped",
                       row=row, source=source)
            continue
        if len(text) > max_card_chars:
            report.add("oversized_field", f"card of {model_id[:80]!r} is {len(text)} characters "
                       f"(limit {max_card_chars}); skipped", row=row, source=source)
            continue
        try:
            card = parse_model_card(text, model_id)
        except ModelCardError as exc:
            kind = "oversized_field" if isinstance(exc, CardTooLargeError) else "bad_yaml"
            report.add(kind, f"card of {model_id[:80]!r}: {exc}; skipped", row=row, source=source)
            continue
        for problem in card.problems:
            report.add("bad_value", f"card of {model_id[:80]!r}: {problem}", row=row, source=source,
                       severity="warning")
        record = ModelRecord(model_id, card.base_models, card.relation, card.attrs)
        if apply_record(graph, record, report, row=row, source=source, max_field_chars=max_field_chars,
                        seen_in_source=seen):
            report.rows_imported += 1
    if finalize:
        report.refresh_missing_parents(graph)
    return ImportResult(graph, report)
