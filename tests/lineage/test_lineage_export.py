"""JSON, GraphML and CSV exports, with hostile ids and attribute values."""

from __future__ import annotations

import csv
import io
import json
import math
import xml.etree.ElementTree as ET

import networkx as nx

from analysis.lineage.edge_lists import import_edge_json
from analysis.lineage.export import to_csv_edges, to_csv_nodes, to_graphml, to_json, to_json_dict
from analysis.lineage.graph import LineageGraph

NS = {"g": "http://graphml.graphdrawing.org/xmlns"}
NASTY = 'evil/<script>&"quotes"\'\x01\x0b'


def hostile_graph() -> LineageGraph:
    g = LineageGraph()
    g.add_node("org/base", {"license": "mit", "downloads": 10, "score": 0.5, "gated": False,
                            "language": ["en", "fr"], "metrics": {"acc": 0.9}})
    g.add_node(NASTY, {"license": "<b>bold</b> & co", "downloads": 3, "score": float("nan"),
                       'weird "name"': "=HYPERLINK(\"http://x\")"})
    g.add_edge("org/base", NASTY, "finetune", "cards & <more>")
    g.add_edge(NASTY, "org/leaf", "merge", "")
    g.add_edge("other/root", "other/child", "adapter", "x")
    return g


def test_graphml_is_valid_xml_and_round_trips_values():
    g = hostile_graph()
    text = to_graphml(g)
    root = ET.fromstring(text.encode("utf-8"))
    keys = {k.get("id"): (k.get("attr.name"), k.get("attr.type")) for k in root.findall("g:key", NS)}
    by_name = {name: (kid, typ) for kid, (name, typ) in keys.items()}
    assert by_name["downloads"][1] == "long"
    assert by_name["score"][1] == "double"
    assert by_name["gated"][1] == "boolean"
    assert by_name["language"][1] == "string"
    assert 'weird "name"' in by_name
    nodes = root.findall("g:graph/g:node", NS)
    edges = root.findall("g:graph/g:edge", NS)
    assert len(nodes) == g.num_nodes and len(edges) == g.num_edges
    ids = {n.get("id") for n in nodes}
    # Control characters cannot exist in XML 1.0: replaced, everything else intact.
    assert 'evil/<script>&"quotes"\'\ufffd\ufffd' in ids
    nasty = next(n for n in nodes if n.get("id").startswith("evil/"))
    values = {keys[d.get("key")][0] if d.get("key") in keys else d.get("key"): d.text for d in nasty}
    assert values["license"] == "<b>bold</b> & co"
    assert values["score"] == "NaN"
    base = next(n for n in nodes if n.get("id") == "org/base")
    base_values = {keys[d.get("key")][0]: d.text for d in base if d.get("key") in keys}
    assert json.loads(base_values["language"]) == ["en", "fr"]
    assert json.loads(base_values["metrics"]) == {"acc": 0.9}
    edge = next(e for e in edges if e.get("target").startswith("evil/"))
    assert edge.get("source") == "org/base"
    assert {d.get("key"): d.text for d in edge} == {"relation": "finetune", "source": "cards & <more>"}
    placeholders = [n.get("id") for n in nodes if any(d.get("key") == "placeholder" for d in n)]
    assert sorted(placeholders) == ["org/leaf", "other/child", "other/root"]


def test_graphml_reads_back_in_networkx_as_the_same_graph():
    g = hostile_graph()
    read = nx.parse_graphml(to_graphml(g))
    clean = lambda text: text.replace("\x01", "\ufffd").replace("\x0b", "\ufffd")  # noqa: E731
    assert set(read.nodes) == {clean(n) for n in g.node_ids()}
    assert {(u, v): (d["relation"], d["source"]) for u, v, d in read.edges(data=True)} == {
        (clean(e.parent), clean(e.child)): (e.relation, e.source) for e in g.edges()}
    base, nasty = read.nodes["org/base"], read.nodes[clean(NASTY)]
    assert base["downloads"] == 10 and base["score"] == 0.5 and base["gated"] is False
    assert json.loads(base["metrics"]) == {"acc": 0.9}
    assert math.isnan(nasty["score"]) and nasty['weird "name"'] == '=HYPERLINK("http://x")'
    assert {n for n, d in read.nodes(data=True) if d.get("placeholder")} == {"org/leaf", "other/root", "other/child"}


def test_family_export_keeps_only_that_family():
    g = hostile_graph()
    fam = g.family_of("other/child")
    root = ET.fromstring(to_graphml(g, fam))
    assert {n.get("id") for n in root.findall("g:graph/g:node", NS)} == {"other/root", "other/child"}
    data = to_json_dict(g, fam)
    assert [e["child"] for e in data["edges"]] == ["other/child"]


def test_json_round_trip(tmp_path):
    g = hostile_graph()
    text = to_json(g)
    data = json.loads(text)  # strict JSON: NaN became null
    assert data["format"] == "terrain-lineage/1"
    nasty = next(n for n in data["nodes"] if n["id"] == NASTY)
    assert nasty["attrs"]["score"] is None
    path = tmp_path / "graph.json"
    path.write_text(text, encoding="utf-8")
    back = import_edge_json(path)
    assert back.report.errors == []
    h = back.graph
    assert sorted(h.node_ids()) == sorted(g.node_ids())
    assert {(e.parent, e.child, e.relation) for e in h.edges()} == {(e.parent, e.child, e.relation) for e in g.edges()}
    assert h.node("org/base").attrs["metrics"] == {"acc": 0.9}
    assert h.node("org/leaf").placeholder and not h.node(NASTY).placeholder


def test_csv_exports_parse_back_and_defuse_formulas():
    g = hostile_graph()
    rows = list(csv.DictReader(io.StringIO(to_csv_edges(g))))
    assert len(rows) == g.num_edges
    assert {(r["parent"], r["child"], r["relation"]) for r in rows} == \
        {(e.parent, e.child, e.relation) for e in g.edges()}
    nodes = list(csv.DictReader(io.StringIO(to_csv_nodes(g))))
    nasty = next(r for r in nodes if r["id"] == NASTY)
    assert nasty['weird "name"'] == "'=HYPERLINK(\"http://x\")"
    raw = list(csv.DictReader(io.StringIO(to_csv_nodes(g, escape_formulas=False))))
    assert next(r for r in raw if r["id"] == NASTY)['weird "name"'].startswith("=HYPERLINK")
    base = next(r for r in nodes if r["id"] == "org/base")
    assert json.loads(base["language"]) == ["en", "fr"] and base["placeholder"] == "false"
