"""Graph and family downloads: the library's writers over a graph rebuilt from the database."""

from __future__ import annotations

from collections.abc import Iterator

from analysis.lineage import export
from webapp.lineage import selectors
from webapp.lineage.models import Family, LineageGraph

# format -> (chunk writer, content type, file suffix).  Writers yield the text in chunks: a
# 200,000-node graph streams out instead of being built as one 30 MB string first.
FORMATS = {
    "graphml": (export.iter_graphml, "application/graphml+xml; charset=utf-8", "graphml"),
    "json": (export.iter_json, "application/json; charset=utf-8", "json"),
    "edges.csv": (export.iter_csv_edges, "text/csv; charset=utf-8", "edges.csv"),
    "nodes.csv": (export.iter_csv_nodes, "text/csv; charset=utf-8", "nodes.csv"),
}


def lineage_export(*, graph: LineageGraph, family: Family | None, fmt: str) -> tuple[Iterator[str], str, str]:
    """(chunks of the body, content type, file name); ``fmt`` must be a key of FORMATS."""
    writer, content_type, suffix = FORMATS[fmt]
    name = f"{graph.slug}.{suffix}" if family is None else f"{graph.slug}-family-{family.index}.{suffix}"

    def chunks() -> Iterator[str]:
        # The graph is read inside the stream: the response (and the browser's download) starts at
        # once instead of after the seconds a 34,000-node graph takes to come out of the database.
        if family is None:
            lib_graph = selectors.graph_lib_graph(graph=graph)
        else:
            lib_graph = selectors.family_lib_graph(family=family)[0]
        yield from writer(lib_graph)

    return chunks(), content_type, name
