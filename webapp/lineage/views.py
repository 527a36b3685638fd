"""Lineage pages and their JSON: thin views over selectors (reads) and services (writes).

Every URL under a graph goes through ``_graph_or_404``: a private graph is a
404 for anyone but its experiment's owner (and staff), on pages, JSON,
exports and embeds alike.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_POST

from webapp.catalog.selectors import checkpoint_get_visible, experiment_get_visible
from webapp.jobs.params import form_for
from webapp.lineage import drift as drift_json
from webapp.lineage import exports, imports, layouts, selectors, services
from webapp.lineage.params import LineageImportParams

FAMILIES_PER_PAGE = 50
ISSUES_SHOWN = 100
OVERVIEW_POINTS = 3000


def _graph_or_404(request, slug):
    graph = selectors.graph_get_visible(slug=slug, user=request.user)
    if graph is None:
        raise Http404("No such lineage graph")
    return graph


def _family_or_404(request, slug, index):
    graph = _graph_or_404(request, slug)
    family = selectors.family_get(graph=graph, index=index)
    if family is None:
        raise Http404("No such family")
    return graph, family


def _can_manage(graph, user) -> bool:
    return bool(user.is_authenticated and (user.is_staff or graph.experiment.owner_id == user.pk))


def _int_list(raw: str, limit: int = 2000) -> list[int]:
    out = []
    for part in (raw or "").split(",")[:limit]:
        part = part.strip()
        if part.isdigit():
            out.append(int(part))
    return out


# ---------------------------------------------------------------------------
# Index, import, catalog entry points
# ---------------------------------------------------------------------------


def index(request):
    graphs = selectors.graphs_visible(user=request.user).order_by("-experiment__featured", "-created_at")
    page = Paginator(graphs, 50).get_page(request.GET.get("page"))
    return render(request, "lineage/index.html", {"page": page, "my_jobs": _my_lineage_jobs(request.user)})


LINEAGE_JOB_KINDS = ("lineage_import", "kinship", "lineage_recovery")


def _my_lineage_jobs(user) -> list:
    """The visitor's latest imports, kinships and recoveries: their result pages, running or done."""
    if not user.is_authenticated:
        return []
    from webapp.jobs.selectors import jobs_of_user

    return list(jobs_of_user(user=user).filter(kind__in=LINEAGE_JOB_KINDS).defer("params", "result")[:10])


@login_required
def import_graph(request):
    """The import form; a valid one keeps its files and queues a ``lineage_import`` job (the work is the worker's)."""
    from webapp.jobs import limits
    from webapp.jobs import services as jobs

    context = {"max_bytes": imports.max_upload_bytes()}
    if request.method != "POST":
        return render(request, "lineage/import.html", {**context, "form": form_for(LineageImportParams)(user=request.user)})
    try:
        limits.check_job_submission(user=request.user)  # before any upload is read
        validated = jobs.job_params_validate(kind="lineage_import", data=request.POST, files=request.FILES,
                                             user=request.user)
        job = jobs.job_submit(validated=validated, owner=request.user)
    except jobs.JobParamsInvalid as invalid:
        return render(request, "lineage/import.html", {**context, "form": invalid.form}, status=400)
    except limits.LimitExceeded as limit:
        form = form_for(LineageImportParams)(initial=request.POST.dict(), user=request.user)
        response = render(request, "lineage/import.html", {**context, "form": form, "limit": limit}, status=429)
        return limits.with_retry_after(response, limit)
    return redirect(job)


def experiment_graphs(request, slug):
    experiment = experiment_get_visible(slug=slug, user=request.user)
    if experiment is None:
        raise Http404("No such experiment")
    graphs = list(selectors.graphs_of_experiment(experiment=experiment))
    if len(graphs) == 1:
        return redirect(graphs[0])
    return render(request, "lineage/experiment_graphs.html", {"experiment": experiment, "graphs": graphs})


def checkpoint_tree(request, slug):
    checkpoint = checkpoint_get_visible(slug=slug, user=request.user)
    if checkpoint is None:
        raise Http404("No such checkpoint")
    node = selectors.checkpoint_node_get(checkpoint=checkpoint)
    if node is None:
        raise Http404("This checkpoint is in no family tree")
    return redirect(f"{node.family.get_absolute_url()}?{urlencode({'focus': node.model_id})}")


# ---------------------------------------------------------------------------
# A graph: overview, families, search, report
# ---------------------------------------------------------------------------


def graph_detail(request, slug):
    graph = _graph_or_404(request, slug)
    query = request.GET.get("q", "").strip()[:200]
    sort = request.GET.get("sort", "-size")
    page = Paginator(selectors.families_table(graph=graph, query=query, sort=sort), FAMILIES_PER_PAGE).get_page(
        request.GET.get("page"))
    report = graph.report or {}
    show_all = request.GET.get("issues") == "all"
    issues = report.get("issues", [])
    return render(request, "lineage/graph.html", {
        "graph": graph, "page": page, "query": query, "sort": sort, "sorts": _sort_links(sort),
        "report": report, "issues": issues if show_all else issues[:ISSUES_SHOWN],
        "issues_hidden": 0 if show_all else max(0, len(issues) - ISSUES_SHOWN),
        "can_manage": _can_manage(graph, request.user),
        "permalink": request.build_absolute_uri(graph.get_absolute_url()),
    })


def _sort_links(current: str) -> dict[str, str]:
    """Column -> the sort a click on its header asks for (descending first, then toggles)."""
    return {col: (col if current == f"-{col}" else f"-{col}")
            for col in ("size", "depth", "branching", "roots", "merges", "label")}


def _family_row(f) -> dict:
    return {"index": f.index, "label": f.label, "size": f.size, "edges": f.num_edges, "depth": f.depth,
            "max_branching": f.max_branching, "roots": f.num_roots, "merges": f.num_merges,
            "placeholders": f.num_placeholders}


def families_json(request, slug):
    graph = _graph_or_404(request, slug)
    query = request.GET.get("q", "").strip()[:200]
    families = selectors.families_table(graph=graph, query=query, sort=request.GET.get("sort", "-size"))
    try:
        per_page = max(1, min(int(request.GET.get("per_page", FAMILIES_PER_PAGE)), 500))
    except ValueError:
        per_page = FAMILIES_PER_PAGE
    page = Paginator(families, per_page).get_page(request.GET.get("page"))
    return JsonResponse({
        "graph": {"slug": graph.slug, "name": graph.name, "nodes": graph.num_nodes, "edges": graph.num_edges,
                  "roots": graph.num_roots, "families": graph.num_families, "placeholders": graph.num_placeholders},
        "count": page.paginator.count, "page": page.number, "pages": page.paginator.num_pages,
        "families": [_family_row(f) for f in page.object_list],
    })


@gzip_page  # large, secret-free JSON and text: ~5x smaller on the wire
def graph_overview_json(request, slug):
    """The biggest families as columns, for the overview chart (size against depth)."""
    graph = _graph_or_404(request, slug)
    rows = list(graph.families.order_by("index").values_list("index", "label", "size", "depth", "max_branching",
                                                              "num_merges")[:OVERVIEW_POINTS])
    columns = ["index", "label", "size", "depth", "max_branching", "merges"]
    return JsonResponse({"shown": len(rows), "total": graph.num_families,
                         **{name: [r[k] for r in rows] for k, name in enumerate(columns)}})


def graph_search(request, slug):
    graph = _graph_or_404(request, slug)
    hits = selectors.nodes_search(graph=graph, query=request.GET.get("q", "")[:200])
    for hit in hits:
        hit["url"] = reverse("lineage:family", args=[graph.slug, hit["family"]]) + "?" + urlencode({"focus": hit["id"]})
    return JsonResponse({"results": hits})


def graph_find(request, slug):
    """Search without JavaScript: straight to the family of the best match."""
    graph = _graph_or_404(request, slug)
    query = request.GET.get("q", "").strip()[:200]
    hits = selectors.nodes_search(graph=graph, query=query, limit=1)
    if not hits:
        messages.info(request, f"No model id contains {query!r}.")
        return redirect(graph)
    return redirect(reverse("lineage:family", args=[graph.slug, hits[0]["family"]]) + "?" + urlencode({"focus": hits[0]["id"]}))


def node_json(request, slug):
    graph = _graph_or_404(request, slug)
    node = selectors.node_get(graph=graph, model_id=request.GET.get("id", "")[:600])
    if node is None:
        raise Http404("No such model in this graph")
    details = selectors.node_details(node=node)
    for end in details["parents"] + details["children"]:
        end["url"] = reverse("lineage:family", args=[graph.slug, details["family"]]) + "?" + urlencode({"focus": end["id"]})
    return JsonResponse(details)


def report_json(request, slug):
    graph = _graph_or_404(request, slug)
    response = JsonResponse(graph.report or {})
    response["Content-Disposition"] = f'attachment; filename="{graph.slug}-import-report.json"'
    return response


@require_POST
def graph_delete(request, slug):
    graph = _graph_or_404(request, slug)
    if not _can_manage(graph, request.user):
        return HttpResponse("only the experiment's owner can delete this graph", status=403)
    services.lineage_graph_delete(graph=graph)
    messages.info(request, f"Deleted the lineage graph {graph.name!r}.")
    return redirect("lineage:index")


# ---------------------------------------------------------------------------
# Families: the tree page and its layout
# ---------------------------------------------------------------------------


def _family_context(request, graph, family) -> dict:
    focus = request.GET.get("focus", "")[:600]
    focus_node = selectors.node_get(graph=graph, model_id=focus) if focus else None
    if focus_node is not None and focus_node.family_id != family.pk:
        focus_node = None
    config = {
        "graph": graph.slug, "family": family.index, "label": family.label, "size": family.size,
        "layoutUrl": reverse("lineage:layout", args=[graph.slug, family.index]),
        "nodeUrl": reverse("lineage:node", args=[graph.slug]),
        "searchUrl": reverse("lineage:search", args=[graph.slug]),
        "kinshipUrl": reverse("lineage:kinship"),
        "connectivityUrl": reverse("job_new", args=["connectivity"]),
        "focus": focus_node.pk if focus_node else None, "focusId": focus_node.model_id if focus_node else None,
        "layout": "radial" if request.GET.get("layout") == "radial" else "tidy",
        "colour": request.GET.get("colour", "relation")[:80],
        "cap": _cap(request.GET.get("cap")),
    }
    # The first layout request, exactly as lineage_tree.js will make it: the page preloads it,
    # so the server lays the family out while the browser is still parsing Plotly.
    first = {"kind": config["layout"], "cap": config["cap"]}
    if focus_node is not None:
        first["focus"] = focus_node.pk
    return {"graph": graph, "family": family, "config": config, "first_layout_url": f"{config['layoutUrl']}?{urlencode(first)}",
            "permalink": request.build_absolute_uri(family.get_absolute_url())}


def family_detail(request, slug, index):
    graph, family = _family_or_404(request, slug, index)
    context = _family_context(request, graph, family)
    context["neighbours"] = {"previous": family.index - 1 if family.index > 0 else None,
                             "next": family.index + 1 if family.index + 1 < graph.num_families else None}
    return render(request, "lineage/family.html", context)


def _cap(raw) -> int:
    try:
        return max(10, min(int(raw), layouts.MAX_CAP))
    except (TypeError, ValueError):
        return layouts.MAX_DRAWN


@gzip_page  # large, secret-free JSON and text: ~5x smaller on the wire
def family_layout_json(request, slug, index):
    _, family = _family_or_404(request, slug, index)
    focus = request.GET.get("focus", "")
    cap = _cap(request.GET.get("cap"))
    payload = layouts.family_layout(
        family=family, kind=request.GET.get("kind", "tidy"), collapsed=_int_list(request.GET.get("collapsed", "")),
        expanded=_int_list(request.GET.get("expanded", "")), focus=int(focus) if focus.isdigit() else None, cap=cap,
    )
    return JsonResponse(payload)


# ---------------------------------------------------------------------------
# Drift, embeds, exports
# ---------------------------------------------------------------------------


def _drift_response(request, context: dict, drift: dict):
    if request.GET.get("format") == "json":
        return JsonResponse(drift)
    return render(request, "lineage/drift.html", {**context, "drift": drift})


def graph_drift(request, slug):
    graph = _graph_or_404(request, slug)
    return _drift_response(request, {"graph": graph, "family": None}, graph.drift or {})


def family_drift(request, slug, index):
    graph, family = _family_or_404(request, slug, index)
    key = f"lineage-drift:v2:{family.pk}:{graph.created_at.isoformat()}"
    drift = cache.get(key)
    if drift is None:
        drift = drift_json.graph_drift(selectors.family_lib_graph(family=family)[0])
        cache.set(key, drift, 3600)
    return _drift_response(request, {"graph": graph, "family": family}, drift)


@xframe_options_exempt  # embedding in other sites' iframes is the point of this view
def graph_embed(request, slug):
    graph = _graph_or_404(request, slug)
    return render(request, "lineage/embed_graph.html", {
        "graph": graph, "permalink": request.build_absolute_uri(graph.get_absolute_url()),
        "config": {"overviewUrl": reverse("lineage:overview", args=[graph.slug]),
                   "familyUrl": reverse("lineage:graph", args=[graph.slug]) + "family/"},
    })


@xframe_options_exempt
def family_embed(request, slug, index):
    graph, family = _family_or_404(request, slug, index)
    context = _family_context(request, graph, family)
    context["config"]["embed"] = True
    return render(request, "lineage/embed_family.html", context)


def _export(graph, family, fmt):
    if fmt not in exports.FORMATS:
        raise Http404("Unknown export format")
    chunks, content_type, name = exports.lineage_export(graph=graph, family=family, fmt=fmt)
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@gzip_page
def graph_export(request, slug, fmt):
    return _export(_graph_or_404(request, slug), None, fmt)


@gzip_page
def family_export(request, slug, index, fmt):
    graph, family = _family_or_404(request, slug, index)
    return _export(graph, family, fmt)


# ---------------------------------------------------------------------------
# Kinship of two catalog checkpoints
# ---------------------------------------------------------------------------


def kinship_view(request):
    """Kinship is a job (three models in float64 are no work for a request): its form, pre-filled."""
    query = {key: request.GET[key][:32] for key in ("a", "b", "base") if request.GET.get(key)}
    return redirect(reverse("job_new", args=["kinship"]) + (f"?{urlencode(query)}" if query else ""))
