"""Kinship of two catalog checkpoints: similarity of their weight deltas from a common base.

The maths is ``analysis.lineage.kinship.delta_kinship``; this module finds the
base (the nearest common ancestor through ``Checkpoint.parent`` unless one is
given), checks the three share an architecture, loads them (safetensors,
validated, never unpickled) and shapes the numbers for the page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from analysis.json_safe import finite_or_none
from webapp.catalog.models import Checkpoint
from webapp.files import local_path

# Three models are held in float64 at once (in the worker): keep it to a few hundred MB.
MAX_KINSHIP_PARAMETERS = 20_000_000


class KinshipError(ValueError):
    """``field``: the form field to blame."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


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


def kinship_base(*, a: Checkpoint, b: Checkpoint, base: Checkpoint | None = None) -> Checkpoint:
    """The base to compare against, after every check that needs no weights (run in the request)."""
    if a.pk == b.pk:
        raise KinshipError("b", "pick two different checkpoints")
    if base is None:
        base = common_base(a, b)
        if base is None:
            raise KinshipError("base", f"{a.name!r} and {b.name!r} share no base model in the catalog; name one as the base")
    if base.pk in (a.pk, b.pk):
        raise KinshipError("base", "the base must differ from both checkpoints (its delta would be zero)")
    if not (a.spec == b.spec == base.spec):
        raise KinshipError("b", "the three checkpoints must share one architecture")
    if max(a.num_parameters, b.num_parameters, base.num_parameters) > MAX_KINSHIP_PARAMETERS:
        raise KinshipError("a", f"kinship here handles models of at most {MAX_KINSHIP_PARAMETERS:,} parameters")
    return base


def _similarity(s) -> dict:
    return {"pearson": finite_or_none(s.pearson), "cosine": finite_or_none(s.cosine), "euclidean": finite_or_none(s.euclidean),
            "numel": s.numel}


def kinship_run(ctx) -> dict:
    """The ``kinship`` job: load base, A and B (events "model"), then compare their deltas tensor by
    tensor (events "layer") and overall (the result)."""
    from analysis import checkpoints
    from analysis.lineage.kinship import delta_kinship

    slugs = ctx.params
    found = {c.slug: c for c in Checkpoint.objects.filter(slug__in=[slugs["a"], slugs["b"], slugs["base"]])}
    try:
        a, b, base = found[slugs["a"]], found[slugs["b"]], found[slugs["base"]]
    except KeyError as missing:
        raise KinshipError("a", f"checkpoint {missing} was deleted after the job was submitted") from None
    kinship_base(a=a, b=b, base=base)  # the checkpoints may have changed since the form checked them
    states = []
    for k, (role, checkpoint) in enumerate((("base", base), ("a", a), ("b", b))):
        ctx.emit("model", {"role": role, "slug": checkpoint.slug, "name": checkpoint.name,
                           "parameters": checkpoint.num_parameters}, progress=0.1 + 0.2 * k)
        try:
            states.append(checkpoints.load(local_path(checkpoint.file, sha256=checkpoint.sha256)).model.state_dict())
        except checkpoints.CheckpointError as exc:
            raise KinshipError(role, f"cannot load {checkpoint.name!r}: {exc}") from None

    def on_layer(layer, index: int, total: int) -> None:
        ctx.emit("layer", {"name": layer.name, **_similarity(layer.similarity)}, progress=0.7 + 0.25 * (index + 1) / total)

    try:
        result = delta_kinship(*states, on_layer=on_layer)
    except ValueError as exc:
        raise KinshipError("a", str(exc)) from None
    return {
        "a": {"slug": a.slug, "name": a.name}, "b": {"slug": b.slug, "name": b.name},
        "base": {"slug": base.slug, "name": base.name},
        "overall": _similarity(result.overall),
        "layers": [{"name": layer.name, **_similarity(layer.similarity)} for layer in result.layers],
        "skipped": result.skipped,
        "connectivity_url": connectivity_url(a, b),
    }


def kinship_csv(result: dict) -> str:
    lines = ["tensor,numel,pearson,cosine,euclidean"]
    rows = [*result.get("layers", []), {"name": "(all)", **result.get("overall", {})}]
    for row in rows:
        lines.append(",".join(str(v if v is not None else "") for v in
                              (row["name"], row.get("numel"), row.get("pearson"), row.get("cosine"), row.get("euclidean"))))
    return "\n".join(lines) + "\n"
