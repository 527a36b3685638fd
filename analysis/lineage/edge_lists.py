"""Edge-list importers: CSV and JSON files of "child, parent(s)[, relation]" rows.

Column names are configurable (``EdgeListFormat``) and detected from the
header when not given, which covers the two Hugging Face snapshot files:

* ``model_cards_parent_edges.csv``: ``id, base_model`` (one parent per row)
* ``manually_annotated_relations.csv``: ``current_model, base_model,
  base_model_relation`` (merge rows list comma-separated parents, ``source``
  rows are roots, ``unknown`` rows have no parent, ``unknown_annotated`` rows
  have a parent whose relation kind is unknown)

Any other non-empty column lands as a node attribute, so a CSV with a
``license`` column feeds the drift statistics directly.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .graph import RELATIONS, EdgeStatus, ImportReport, LineageGraph
from .records import MAX_FIELD_CHARS, ModelRecord, apply_record, split_parent_field

_CHILD_COLUMNS = ("current_model", "id", "model_id", "modelId", "model", "child")
_PARENT_COLUMNS = ("base_model", "base_models", "parent", "parent_model", "parent_id")
_RELATION_COLUMNS = ("base_model_relation", "relation", "relationship")

# Columns whose values are numbers in every source we know; everything else
# stays a string so ids and version-like licences are never mangled.
_NUMERIC_ATTRS = frozenset({"downloads", "likes", "card_length", "created_ts"})

DEFAULT_MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class EdgeListFormat:
    child_column: str
    parent_column: str
    relation_column: str | None = None
    parent_separator: str | None = ","


HF_MODEL_CARD_EDGES = EdgeListFormat("id", "base_model", None)
HF_ANNOTATED_RELATIONS = EdgeListFormat("current_model", "base_model", "base_model_relation")


@dataclass
class ImportResult:
    graph: LineageGraph
    report: ImportReport


def detect_edge_format(columns: Iterable[str]) -> EdgeListFormat | None:
    """Pick child/parent/relation columns from a header, or None if impossible."""
    present = {c.strip(): c for c in columns if c is not None}
    child = next((present[c] for c in _CHILD_COLUMNS if c in present), None)
    parent = next((present[c] for c in _PARENT_COLUMNS if c in present), None)
    relation = next((present[c] for c in _RELATION_COLUMNS if c in present), None)
    if child is None or parent is None:
        return None
    return EdgeListFormat(child, parent, relation)


def _coerce(column: str, value: str) -> Any:
    if column in _NUMERIC_ATTRS:
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _rows_to_records(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    fmt: EdgeListFormat,
    graph: LineageGraph,
    report: ImportReport,
    source: str,
    max_field_chars: int,
    max_rows: int | None,
) -> None:
    seen: dict[str, int] = {}
    structural = {fmt.child_column, fmt.parent_column, fmt.relation_column}
    for count, (row, values) in enumerate(rows, start=1):
        if max_rows is not None and count > max_rows:
            report.add("too_many_rows", f"stopped after {max_rows} rows (max_rows)", row=row, source=source)
            break
        report.rows_read += 1
        if not isinstance(values, Mapping):
            report.add("malformed_row", f"expected an object with keys, got {type(values).__name__}; row skipped",
                       row=row, source=source)
            continue
        oversized = [
            str(k)[:40] for k, v in values.items()
            if v is not None and len(v if isinstance(v, str) else str(v)) > max_field_chars
        ]
        if oversized:
            report.add(
                "oversized_field",
                f"field(s) {', '.join(oversized)} longer than {max_field_chars} characters; row skipped",
                row=row,
                source=source,
            )
            continue
        child = values.get(fmt.child_column)
        if child is None or not str(child).strip():
            report.add("missing_value", f"no value in column {fmt.child_column!r}; row skipped",
                       row=row, source=source)
            continue
        if isinstance(child, (dict, list)):
            report.add("bad_value", f"column {fmt.child_column!r} holds a {type(child).__name__}, "
                       "expected a model id; row skipped", row=row, source=source)
            continue
        raw_parents = values.get(fmt.parent_column)
        if raw_parents is not None and not isinstance(raw_parents, (str, list, tuple)):
            report.add("bad_value", f"column {fmt.parent_column!r} holds a {type(raw_parents).__name__}, "
                       "expected model id(s); parents ignored", row=row, source=source)
            raw_parents = None
        elif isinstance(raw_parents, (list, tuple)) and not all(isinstance(p, str) for p in raw_parents):
            report.add("bad_value", f"column {fmt.parent_column!r} lists non-text entries; those ignored",
                       row=row, source=source)
            raw_parents = [p for p in raw_parents if isinstance(p, str)]
        relation = values.get(fmt.relation_column) if fmt.relation_column else None
        attrs = {
            str(k): _coerce(str(k), v) if isinstance(v, str) else v
            for k, v in values.items()
            if k not in structural and k is not None and v not in (None, "")
        }
        # csv.DictReader files surplus fields under the None key.
        if None in values:
            report.add("malformed_row", "more fields than header columns; extra fields ignored",
                       row=row, source=source, severity="warning")
        record = ModelRecord(
            model_id=str(child),
            parents=split_parent_field(raw_parents, fmt.parent_separator),
            relation=None if relation is None else str(relation),
            attrs=attrs,
        )
        if apply_record(graph, record, report, row=row, source=source, max_field_chars=max_field_chars,
                        seen_in_source=seen):
            report.rows_imported += 1


def _csv_rows(handle: IO[str], report: ImportReport, source: str) -> tuple[list[str] | None, Iterator]:
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        report.add("missing_column", "file is empty (no header row)", row=1, source=source)
        return None, iter(())
    except csv.Error as exc:
        report.add("malformed_row", f"unreadable header: {exc}", row=1, source=source)
        return None, iter(())
    header = [h.strip().lstrip("\ufeff") for h in header]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        line = reader.line_num
        while True:
            start = line + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The csv module recovers after an error, so report and go on.
                report.rows_read += 1
                report.add("malformed_row", f"unparseable CSV: {exc}; row skipped", row=start, source=source)
                line = reader.line_num
                continue
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            values: dict[Any, Any] = dict(zip(header, fields))
            if len(fields) > len(header):
                values[None] = fields[len(header):]
            yield start, values

    return header, rows()


def _open_text(path_or_file: str | os.PathLike | IO[str], max_bytes: int) -> tuple[IO[str], bool, str]:
    if hasattr(path_or_file, "read"):
        return path_or_file, False, getattr(path_or_file, "name", "<stream>")  # type: ignore[return-value]
    path = Path(path_or_file)  # type: ignore[arg-type]
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path.name} is {size} bytes, more than the {max_bytes}-byte limit")
    # errors="replace": one bad byte must not sink a 20k-row import.
    return open(path, encoding="utf-8", errors="replace", newline=""), True, path.name


def import_edge_csv(
    path_or_file: str | os.PathLike | IO[str],
    *,
    fmt: EdgeListFormat | None = None,
    graph: LineageGraph | None = None,
    report: ImportReport | None = None,
    source: str | None = None,
    max_field_chars: int = MAX_FIELD_CHARS,
    max_rows: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    finalize: bool = True,
) -> ImportResult:
    """Import a CSV edge list into ``graph`` (a new one if None).

    Bad rows are reported in ``report`` and skipped; they never raise.  With
    ``finalize`` the placeholder parents are (re)reported as missing parents;
    pass False when more files follow and call
    ``report.refresh_missing_parents(graph)`` at the end.
    """
    graph = graph if graph is not None else LineageGraph()
    report = report if report is not None else ImportReport()
    handle, owned, name = _open_text(path_or_file, max_bytes)
    source = source or name
    try:
        header, rows = _csv_rows(handle, report, source)
        if header is not None:
            chosen = _check_columns(header, fmt, report, source)
            if chosen is not None:
                _rows_to_records(rows, chosen, graph, report, source, max_field_chars, max_rows)
    finally:
        if owned:
            handle.close()
    if finalize:
        report.refresh_missing_parents(graph)
    return ImportResult(graph, report)


def _check_columns(
    header: list[str], fmt: EdgeListFormat | None, report: ImportReport, source: str
) -> EdgeListFormat | None:
    shown = ", ".join(repr(h[:40]) for h in header[:20]) or "(none)"
    if fmt is None:
        fmt = detect_edge_format(header)
        if fmt is None:
            report.add(
                "missing_column",
                f"cannot find a child column (one of {', '.join(_CHILD_COLUMNS)}) and a parent column "
                f"(one of {', '.join(_PARENT_COLUMNS)}); columns found: {shown}; nothing imported",
                row=1,
                source=source,
            )
            return None
        return fmt
    missing = [c for c in (fmt.child_column, fmt.parent_column) if c not in header]
    if missing:
        report.add("missing_column", f"required column(s) {', '.join(map(repr, missing))} not in header "
                   f"({shown}); nothing imported", row=1, source=source)
        return None
    if fmt.relation_column and fmt.relation_column not in header:
        report.add("missing_column", f"relation column {fmt.relation_column!r} not in header; relations "
                   "left unknown", row=1, source=source, severity="warning")
        fmt = EdgeListFormat(fmt.child_column, fmt.parent_column, None, fmt.parent_separator)
    return fmt


def import_edge_json(
    path_or_file: str | os.PathLike | IO[str],
    *,
    fmt: EdgeListFormat | None = None,
    graph: LineageGraph | None = None,
    report: ImportReport | None = None,
    source: str | None = None,
    max_field_chars: int = MAX_FIELD_CHARS,
    max_rows: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    finalize: bool = True,
) -> ImportResult:
    """Import JSON: a list of row objects, ``{"edges": [...]}``, or this
    package's own export (``{"format": "terrain-lineage/1", "nodes", "edges"}``)."""
    graph = graph if graph is not None else LineageGraph()
    report = report if report is not None else ImportReport()
    handle, owned, name = _open_text(path_or_file, max_bytes)
    source = source or name
    try:
        text = handle.read(max_bytes + 1)
    finally:
        if owned:
            handle.close()
    try:
        if len(text) > max_bytes:
            raise ValueError(f"more than {max_bytes} characters")
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        report.add("malformed_row", f"not valid JSON: {exc}; nothing imported", source=source)
        data = None
    if isinstance(data, dict) and data.get("format") == "terrain-lineage/1":
        _import_exported(data, graph, report, source, max_field_chars)
    elif data is not None:
        rows = data.get("edges") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            report.add("missing_column", "expected a list of rows or an object with an 'edges' list; "
                       "nothing imported", source=source)
        else:
            keys = {k for r in rows[:1000] if isinstance(r, dict) for k in r}
            chosen = _check_columns(sorted(keys), fmt, report, source) if rows else None
            if chosen is not None:
                _rows_to_records(((i, r) for i, r in enumerate(rows, start=1)), chosen, graph, report,
                                 source, max_field_chars, max_rows)
    if finalize:
        report.refresh_missing_parents(graph)
    return ImportResult(graph, report)


def _import_exported(data: dict, graph: LineageGraph, report: ImportReport, source: str,
                     max_field_chars: int) -> None:
    """Round-trip this package's JSON export (nodes keep attrs and placeholders)."""
    for i, node in enumerate(data.get("nodes") or [], start=1):
        report.rows_read += 1
        node_id = node.get("id") if isinstance(node, dict) else None
        if not isinstance(node_id, str) or not node_id or len(node_id) > max_field_chars:
            report.add("bad_value", "node without a usable 'id'; skipped", row=i, source=source)
            continue
        attrs = node.get("attrs") if isinstance(node.get("attrs"), dict) else {}
        graph.add_node(node_id, attrs, placeholder=bool(node.get("placeholder")))
        report.rows_imported += 1
    for i, edge in enumerate(data.get("edges") or [], start=1):
        if not isinstance(edge, dict) or not all(isinstance(edge.get(k), str) and edge.get(k) for k in
                                                  ("parent", "child")):
            report.add("bad_value", "edge without 'parent' and 'child' ids; skipped", row=i, source=source)
            continue
        relation = edge.get("relation") if edge.get("relation") in RELATIONS else "unknown"
        status = graph.add_edge(edge["parent"], edge["child"], relation, str(edge.get("source") or source))
        if status is not EdgeStatus.ADDED:
            report.add(status.value if status is not EdgeStatus.DUPLICATE else "duplicate_edge",
                       f"edge {edge['parent']!r} -> {edge['child']!r}: {status.value}; skipped",
                       row=i, source=source)


HF_SNAPSHOT_FILES = ("model_cards_parent_edges.csv", "manually_annotated_relations.csv")


def import_hf_snapshot(
    directory: str | os.PathLike,
    *,
    graph: LineageGraph | None = None,
    report: ImportReport | None = None,
    max_field_chars: int = MAX_FIELD_CHARS,
) -> ImportResult:
    """Import the Model Atlas snapshot (both files, model-card edges first).

    Nodes are every model with a row in either file; parents without a row
    become placeholders and are reported as missing parents once, at the end.
    """
    graph = graph if graph is not None else LineageGraph()
    report = report if report is not None else ImportReport()
    directory = Path(directory)
    for name in HF_SNAPSHOT_FILES:
        path = directory / name
        if not path.exists():
            report.add("missing_column", f"{name} not found in {directory}", source=name)
            continue
        import_edge_csv(path, graph=graph, report=report, source=name, max_field_chars=max_field_chars,
                        finalize=False)
    report.refresh_missing_parents(graph)
    return ImportResult(graph, report)


def import_edge_text(text: str, **kwargs: Any) -> ImportResult:
    """Convenience for uploads already in memory: CSV text."""
    return import_edge_csv(io.StringIO(text), **kwargs)
