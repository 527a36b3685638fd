"""Import files checked in the request, kept when the job is submitted, parsed by the worker.

What a request can judge cheaply it judges at once, with a message naming the file: the
suffix, the size cap and, for JSON, that it parses within the bounds of
``webapp.bounded_json`` (depth and size), so a hostile file is a 400 and nothing is queued.
Row-level problems (bad CSV rows, YAML, binary text) stay lines of the import report.
"""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.bounded_json import JsonRejected, parse_json
from webapp.catalog.uploads import PendingUpload, UploadRejected
from webapp.lineage import imports
from webapp.lineage.models import LineageUpload

KIND_SUFFIXES = {LineageUpload.Kind.EDGES: imports.EDGE_SUFFIXES, LineageUpload.Kind.CARD: imports.CARD_SUFFIXES}
PASTED_NAME = "pasted edges"


def _looks_like_json(name: str, head: bytes) -> bool:
    return name.lower().endswith(".json") or head.lstrip()[:1] in (b"[", b"{")


class PendingLineageFile(PendingUpload):
    """One edge list or model card, spooled and checked; ``store`` keeps it as a LineageUpload."""

    def __init__(self, uploaded, kind: str):
        limit = imports.max_upload_bytes()
        self.original_name = Path(uploaded.name or kind).name[:200]
        if uploaded.size is not None and uploaded.size > limit:
            raise UploadRejected(f"{self.original_name}: {uploaded.size:,} bytes; the limit is {limit:,} per file")
        try:
            # Pasted text names no file, so has no suffix.
            super().__init__(uploaded, KIND_SUFFIXES[kind] if self.original_name != PASTED_NAME else ("",))
        except UploadRejected as exc:
            raise UploadRejected(f"{self.original_name}: {exc}") from None
        self.kind = kind
        if self.path.stat().st_size > limit:
            self.close()
            raise UploadRejected(f"{self.original_name}: over the limit of {limit:,} bytes per file")
        data = self.path.read_bytes()
        if kind == LineageUpload.Kind.EDGES and _looks_like_json(self.original_name, data[:64]):
            try:
                parse_json(data, field=self.original_name, max_bytes=limit)
            except JsonRejected as exc:
                self.close()
                raise UploadRejected(f"{self.original_name}: {exc.message}") from None

    def store(self, *, owner) -> LineageUpload:
        upload = LineageUpload(slug=self.slug, owner=owner, name=self.original_name, kind=self.kind)
        with open(self.path, "rb") as handle:
            upload.file.save(f"upload{self.suffix or '.txt'}", File(handle), save=False)
        upload.save()
        return upload


def pasted_edges(text: str) -> SimpleUploadedFile:
    """Pasted CSV travels as one more edge list (the report calls it "pasted edges")."""
    return SimpleUploadedFile(PASTED_NAME, text.encode("utf-8"))


def upload_read(*, slug: str, owner) -> tuple[LineageUpload, bytes]:
    """The stored bytes of one of ``owner``'s uploads (the worker's side), through the storage API."""
    upload = LineageUpload.objects.get(slug=slug, owner=owner)
    with upload.file.open("rb") as handle:
        return upload, handle.read(imports.max_upload_bytes() + 1)
