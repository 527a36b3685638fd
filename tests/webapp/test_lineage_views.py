"""Lineage pages and JSON: visibility over every URL, the capped layout with folds, exports,
embeds, search, drift, and the graph built from the catalog's own checkpoint links."""

import csv
import io
import json
import random
import xml.etree.ElementTree as ET

import pytest

from tests.webapp.test_lineage_support import experiment, graph_from_csv, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility
from webapp.lineage.models import LineageGraph, ModelNode

pytestmark = pytest.mark.django_db

SMALL = (
    "id,base_model,base_model_relation,license,language,downloads\n"
    "fam/root,,source,mit,en,1000\n"
    "fam/a,fam/root,finetune,mit,en,400\n"
    "fam/b,fam/root,adapter,apache-2.0,fr,100\n"
    "fam/a1,fam/a,quantized,mit,en,50\n"
    "fam/m,\"fam/a,fam/b\",merge,apache-2.0,en,10\n"
    "solo/x,other/base,finetune,,,\n"
)


def graph_urls(graph):
    s = graph.slug
    urls = [f"/lineage/{s}/", f"/lineage/{s}/families.json", f"/lineage/{s}/overview.json",
            f"/lineage/{s}/search.json?q=fam", f"/lineage/{s}/find/?q=fam/a", f"/lineage/{s}/node.json?id=fam/a",
            f"/lineage/{s}/report.json", f"/lineage/{s}/drift/", f"/lineage/{s}/drift/?format=json", f"/lineage/{s}/embed/",
            f"/lineage/{s}/family/0/", f"/lineage/{s}/family/0/layout.json", f"/lineage/{s}/family/0/drift/",
            f"/lineage/{s}/family/0/embed/"]
    for fmt in ("graphml", "json", "edges.csv", "nodes.csv"):
        urls += [f"/lineage/{s}/export/{fmt}", f"/lineage/{s}/family/0/export/{fmt}"]
    return urls


def test_private_graph_is_404_for_others_on_every_url(client, user, other_user, staff_user):
    graph = graph_from_csv(SMALL, owner=user, visibility=Visibility.PRIVATE)
    urls = graph_urls(graph)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert graph.name not in client.get("/lineage/").content.decode()
    client.force_login(other_user)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/lineage/{graph.slug}/delete/").status_code == 404
    for who in (user, staff_user):
        client.force_login(who)
        for url in urls:
            assert client.get(url).status_code in (200, 302), url
    client.force_login(user)
    assert graph.name in client.get("/lineage/").content.decode()


def test_unlisted_graph_opens_by_link_but_is_not_listed(client, user):
    graph = graph_from_csv(SMALL, owner=user, visibility=Visibility.UNLISTED, name="unlisted lineage")
    assert client.get(graph.get_absolute_url()).status_code == 200
    assert client.get(f"/lineage/{graph.slug}/family/0/layout.json").status_code == 200
    assert "unlisted lineage" not in client.get("/lineage/").content.decode()
    # Only the owner may delete.
    assert client.post(f"/lineage/{graph.slug}/delete/").status_code == 403
    client.force_login(user)
    assert client.post(f"/lineage/{graph.slug}/delete/").status_code == 302
    assert not LineageGraph.objects.exists()


def test_family_page_layout_node_details_and_search(client, user):
    graph = graph_from_csv(SMALL, owner=user)
    page = client.get(f"/lineage/{graph.slug}/family/0/").content.decode()
    assert 'id="tree-chart"' in page and "lineage_tree.js" in page and "lineage.css" in page
    layout = client.get(f"/lineage/{graph.slug}/family/0/layout.json").json()
    n = layout["nodes"]
    assert layout["total_nodes"] == layout["visible"] == 5 and layout["label"] == "fam/root"
    assert set(n["id"]) == {"fam/root", "fam/a", "fam/b", "fam/a1", "fam/m"}
    # One tree parent per node; the merge's other parent is an extra edge.
    assert sum(1 for p in n["parent"] if p < 0) == 1 and len(layout["extra_edges"]) == 1
    assert layout["extra_edges"][0][2] == "merge"
    licence = layout["values"]["license"]
    assert licence["levels"] == ["mit", "apache-2.0"]
    assert [licence["levels"][c] for c in licence["codes"]][n["id"].index("fam/b")] == "apache-2.0"
    assert any(t["name"] == "downloads" and t["kind"] == "numeric" for t in layout["traits"])
    radial = client.get(f"/lineage/{graph.slug}/family/0/layout.json?kind=radial").json()
    assert radial["kind"] == "radial" and radial["visible"] == 5

    node = client.get(f"/lineage/{graph.slug}/node.json", {"id": "fam/m"}).json()
    assert {p["id"] for p in node["parents"]} == {"fam/a", "fam/b"} and node["generation"] == 2
    assert node["attrs"]["license"] == "apache-2.0" and node["hub_url"] == "https://huggingface.co/fam/m"
    hits = client.get(f"/lineage/{graph.slug}/search.json", {"q": "fam/a"}).json()["results"]
    assert hits[0]["id"] == "fam/a" and hits[0]["family"] == 0  # exact match first
    solo = client.get(f"/lineage/{graph.slug}/find/", {"q": "solo/x"})
    assert solo.status_code == 302 and solo["Location"].startswith(f"/lineage/{graph.slug}/family/1/?focus=solo")


def random_tree_csv(n, seed=0):
    rng = random.Random(seed)
    lines = ["id,base_model,base_model_relation"]
    for i in range(1, n):
        parent = rng.randrange(max(0, i - 40), i) if rng.random() < 0.7 else rng.randrange(i)
        lines.append(f"big/m{i},big/m{parent},finetune")
    return "\n".join(lines) + "\n"


def test_big_family_is_capped_and_folds_follow_the_user(client, user):
    graph = graph_from_csv(random_tree_csv(5000), owner=user)
    url = f"/lineage/{graph.slug}/family/0/layout.json"
    first = client.get(url).json()
    assert first["total_nodes"] == 5000 and first["visible"] <= 3000
    assert first["auto_collapsed"] and first["hidden_total"] == 5000 - first["visible"]
    assert any("folded" in note for note in first["notes"])
    n = first["nodes"]
    assert sum(n["hidden"]) == first["hidden_total"]

    # Expanding a folded node shows its children even past the cap.
    folded = first["auto_collapsed"][0]
    opened = client.get(url, {"expanded": str(folded)}).json()
    o = opened["nodes"]
    i = o["key"].index(folded)
    assert o["hidden"][i] == 0 and i in o["parent"]

    # Collapsing a visible inner node hides exactly its drawn subtree.
    small = client.get(url, {"cap": "400"}).json()
    s = small["nodes"]
    assert small["visible"] <= 400
    inner = next(k for k, h in zip(s["key"], s["hidden"]) if h == 0 and s["key"].index(k) in s["parent"])
    folded_now = client.get(url, {"cap": "400", "collapsed": str(inner)}).json()
    j = folded_now["nodes"]["key"].index(inner)
    assert folded_now["nodes"]["hidden"][j] > 0 and inner in folded_now["collapsed"]

    # Focus opens the path to a deep node whatever the cap.
    deep = ModelNode.objects.filter(graph=graph).order_by("-generation").first()
    focused = client.get(url, {"cap": "50", "focus": str(deep.pk)}).json()
    assert deep.model_id in focused["nodes"]["id"] and focused["focus"] == deep.pk


def streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_exports_of_graph_and_family(client, user):
    graph = graph_from_csv(SMALL, owner=user)
    s = graph.slug
    graphml = client.get(f"/lineage/{s}/export/graphml")
    assert graphml["Content-Disposition"].endswith('.graphml"')
    root = ET.fromstring(b"".join(graphml.streaming_content))
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    assert len(root.findall(".//g:node", ns)) == graph.num_nodes and len(root.findall(".//g:edge", ns)) == graph.num_edges
    body = json.loads(streamed(client.get(f"/lineage/{s}/family/0/export/json")))
    assert len(body["nodes"]) == 5 and len(body["edges"]) == 5
    edges = list(csv.DictReader(io.StringIO(streamed(client.get(f"/lineage/{s}/export/edges.csv")))))
    assert {(e["parent"], e["child"]) for e in edges} >= {("fam/a", "fam/m"), ("fam/b", "fam/m"), ("other/base", "solo/x")}
    nodes = list(csv.DictReader(io.StringIO(streamed(client.get(f"/lineage/{s}/family/1/export/nodes.csv")))))
    assert {r["id"]: r["placeholder"] for r in nodes} == {"solo/x": "false", "other/base": "true"}
    assert client.get(f"/lineage/{s}/export/pickle").status_code == 404


def test_embeds_are_frameable_and_pages_are_not(client, user):
    graph = graph_from_csv(SMALL, owner=user)
    for url in (f"/lineage/{graph.slug}/embed/", f"/lineage/{graph.slug}/family/0/embed/"):
        response = client.get(url)
        assert response.status_code == 200 and "X-Frame-Options" not in response
        assert b'class="topbar"' not in response.content
        assert b'<link rel="icon" href="data:image/svg+xml,' in response.content  # else the browser asks for /favicon.ico
    assert client.get(graph.get_absolute_url())["X-Frame-Options"] in ("DENY", "SAMEORIGIN")


def test_drift_known_answer(client, user):
    graph = graph_from_csv(SMALL, owner=user)
    drift = client.get(f"/lineage/{graph.slug}/drift/?format=json").json()
    licence = next(d for d in drift["categorical"] if d["trait"] == "license")
    # root->a same, root->b change, a->a1 same, a->m change, b->m same; solo/x has no licence.
    assert (licence["edges_compared"], licence["edges_changed"], licence["edges_missing"]) == (5, 2, 1)
    assert {(g["generation"], g["edges"], g["changed"]) for g in licence["by_generation"]} == {(0, 2, 1), (1, 3, 1)}
    downloads = next(d for d in drift["numeric"] if d["trait"] == "downloads")
    # Changes: -600, -900, -350, -390, -90.
    assert downloads["mean_change"] == pytest.approx((-600 - 900 - 350 - 390 - 90) / 5)
    family = client.get(f"/lineage/{graph.slug}/family/0/drift/?format=json").json()
    assert next(d for d in family["categorical"] if d["trait"] == "license")["edges_missing"] == 0
    page = client.get(f"/lineage/{graph.slug}/drift/").content.decode()
    assert 'data-trait="license"' in page and 'data-trait="task"' in page and "40%" in page


def test_catalog_checkpoints_become_a_tree(client, user, other_user, tmp_path, django_capture_on_commit_callbacks):
    exp = experiment(user, Visibility.PRIVATE, title="Fine-tunes")
    state = tiny_state(seed=0)
    # The tree follows the catalog when its transaction commits (one rebuild for the three).
    with django_capture_on_commit_callbacks(execute=True):
        base = saved_checkpoint(exp, "base", state, tmp_path)
        child = saved_checkpoint(exp, "child", state, tmp_path, parent=base, relation="finetune")
        saved_checkpoint(exp, "quant", state, tmp_path, parent=child, relation="quantize")
    assert LineageGraph.objects.filter(experiment=exp, source="catalog").count() == 1
    client.force_login(other_user)
    assert client.get(f"/lineage/experiment/{exp.slug}/").status_code == 404
    assert client.get(f"/lineage/checkpoint/{child.slug}/").status_code == 404
    client.force_login(user)
    assert 'id="family-tree-link"' in client.get(exp.get_absolute_url()).content.decode()
    response = client.get(f"/lineage/experiment/{exp.slug}/")
    graph = LineageGraph.objects.get(experiment=exp, source="catalog")
    assert response.status_code == 302 and response["Location"] == graph.get_absolute_url()
    assert (graph.num_nodes, graph.num_edges, graph.num_families) == (3, 2, 1)
    node = ModelNode.objects.get(graph=graph, model_id="quant")
    assert node.checkpoint.slug and node.parent_edges.get().relation == "quantized"
    jump = client.get(f"/lineage/checkpoint/{child.slug}/")
    assert jump.status_code == 302 and jump["Location"] == f"/lineage/{graph.slug}/family/0/?focus=child"
    details = client.get(f"/lineage/{graph.slug}/node.json", {"id": "quant"}).json()
    assert details["checkpoint"]["slug"] == node.checkpoint.slug and details["hub_url"] is None
    assert details["parents"][0]["checkpoint"] == child.slug
    # A new checkpoint rebuilds the tree (same permalink) when it is stored, not when a page is seen.
    with django_capture_on_commit_callbacks(execute=True):
        sibling = saved_checkpoint(exp, "sibling", state, tmp_path, parent=base, relation="adapter")
    rebuilt = LineageGraph.objects.get(experiment=exp, source="catalog")
    assert rebuilt.slug == graph.slug and rebuilt.num_nodes == 4
    client.get(f"/lineage/experiment/{exp.slug}/")
    assert LineageGraph.objects.get(experiment=exp, source="catalog").pk == rebuilt.pk
    # Saving a checkpoint without changing its links keeps the graph; deleting one rebuilds it.
    with django_capture_on_commit_callbacks(execute=True):
        sibling.save()
    assert LineageGraph.objects.get(experiment=exp, source="catalog").pk == rebuilt.pk
    with django_capture_on_commit_callbacks(execute=True):
        sibling.delete()
    assert LineageGraph.objects.get(experiment=exp, source="catalog").num_nodes == 3
