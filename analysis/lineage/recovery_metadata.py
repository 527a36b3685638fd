"""What a model's metadata says about its lineage, and where the weights disagree.

Two kinds of metadata, when a hub has them: the relations a model card
declares (``base_model`` and its relation) and upload times.  Both enter the
recovery only as direction evidence on edges the weights propose (a parent
is uploaded before its child; a declared parent is a parent), never as
edges of their own: metadata is wrong often enough (stale cards, re-uploads)
that the point is to show where it disagrees with the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UPLOAD_ORDER_WEIGHT = 1.0  # one sibling-geometry pair's worth of evidence
DECLARED_PARENT_WEIGHT = 3.0


@dataclass(frozen=True)
class ModelMetadata:
    declared_parents: tuple[str, ...] = ()
    declared_relation: str | None = None
    uploaded_at: float | None = None  # seconds since the epoch (any monotone clock)

    @classmethod
    def coerce(cls, value: ModelMetadata | Mapping[str, Any] | None) -> ModelMetadata:
        if value is None:
            return cls()
        if isinstance(value, ModelMetadata):
            return value
        parents = value.get("declared_parents") or value.get("base_model") or ()
        if isinstance(parents, str):
            parents = (parents,)
        uploaded = value.get("uploaded_at")
        return cls(tuple(str(p) for p in parents), value.get("declared_relation") or value.get("relation"),
                   float(uploaded) if uploaded is not None else None)


@dataclass(frozen=True)
class Disagreement:
    child: str
    kind: str  # "declared_parent" | "upload_order"
    weights_parent: str | None
    metadata_parent: str | None
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"child": self.child, "kind": self.kind, "weights_parent": self.weights_parent,
                "metadata_parent": self.metadata_parent, "message": self.message}


def direction_prior(parent: str, child: str, metadata: Mapping[str, ModelMetadata]) -> float:
    """Evidence from metadata that ``parent -> child`` (positive) rather than the reverse (negative)."""
    if not metadata:
        return 0.0
    mp, mc = metadata.get(parent, ModelMetadata()), metadata.get(child, ModelMetadata())
    score = 0.0
    if mp.uploaded_at is not None and mc.uploaded_at is not None and mp.uploaded_at != mc.uploaded_at:
        score += UPLOAD_ORDER_WEIGHT if mp.uploaded_at < mc.uploaded_at else -UPLOAD_ORDER_WEIGHT
    if parent in mc.declared_parents:
        score += DECLARED_PARENT_WEIGHT
    if child in mp.declared_parents:
        score -= DECLARED_PARENT_WEIGHT
    return score


def disagreements(weights_parents: Mapping[str, tuple[str, ...]], metadata: Mapping[str, ModelMetadata]
                  ) -> list[Disagreement]:
    """Where the weights-only lineage and the metadata tell different stories."""
    out = []
    for child, parents in weights_parents.items():
        meta = metadata.get(child)
        if meta is None:
            continue
        declared = [p for p in meta.declared_parents if p in weights_parents]
        if declared and not set(declared) & set(parents):
            out.append(Disagreement(child, "declared_parent", parents[0] if parents else None, declared[0],
                                    f"model card says {child} derives from {declared[0]}; the weights say "
                                    + (f"{parents[0]}" if parents else "it is a root")))
        for p in parents:
            mp = metadata.get(p)
            if mp and mp.uploaded_at is not None and meta.uploaded_at is not None and mp.uploaded_at > meta.uploaded_at:
                out.append(Disagreement(child, "upload_order", p, None,
                                        f"the weights make {p} the parent of {child}, but {p} was uploaded later"))
    return out
