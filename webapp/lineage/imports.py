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
MAX_HUB_REQUESTS = 100  # one worker, one request at a time: keep a slow Hub from holding it for many minutes


def max_upload_bytes() -> int:
    """Per file; the whole request is capped at four times this."""
    return int(getattr(settings, "TERRAIN_LINEAGE_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))


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


def lineage_import_files(
    *,
    edge_files: list[tuple[str, bytes]] = (),
    card_files: list[tuple[str, bytes]] = (),
    hub_ids: list[str] = (),
    follow_parents: bool = False,
    hub_client=None,
    on_progress=None,
) -> lib.ImportResult:
    """Every (name, bytes) file and Hub id given, landed in one graph; never raises on bad content.

    ``on_progress(kind, payload)`` hears of each file read and each Hub request (the job streams them).
    """
    graph, report = lib.LineageGraph(), lib.ImportReport()
    progress = on_progress or (lambda kind, payload: None)
    limit = max_upload_bytes()

    def read(name: str, data: bytes, kind: str) -> str | None:
        if len(data) > limit:  # checked in the request already; a file swapped in storage is not trusted either
            report.add("oversized_field", f"file is over the limit of {limit:,} bytes; file skipped", source=name)
            return None
        return _text(data, name, report)

    for name, data in list(edge_files)[:MAX_FILES]:
        before = len(report.errors) + len(report.warnings)
        text = read(name, data, "edges")
        if text is not None:
            import_edge_text(text, name, graph, report)
        progress("file", {"name": name, "kind": "edges", "models": graph.num_nodes, "edges": graph.num_edges,
                          "issues": len(report.errors) + len(report.warnings) - before})
    for name, data in list(card_files)[:MAX_FILES]:
        before = len(report.errors) + len(report.warnings)
        text = read(name, data, "card")
        if text is not None:
            # One call per file so that each message names its file.
            lib.import_model_cards([(_model_id_from_filename(name), text)], graph=graph, report=report, source=name,
                                   max_field_chars=MAX_MODEL_ID_CHARS, finalize=False)
        progress("file", {"name": name, "kind": "card", "models": graph.num_nodes, "edges": graph.num_edges,
                          "issues": len(report.errors) + len(report.warnings) - before})
    if hub_ids:
        client = _ReportingHubClient(hub_client or hub.hub_client(), progress)
        lib.import_from_hub(list(hub_ids)[:MAX_HUB_IDS], client, graph=graph, report=report,
                            follow_parents=follow_parents, max_models=MAX_HUB_REQUESTS,
                            max_field_chars=MAX_MODEL_ID_CHARS, finalize=False)
    report.refresh_missing_parents(graph)
    return lib.ImportResult(graph, report)


class _ReportingHubClient:
    """The Hub client, telling ``progress`` of each request before it is made."""

    def __init__(self, client, progress):
        self._client, self._progress, self.requests = client, progress, 0

    def model_info(self, repo_id: str):
        self.requests += 1
        self._progress("hub", {"model": repo_id, "request": self.requests, "budget": MAX_HUB_REQUESTS})
        return self._client.model_info(repo_id)
