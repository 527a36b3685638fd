"""A Hessian spectrum with many density probes over many workers, through the job protocol's fan-out.

Part 0 computes the loss, the top eigenvalues and the trace, streamed as the
single worker streams them; parts 1..n each run a few stochastic Lanczos
quadrature probes (analysis.curvature.density_probe: probe p's random vectors
depend on (seed, p) alone).  All parts run at once (one stage).  The finaliser
combines the probes' Ritz values and weights in probe order
(curvature.density_from_probes): the density a single worker computes, number
for number.  A taken-over part is computed again and streams only what its earlier
attempt did not.  How many parts: webapp.landscapes.fanout_blocks, at most one per probe.
"""

from __future__ import annotations

import numpy as np
from django.utils import timezone

from webapp.jobs.fanout import FanOut, Part, PartContext, fanout_start
from webapp.jobs.models import JobPart
from webapp.landscapes.fanout_blocks import requested_blocks
from webapp.landscapes.services import _data, _load_checkpoint, hessian_run


def probe_groups(params: dict, queue: str) -> list[list[int]]:
    """Probe numbers per part ([]: one worker computes the spectrum the classic way); needs two probes or more."""
    probes = params["density_probes"] if params.get("density") else 0
    blocks = min(requested_blocks(params, queue), probes)
    return [group.tolist() for group in np.array_split(np.arange(probes), blocks)] if blocks > 1 else []


def hessian_run_or_fan_out(ctx) -> dict:
    """The hessian kind's run: probes split over parts when asked to, else one worker does it all."""
    groups = probe_groups(ctx.params, ctx.job.queue)
    if not groups:
        return hessian_run(ctx)
    p = ctx.params
    spectrum = Part(index=0, payload={"spectrum": True}, weight=float(4 * p["top_k"] + p["trace"] * p["trace_matvecs"]))
    return fanout_start(ctx, [spectrum] + [Part(index=k, payload={"probes": group}, weight=float(len(group) * p["density_iters"]))
                                           for k, group in enumerate(groups, start=1)])


def _operator(ctx: PartContext, steps: int):
    """The Hessian operator of the job's checkpoint, beating the part's heartbeat at every product."""
    from analysis import curvature

    record, loaded = _load_checkpoint(ctx.params["checkpoint"])
    X, y = _data(ctx)
    op = curvature.HessianOperator(loaded, None, (X, y), device=ctx.device)
    matvec = op.matvec

    def beating(v):  # a Lanczos run takes minutes on a big model: tell the others this part is alive
        ctx.heartbeat(progress=min(1.0, op.num_matvecs / max(1, steps)))
        return matvec(v)

    op.matvec = beating
    return record, X, op


def run_hessian_part(ctx: PartContext) -> dict:
    from analysis import curvature

    p = ctx.params
    if "probes" in ctx.payload:
        record, X, op = _operator(ctx, len(ctx.payload["probes"]) * p["density_iters"])
        probes = [curvature.density_probe(op, probe=k, num_iters=p["density_iters"], seed=p["seed"]) for k in ctx.payload["probes"]]
        return {"probes": [[k, nodes.tolist(), weights.tolist()] for k, (nodes, weights) in zip(ctx.payload["probes"], probes)],
                "num_matvecs": op.num_matvecs}
    from analysis.curvature_results import Eigenvalues, Trace
    from analysis.json_safe import finite_or_none

    record, X, op = _operator(ctx, 4 * p["top_k"] + p["trace"] * p["trace_matvecs"])
    sent = {kind for kind in ("started", "eigenvalues", "trace") if ctx.emitted(kind)}

    def emit(kind: str, payload: dict) -> None:
        if kind not in sent:  # an earlier attempt of this part streamed it already
            ctx.emit(kind, payload)

    loss = finite_or_none(op.loss())
    emit("started", {"num_parameters": op.size, "loss": loss})
    eigenvalues = Eigenvalues.of(curvature.lanczos(op, p["top_k"], tol=1e-4, seed=p["seed"]))
    emit("eigenvalues", eigenvalues.model_dump())
    trace = None
    if p["trace"]:
        trace = Trace.of(curvature.hutchpp(op, p["trace_matvecs"], seed=p["seed"]))
        emit("trace", trace.model_dump())
    return {"checkpoint": record.slug, "checkpoint_name": record.name, "eval_size": int(len(X)), "num_parameters": op.size,
            "loss": loss, "eigenvalues": eigenvalues.model_dump(), "trace": None if trace is None else trace.model_dump(),
            "num_matvecs": op.num_matvecs}


def finish_hessian(ctx: PartContext, parts: list[JobPart]) -> dict | None:
    """The single-worker result: the spectrum part's numbers and the density of all probes in probe order."""
    from analysis import curvature
    from analysis.curvature_results import Density
    from webapp.landscapes.results import HessianResult

    if ctx.job.cancel_requested:
        return None
    spectrum, probe_parts = parts[0].result, parts[1:]
    probes = sorted(probe for part in probe_parts for probe in part.result["probes"])
    probe_matvecs = sum(part.result["num_matvecs"] for part in probe_parts)
    density = Density.of(curvature.density_from_probes([nodes for _, nodes, _ in probes], [weights for _, _, weights in probes],
                                                       num_matvecs=probe_matvecs))
    ctx.emit("density", density.model_dump(), progress=1.0)
    started = ctx.job.started_at or parts[0].started_at
    result = HessianResult(**{**spectrum, "num_matvecs": spectrum["num_matvecs"] + probe_matvecs}, density=density, device=ctx.device,
                           fanout={"parts": len(parts), "workers": sorted({part.worker for part in parts}),
                                   "seconds": (timezone.now() - started).total_seconds()})
    return result.model_dump(exclude_none=False)


HESSIAN_FANOUT = FanOut(run_part=run_hessian_part, finish=finish_hessian)
