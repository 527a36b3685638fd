"""The ``lineage_import`` job: files checked and kept by the form, parsed here, Hub ids fetched here.

Up to ``imports.MAX_HUB_REQUESTS`` Hub calls and 40 MB of text are no work for a request: the
worker reads each kept upload through the storage API, streams an event per file and per Hub
request, and stores the graph.  An input with no usable row fails the job with its report.
"""

from __future__ import annotations

from webapp.catalog.models import Experiment
from webapp.lineage import imports, services, uploads
from webapp.lineage.models import LineageUpload


class NothingImported(ValueError):
    pass


def lineage_import_run(ctx) -> dict:
    job, params = ctx.job, ctx.params
    files = params.get("files", [])
    steps = max(1, len(files) + (imports.MAX_HUB_REQUESTS if params.get("hub_ids") else 0))
    done = 0

    def on_progress(kind: str, payload: dict) -> None:
        nonlocal done
        done += 1
        ctx.emit(kind, payload, progress=min(0.9, 0.9 * done / steps))

    ctx.emit("stage", {"stage": "reading", "files": len(files), "hub_ids": len(params.get("hub_ids", []))}, progress=0.0)
    given = {LineageUpload.Kind.EDGES: [], LineageUpload.Kind.CARD: []}
    for entry in files:
        upload, data = uploads.upload_read(slug=entry["upload"], owner=job.owner)
        given[upload.kind].append((upload.name, data))
    result = imports.lineage_import_files(
        edge_files=given[LineageUpload.Kind.EDGES], card_files=given[LineageUpload.Kind.CARD],
        hub_ids=params.get("hub_ids", []), follow_parents=params.get("follow_parents", False), on_progress=on_progress,
    )
    ctx.emit("stage", {"stage": "storing", "models": result.graph.num_nodes, "edges": result.graph.num_edges},
             progress=0.92)
    experiment = Experiment.objects.filter(pk=job.experiment_id).first() if job.experiment_id else None
    try:
        graph = services.lineage_graph_import(owner=job.owner, name=params["name"], result=result,
                                              source=params.get("source", "upload"), experiment=experiment,
                                              visibility=job.visibility)
    except services.LineageImportEmpty as empty:
        ctx.emit("report", services.report_to_json(empty.report))
        raise NothingImported("no row of the input was usable; the report above says why, row by row") from None
    report = graph.report
    return {
        "graph": {"slug": graph.slug, "name": graph.name, "url": graph.get_absolute_url(), "nodes": graph.num_nodes,
                  "edges": graph.num_edges, "families": graph.num_families, "roots": graph.num_roots},
        "report": {key: report[key] for key in ("summary", "rows_read", "rows_imported", "counts", "errors", "warnings")},
        "issues": report["issues"][:50],
    }
