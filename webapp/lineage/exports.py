"""Graph and family downloads: the library's writers over a graph rebuilt from the database."""

from __future__ import annotations

from analysis.lineage import export
from webapp.lineage import selectors
from webapp.lineage.models import Family, LineageGraph

# format -> (writer, content type, file suffix)
FORMATS = {
    "graphml": (export.to_graphml, "application/graphml+xml; charset=utf-8", "graphml"),
    "json": (export.to_json, "application/json; charset=utf-8", "json"),
    "edges.csv": (export.to_csv_edges, "text/csv; charset=utf-8", "edges.csv"),
    "nodes.csv": (export.to_csv_nodes, "text/csv; charset=utf-8", "nodes.csv"),
}


def lineage_export(*, graph: LineageGraph, family: Family | None, fmt: str) -> tuple[str, str, str]:
    """(body, content type, file name); ``fmt`` must be a key of FORMATS."""
    writer, content_type, suffix = FORMATS[fmt]
    if family is None:
        lib_graph = selectors.graph_lib_graph(graph=graph)
        name = f"{graph.slug}.{suffix}"
    else:
        lib_graph = selectors.family_lib_graph(family=family)[0]
        name = f"{graph.slug}-family-{family.index}.{suffix}"
    return writer(lib_graph), content_type, name
