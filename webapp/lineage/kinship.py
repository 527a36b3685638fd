"""Kinship of two catalog checkpoints: similarity of their weight deltas from a common base.

The maths is ``analysis.lineage.kinship.delta_kinship``; this module finds the
base (the nearest common ancestor through ``Checkpoint.parent`` unless one is
given), checks the three share an architecture, loads them (safetensors,
validated, never unpickled) and shapes the numbers for the page.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

from django.urls import reverse

from webapp.catalog.models import Checkpoint
from webapp.files import local_path

# Three models are held in float64 at once: keep the request to a few hundred MB.
MAX_KINSHIP_PARAMETERS = 20_000_000


class KinshipError(ValueError):
    pass


def ancestors(checkpoint: Checkpoint, limit: int = 1000) -> list[Checkpoint]:
    """Parent, grandparent, ... (a cycle in bad data stops the walk)."""
    chain, seen = [], {checkpoint.pk}
    current = checkpoint.parent
    while current is not None and current.pk not in seen and len(chain) < limit:
        chain.append(current)
        seen.add(current.pk)
        current = current.parent
    return chain


def common_base(a: Checkpoint, b: Checkpoint) -> Checkpoint | None:
    """The nearest checkpoint that both descend from (neither of the two itself)."""
    of_b = {c.pk for c in ancestors(b)}
    return next((c for c in ancestors(a) if c.pk in of_b), None)


def connectivity_url(a: Checkpoint, b: Checkpoint) -> str:
    """The existing connectivity job form, pre-filled: "a landscape between these two"."""
    query = urlencode({"checkpoint": a.slug, "checkpoint_b": b.slug, "dataset": a.dataset or b.dataset or "digits"})
    return f"{reverse('job_new', args=['connectivity'])}?{query}"


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def kinship_compute(*, a: Checkpoint, b: Checkpoint, base: Checkpoint | None = None) -> dict:
    """Pearson, cosine and Euclidean distance of (a - base) and (b - base), per tensor and overall."""
    from analysis import checkpoints
    from analysis.lineage.kinship import delta_kinship

    if base is None:
        base = common_base(a, b)
        if base is None:
            raise KinshipError(f"{a.name!r} and {b.name!r} share no base model in the catalog; name one as the base")
    if a.pk == b.pk:
        raise KinshipError("pick two different checkpoints")
    if base.pk in (a.pk, b.pk):
        raise KinshipError("the base must differ from both checkpoints (its delta would be zero)")
    if not (a.spec == b.spec == base.spec):
        raise KinshipError("the three checkpoints must share one architecture")
    if max(a.num_parameters, b.num_parameters, base.num_parameters) > MAX_KINSHIP_PARAMETERS:
        raise KinshipError(f"kinship here handles models of at most {MAX_KINSHIP_PARAMETERS:,} parameters")
    try:
        states = [checkpoints.load(local_path(c.file, sha256=c.sha256)).model.state_dict() for c in (base, a, b)]
    except checkpoints.CheckpointError as exc:
        raise KinshipError(f"cannot load a checkpoint: {exc}") from None
    try:
        result = delta_kinship(*states)
    except ValueError as exc:
        raise KinshipError(str(exc)) from None

    def similarity(s) -> dict:
        return {"pearson": _number(s.pearson), "cosine": _number(s.cosine), "euclidean": _number(s.euclidean),
                "numel": s.numel}

    return {
        "a": {"slug": a.slug, "name": a.name}, "b": {"slug": b.slug, "name": b.name},
        "base": {"slug": base.slug, "name": base.name},
        "overall": similarity(result.overall),
        "layers": [{"name": layer.name, **similarity(layer.similarity)} for layer in result.layers],
        "skipped": result.skipped,
        "connectivity_url": connectivity_url(a, b),
    }
