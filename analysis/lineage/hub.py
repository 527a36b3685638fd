"""Lineage from the Hugging Face Hub's ``model_info`` responses.

The network sits behind ``ModelInfoClient`` (anything with
``model_info(repo_id)``): ``HfHubClient`` calls the real Hub,
``RecordedHubClient`` replays recorded JSON bodies of
``GET /api/models/{repo_id}`` through the same ``huggingface_hub.ModelInfo``
constructor, so tests exercise the parsing of real response shapes offline.
"""

from __future__ import annotations

import copy
import json
import os
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from .edge_lists import ImportResult
from .graph import ImportReport, LineageGraph
from .model_cards import card_metadata_fields
from .records import MAX_FIELD_CHARS, ModelRecord, apply_record, normalize_model_id, split_parent_field

# Only what lineage needs: keeps the response small.
MODEL_INFO_EXPAND: tuple[str, ...] = (
    "cardData", "createdAt", "downloads", "likes", "library_name", "pipeline_tag", "tags",
)


class ModelInfoClient(Protocol):
    def model_info(self, repo_id: str) -> Any:
        """A ``huggingface_hub.ModelInfo`` or a mapping shaped like the API's JSON."""


class HfHubClient:
    """The real Hub (network).  Never used by the test-suite."""

    def __init__(self, *, token: str | bool | None = None, timeout: float = 10.0, api: Any = None) -> None:
        if api is None:
            from huggingface_hub import HfApi  # imported lazily: optional at runtime

            api = HfApi(token=token)
        self._api = api
        self._timeout = timeout

    def model_info(self, repo_id: str) -> Any:
        return self._api.model_info(repo_id, expand=list(MODEL_INFO_EXPAND), timeout=self._timeout)


class RecordedHubClient:
    """Replays recorded ``/api/models/{id}`` JSON bodies, keyed by repo id."""

    def __init__(self, responses: Mapping[str, Mapping[str, Any]], *, as_model_info: bool = True) -> None:
        self._responses = {normalize_model_id(k): dict(v) for k, v in responses.items()}
        self._as_model_info = as_model_info
        self.requests: list[str] = []

    @classmethod
    def from_directory(cls, directory: str | os.PathLike, **kwargs: Any) -> RecordedHubClient:
        """Each ``*.json`` file is one response body; its ``id`` field is the key."""
        responses = {}
        for path in sorted(Path(directory).glob("*.json")):
            body = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                responses[body["id"]] = body
        return cls(responses, **kwargs)

    def model_info(self, repo_id: str) -> Any:
        self.requests.append(repo_id)
        body = self._responses.get(normalize_model_id(repo_id))
        if body is None:
            raise LookupError(f"404: repository {repo_id!r} not found (no recorded response)")
        body = copy.deepcopy(body)
        if self._as_model_info:
            from huggingface_hub.hf_api import ModelInfo

            return ModelInfo(**body)
        return body


@dataclass
class HubModelInfo:
    model_id: str
    parents: list[str]
    relation: str | None
    attrs: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def _get(info: Any, *names: str) -> Any:
    for name in names:
        if isinstance(info, Mapping):
            if name in info and info[name] is not None:
                return info[name]
        elif getattr(info, name, None) is not None:
            return getattr(info, name)
    return None


def _card_data_dict(card_data: Any) -> dict[str, Any]:
    if card_data is None:
        return {}
    if isinstance(card_data, Mapping):
        return dict(card_data)
    to_dict = getattr(card_data, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


def _parents_from_tags(tags: Iterable[Any]) -> tuple[list[str], str | None]:
    """Hub tags ``base_model:<relation>:<id>`` / ``base_model:<id>``."""
    parents: list[str] = []
    relation = None
    for tag in tags:
        if not isinstance(tag, str) or not tag.startswith("base_model:"):
            continue
        rest = tag[len("base_model:"):]
        kind, sep, target = rest.partition(":")
        if sep and "/" not in kind:
            relation = relation or kind
            rest = target
        parents.extend(p for p in split_parent_field(rest) if p not in parents)
    return parents, relation


def parse_model_info(info: Any) -> HubModelInfo:
    """Lineage facts from a ``ModelInfo`` (or its raw JSON body)."""
    model_id = _get(info, "id", "modelId")
    if not isinstance(model_id, str) or not model_id.strip():
        raise ValueError("model info has no 'id'")
    card = _card_data_dict(_get(info, "card_data", "cardData"))
    parents, relation, attrs, problems = card_metadata_fields(card)
    tags = _get(info, "tags") or []
    if not isinstance(tags, list):
        problems.append("tags: expected a list; ignored")
        tags = []
    # The Hub mirrors card lineage into tags ("base_model:<relation>:<id>"),
    # including the relation it inferred when the card states none; cards
    # written before base_model existed have only the tags.
    tag_parents, tag_relation = _parents_from_tags(tags)
    if not parents:
        parents = tag_parents
    if relation is None and tag_relation and set(parents) & set(tag_parents):
        relation = tag_relation
    if "license" not in attrs:
        licences = [t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith("license:")]
        if licences:
            attrs["license"] = licences[0]
    created = _get(info, "created_at", "createdAt")
    if isinstance(created, (datetime, date)):
        attrs["created"] = created.isoformat()
    elif isinstance(created, str):
        attrs["created"] = created
    for names, attr in ((("downloads",), "downloads"), (("likes",), "likes")):
        value = _get(info, *names)
        if isinstance(value, int) and not isinstance(value, bool):
            attrs[attr] = value
    for names, attr in ((("library_name",), "library"), (("pipeline_tag",), "task")):
        value = _get(info, *names)
        if isinstance(value, str) and value and attr not in attrs:
            attrs[attr] = value
    return HubModelInfo(model_id.strip(), parents, relation, attrs, problems)


def import_from_hub(
    repo_ids: Iterable[str],
    client: ModelInfoClient,
    *,
    graph: LineageGraph | None = None,
    report: ImportReport | None = None,
    follow_parents: bool = False,
    max_models: int = 500,
    source: str = "hub",
    max_field_chars: int = MAX_FIELD_CHARS,
    finalize: bool = True,
) -> ImportResult:
    """Fetch ``model_info`` for each repo id (and, with ``follow_parents``,
    walk up to their ancestors), landing what each response says.

    Row numbers count requests from 1.  A failing request (404, timeout,
    malformed body) is one error row; the walk goes on.
    """
    graph = graph if graph is not None else LineageGraph()
    report = report if report is not None else ImportReport()
    queue = deque(normalize_model_id(r) for r in repo_ids)
    requested: set[str] = set()
    seen: dict[str, int] = {}
    row = 0
    while queue:
        repo_id = queue.popleft()
        if not repo_id or repo_id in requested:
            continue
        if len(requested) >= max_models:
            report.add("too_many_rows", f"stopped after {max_models} requests (max_models); "
                       f"{len(queue) + 1} not fetched", row=row + 1, source=source)
            break
        requested.add(repo_id)
        row += 1
        report.rows_read += 1
        if len(repo_id) > max_field_chars:
            report.add("oversized_field", f"repo id of {len(repo_id)} characters; not requested",
                       row=row, source=source)
            continue
        try:
            parsed = parse_model_info(client.model_info(repo_id))
        except Exception as exc:  # noqa: BLE001 - any client failure is one bad row
            report.add("fetch_failed", f"model_info({repo_id!r}) failed: {type(exc).__name__}: "
                       f"{str(exc)[:200]}", row=row, source=source)
            continue
        if parsed.model_id != repo_id:
            report.add("conflict", f"requested {repo_id!r} but the Hub answered for {parsed.model_id!r} "
                       "(renamed or differently cased); edges naming the old id stay on it",
                       row=row, source=source, severity="warning")
        for problem in parsed.problems:
            report.add("bad_value", f"{parsed.model_id!r}: {problem}", row=row, source=source,
                       severity="warning")
        record = ModelRecord(parsed.model_id, parsed.parents, parsed.relation, parsed.attrs)
        if apply_record(graph, record, report, row=row, source=source, max_field_chars=max_field_chars,
                        seen_in_source=seen):
            report.rows_imported += 1
        if follow_parents:
            queue.extend(p for p in parsed.parents if p not in requested)
    if finalize:
        report.refresh_missing_parents(graph)
    return ImportResult(graph, report)
