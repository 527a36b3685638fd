"""Uploaded edge lists, model cards and Hub ids -> one library graph with one report.

Uploads are hostile until proven otherwise: each file is read under a size
cap, text is decoded leniently (one bad byte must not sink a file), files
with NUL bytes are refused as binary, and nothing is ever unpickled (CSV,
JSON and YAML via ``yaml.safe_load`` only).  A bad file or row is one entry
in the report; everything else still lands.
"""

from __future__ import annotations

import io
from pathlib import Path

from django.conf import settings

from analysis import lineage as lib
from webapp.lineage import hub
from webapp.lineage.models import MAX_MODEL_ID_CHARS

EDGE_SUFFIXES = (".csv", ".txt", ".json")
CARD_SUFFIXES = (".md", ".markdown")
MAX_FILES = 500
MAX_ROWS_PER_FILE = 200_000
MAX_HUB_IDS = 100
MAX_HUB_REQUESTS = 100  # synchronous, in the request: keep a slow Hub from holding it for minutes


def max_upload_bytes() -> int:
    """Per file; the whole request is capped at four times this."""
    return int(getattr(settings, "TERRAIN_LINEAGE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))


class UploadTooLarge(ValueError):
    pass


def read_upload(uploaded, limit: int) -> bytes:
    """The upload's bytes, refusing more than ``limit`` without reading them all."""
    if uploaded.size is not None and uploaded.size > limit:
        raise UploadTooLarge(f"{uploaded.size:,} bytes; the limit is {limit:,} per file")
    chunks, total = [], 0
    for chunk in uploaded.chunks():
        total += len(chunk)
        if total > limit:
            raise UploadTooLarge(f"over the limit of {limit:,} bytes per file")
        chunks.append(chunk)
    return b"".join(chunks)


def _text(data: bytes, name: str, report: lib.ImportReport) -> str | None:
    if b"\x00" in data[:65536]:
        report.add("malformed_row", "looks like a binary file (NUL bytes), not text; file skipped", source=name)
        return None
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd")
    if bad:
        report.add("bad_value", f"{bad} byte sequence(s) are not UTF-8 and were replaced by U+FFFD", source=name,
                   severity="warning")
    return text


def _model_id_from_filename(name: str) -> str:
    """``owner__model.md`` -> ``owner/model`` (a Hub id with "/" spelled "__", as the recordings are named)."""
    return Path(name).stem.replace("__", "/", 1)


def import_edge_text(text: str, name: str, graph: lib.LineageGraph, report: lib.ImportReport) -> None:
    common = {"graph": graph, "report": report, "source": name, "max_field_chars": MAX_MODEL_ID_CHARS,
              "max_rows": MAX_ROWS_PER_FILE, "finalize": False}
    if name.lower().endswith(".json") or text.lstrip()[:1] in ("[", "{"):
        lib.import_edge_json(io.StringIO(text), **common)
    else:
        lib.import_edge_csv(io.StringIO(text, newline=""), **common)


def lineage_import_inputs(
    *,
    edge_files=(),
    card_files=(),
    edges_text: str = "",
    hub_ids: list[str] = (),
    follow_parents: bool = False,
) -> lib.ImportResult:
    """Everything given, landed in one graph; never raises on bad content."""
    graph, report = lib.LineageGraph(), lib.ImportReport()
    limit = max_upload_bytes()
    for uploaded in list(edge_files)[:MAX_FILES]:
        name = Path(uploaded.name or "edges").name[:200]
        if not name.lower().endswith(EDGE_SUFFIXES):
            report.add("malformed_row", f"edge lists must be {', '.join(EDGE_SUFFIXES)} files; file skipped",
                       source=name)
            continue
        try:
            text = _text(read_upload(uploaded, limit), name, report)
        except UploadTooLarge as exc:
            report.add("oversized_field", f"file is {exc}; file skipped", source=name)
            continue
        if text is not None:
            import_edge_text(text, name, graph, report)
    if edges_text.strip():
        import_edge_text(edges_text, "pasted edges", graph, report)

    cards = []
    for uploaded in list(card_files)[:MAX_FILES]:
        name = Path(uploaded.name or "card.md").name[:200]
        if not name.lower().endswith(CARD_SUFFIXES):
            report.add("malformed_row", "model cards must be .md files named <owner>__<model>.md; file skipped",
                       source=name)
            continue
        try:
            text = _text(read_upload(uploaded, limit), name, report)
        except UploadTooLarge as exc:
            report.add("oversized_field", f"card is {exc}; skipped", source=name)
            continue
        if text is not None:
            cards.append((name, text))
    for name, text in cards:
        # One call per file so that each message names its file.
        lib.import_model_cards([(_model_id_from_filename(name), text)], graph=graph, report=report, source=name,
                               max_field_chars=MAX_MODEL_ID_CHARS, finalize=False)

    if hub_ids:
        lib.import_from_hub(list(hub_ids)[:MAX_HUB_IDS], hub.hub_client(), graph=graph, report=report,
                            follow_parents=follow_parents, max_models=MAX_HUB_REQUESTS,
                            max_field_chars=MAX_MODEL_ID_CHARS, finalize=False)
    report.refresh_missing_parents(graph)
    return lib.ImportResult(graph, report)
