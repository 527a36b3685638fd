"""Reads on lineage graphs: visibility (the owning experiment's), tables, search, node details."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from analysis import lineage as lib
from webapp.catalog.selectors import experiment_is_visible
from webapp.catalog.visibility import Visibility
from webapp.lineage.models import Family, GraphSource, LineageGraph, ModelEdge, ModelNode

FAMILY_SORTS = {
    "size": "size", "-size": "-size", "depth": "depth", "-depth": "-depth",
    "branching": "max_branching", "-branching": "-max_branching", "roots": "num_roots", "-roots": "-num_roots",
    "merges": "num_merges", "-merges": "-num_merges", "label": "label", "-label": "-label",
}
MAX_CHILDREN_LISTED = 200


def graph_get_visible(*, slug: str, user) -> LineageGraph | None:
    """The graph behind a permalink, or None when missing or private to someone else (alike from outside)."""
    # The report and drift JSON can be hundreds of kB: loaded only by the pages that show them.
    graph = LineageGraph.objects.select_related("experiment").defer("report", "drift").filter(slug=slug).first()
    if graph is None or not experiment_is_visible(experiment=graph.experiment, user=user):
        return None
    return graph


def graphs_visible(*, user) -> QuerySet[LineageGraph]:
    """Listed graphs: those of public experiments, plus the user's own (staff: all)."""
    graphs = LineageGraph.objects.select_related("experiment").defer("report", "drift")
    if user and user.is_authenticated and user.is_staff:
        return graphs
    listed = Q(experiment__visibility=Visibility.PUBLIC)
    if user and user.is_authenticated:
        listed |= Q(experiment__owner=user)
    return graphs.filter(listed)


def graphs_of_experiment(*, experiment) -> QuerySet[LineageGraph]:
    return LineageGraph.objects.filter(experiment=experiment).defer("report", "drift").order_by("source", "-created_at")


def family_get(*, graph: LineageGraph, index: int) -> Family | None:
    family = Family.objects.filter(graph=graph, index=index).first()
    if family is not None:
        family.graph = graph  # already loaded and visibility-checked; spares a query and its JSON
    return family


def families_table(*, graph: LineageGraph, query: str = "", sort: str = "-size") -> QuerySet[Family]:
    """Families of a graph, filtered by label or by any member's id, in the asked order."""
    families = Family.objects.filter(graph=graph)
    if query:
        member = ModelNode.objects.filter(graph=graph, model_id__icontains=query).values("family_id")
        families = families.filter(Q(label__icontains=query) | Q(pk__in=member))
    order = FAMILY_SORTS.get(sort, "-size")
    return families.order_by(order, "index")


def nodes_search(*, graph: LineageGraph, query: str, limit: int = 20) -> list[dict]:
    """Model ids containing ``query``, best first: the exact id, then a model *named* so
    (``*/query``), then names starting with it, then anything containing it; within each,
    models with more children (the ones people build on) before the rest."""
    query = query.strip()
    if not query:
        return []
    needle = query.lower()
    hits = list(ModelNode.objects.filter(graph=graph, model_id__icontains=query)
                .annotate(kids=Count("child_edges")).values("pk", "model_id", "family__index", "placeholder", "kids")
                .order_by("-kids")[:2000])

    def rank(hit: dict) -> tuple:
        model_id = hit["model_id"].lower()
        name = model_id.rsplit("/", 1)[-1]
        tier = 0 if model_id == needle else 1 if name == needle else 2 if name.startswith(needle) else 3
        return (tier, -hit["kids"], len(model_id), model_id)

    hits.sort(key=rank)
    return [{"id": h["model_id"], "key": h["pk"], "family": h["family__index"], "placeholder": h["placeholder"],
             "children": h["kids"]} for h in hits[:limit]]


def checkpoint_node_get(*, checkpoint) -> ModelNode | None:
    """The checkpoint's node in its experiment's catalog family tree (kept in step by catalog_sync)."""
    return (ModelNode.objects.select_related("family__graph")
            .filter(checkpoint=checkpoint, graph__experiment_id=checkpoint.experiment_id, graph__source=GraphSource.CATALOG)
            .first())


def node_get(*, graph: LineageGraph, model_id: str) -> ModelNode | None:
    return ModelNode.objects.select_related("family", "checkpoint").filter(graph=graph, model_id=model_id).first()


def node_details(*, node: ModelNode) -> dict:
    parents = (ModelEdge.objects.filter(child=node).select_related("parent__checkpoint")
               .order_by("parent__model_id"))
    children = (ModelEdge.objects.filter(parent=node).select_related("child__checkpoint")
                .order_by("child__model_id"))
    num_children = children.count()

    def end(edge_node: ModelNode, edge: ModelEdge) -> dict:
        return {"id": edge_node.model_id, "relation": edge.relation, "source": edge.source,
                "placeholder": edge_node.placeholder,
                "checkpoint": edge_node.checkpoint.slug if edge_node.checkpoint_id else None,
                "dataset": edge_node.checkpoint.dataset if edge_node.checkpoint_id else None}

    checkpoint = node.checkpoint
    return {
        "id": node.model_id,
        "key": node.pk,
        "family": node.family.index,
        "family_label": node.family.label,
        "generation": node.generation,
        "placeholder": node.placeholder,
        "attrs": node.attrs,
        "parents": [end(e.parent, e) for e in parents],
        "children": [end(e.child, e) for e in children[:MAX_CHILDREN_LISTED]],
        "num_children": num_children,
        "checkpoint": {"slug": checkpoint.slug, "name": checkpoint.name, "dataset": checkpoint.dataset,
                       "url": checkpoint.get_absolute_url()} if checkpoint else None,
        # Text for a link the *browser* may follow; the server never contacts the Hub here.
        "hub_url": f"https://huggingface.co/{node.model_id}" if lib.records.looks_like_repo_id(node.model_id)
        and node.checkpoint_id is None else None,
    }


# ---------------------------------------------------------------------------
# Library graphs rebuilt from the database
# ---------------------------------------------------------------------------


def _lib_graph(nodes: QuerySet[ModelNode], edges: QuerySet[ModelEdge]) -> tuple[lib.LineageGraph, dict[str, int]]:
    graph = lib.LineageGraph()
    keys: dict[str, int] = {}
    for pk, model_id, placeholder, attrs in nodes.values_list("pk", "model_id", "placeholder", "attrs").iterator(
            chunk_size=5000):
        graph.add_node(model_id, attrs, placeholder=placeholder)
        keys[model_id] = pk
    for parent, child, relation, source in edges.values_list("parent__model_id", "child__model_id", "relation",
                                                              "source").iterator(chunk_size=5000):
        graph.add_edge(parent, child, relation, source)
    return graph, keys


def family_lib_graph(*, family: Family) -> tuple[lib.LineageGraph, dict[str, int]]:
    """The family as a library graph, plus model id -> ModelNode pk."""
    return _lib_graph(ModelNode.objects.filter(family=family).order_by("pk"),
                      ModelEdge.objects.filter(family=family).order_by("pk"))


def graph_lib_graph(*, graph: LineageGraph) -> lib.LineageGraph:
    return _lib_graph(ModelNode.objects.filter(graph=graph).order_by("pk"),
                      ModelEdge.objects.filter(graph=graph).order_by("pk"))[0]


def family_checkpoints(*, family: Family) -> dict[str, str]:
    """model id -> catalog checkpoint slug, for nodes that are catalog checkpoints."""
    return dict(ModelNode.objects.filter(family=family, checkpoint__isnull=False)
                .values_list("model_id", "checkpoint__slug"))
