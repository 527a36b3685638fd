"""Importing lineage into the database: the real Hugging Face snapshot checked against an
independent computation, and the problems of an edge list reported instead of crashing."""

import pytest
from django.core.management import call_command
from django.db.models import Count, F

from tests.webapp.test_lineage_support import HF_DIR, experiment, graph_from_csv, hf_independent_counts
from webapp.lineage import services
from webapp.lineage.models import Family, LineageGraph, ModelEdge, ModelNode

pytestmark = pytest.mark.django_db


@pytest.fixture
def hf_dir():
    assert (HF_DIR / "model_cards_parent_edges.csv").exists(), f"the repository carries the snapshot at {HF_DIR}"
    return HF_DIR


def test_hf_snapshot_in_the_database_matches_an_independent_count(client, hf_dir, capsys):
    expected = hf_independent_counts(hf_dir)
    call_command("import_lineage", "--hf-snapshot", str(hf_dir))
    graph = LineageGraph.objects.get(slug=services.HF_GRAPH_SLUG)
    assert graph.experiment.visibility == "public" and graph.experiment.featured

    # Counted in the database itself, not read from the graph's summary fields.
    nodes = ModelNode.objects.filter(graph=graph)
    assert nodes.count() == expected["nodes"] == graph.num_nodes
    assert ModelEdge.objects.filter(graph=graph).count() == expected["edges"] == graph.num_edges
    assert nodes.filter(parent_edges__isnull=True).count() == expected["roots"] == graph.num_roots
    assert nodes.filter(placeholder=True).count() == expected["placeholders"]
    families = Family.objects.filter(graph=graph)
    assert families.count() == expected["families"] == graph.num_families
    shapes = sorted(families.values_list("size", "num_roots"), reverse=True)
    assert shapes == expected["family_shapes"]
    # Stored sizes are true member counts, and every edge stays inside its family.
    counted = dict(nodes.values("family").annotate(n=Count("pk")).values_list("family", "n"))
    assert all(counted[pk] == size for pk, size in families.values_list("pk", "size"))
    assert not ModelEdge.objects.filter(graph=graph).exclude(parent__family=F("family")).exists()
    assert not ModelEdge.objects.filter(graph=graph).exclude(child__family=F("family")).exists()

    # The snapshot's problems are in the report, not fatal.
    counts = graph.report["counts"]
    assert counts.get("self_loop", 0) == expected["self_loops"] > 0
    assert counts.get("duplicate_edge", 0) == expected["duplicates"] > 0
    assert counts.get("missing_parent", 0) == expected["placeholders"] > 0
    assert counts.get("cycle", 0) == 0
    assert graph.report["rows_read"] == graph.report["rows_imported"] == expected["rows"]

    # The family overview, as JSON and as the page, says the same.
    body = client.get(f"/lineage/{graph.slug}/families.json?per_page=500").json()
    assert body["count"] == expected["families"]
    assert body["graph"]["roots"] == expected["roots"] and body["graph"]["edges"] == expected["edges"]
    assert [f["size"] for f in body["families"]] == [size for size, _ in expected["family_shapes"][:500]]
    by_depth = client.get(f"/lineage/{graph.slug}/families.json?sort=-depth&per_page=5").json()["families"]
    assert by_depth[0]["depth"] == families.order_by("-depth").first().depth
    page = client.get(graph.get_absolute_url()).content.decode()
    assert f'<dd id="stat-families">{expected["families"]}</dd>' in page
    assert f'<dd id="stat-nodes">{expected["nodes"]}</dd>' in page
    assert "self_loop" in page and "ChocoLlama" in page  # per-row errors shown with their rows
    assert client.get(f"/lineage/{graph.slug}/?page=2").status_code == 200

    # Idempotent: a second run keeps the one graph.
    call_command("import_lineage", "--hf-snapshot", str(hf_dir))
    assert LineageGraph.objects.filter(slug=services.HF_GRAPH_SLUG).count() == 1
    assert "already imported" in capsys.readouterr().out


def test_cycles_self_loops_duplicates_and_missing_parents_are_reported(client, user):
    csv_text = (
        "id,base_model,base_model_relation,license\n"
        "org/b,org/a,finetune,mit\n"          # row 2
        "org/a,org/b,finetune,mit\n"          # row 3: closes a cycle
        "org/c,org/c,,apache-2.0\n"           # row 4: self-loop
        "org/d,org/a,adapter,mit\n"           # row 5
        "org/d,org/a,,mit\n"                  # row 6: duplicate edge (and row)
        "org/e,ghost/base,quantized,\n"       # row 7: parent without a row
    )
    graph = graph_from_csv(csv_text, owner=user)
    report = graph.report
    kinds = {(i["kind"], i["row"]) for i in report["issues"]}
    assert ("cycle", 3) in kinds and ("self_loop", 4) in kinds and ("duplicate_edge", 6) in kinds
    assert ("missing_parent", 7) in kinds
    assert graph.num_nodes == 6  # a, b, c, d, e and the placeholder ghost/base
    assert graph.num_edges == 3
    assert ModelNode.objects.get(graph=graph, model_id="ghost/base").placeholder
    assert ModelEdge.objects.get(graph=graph, child__model_id="org/d").relation == "adapter"
    page = client.get(graph.get_absolute_url()).content.decode()
    assert "would close a cycle" in page and "lists itself as its base model" in page


def test_hf_demo_is_skipped_with_a_note_without_the_data(monkeypatch, tmp_path):
    monkeypatch.setenv("TERRAIN_HF_LINEAGE_DIR", str(tmp_path))
    notes = []
    assert services.hf_demo_publish(log=notes.append) is None
    assert "skipped" in notes[0] and str(tmp_path) in notes[0]
    assert not LineageGraph.objects.exists()


def test_import_command_with_edge_files(tmp_path, user):
    target = experiment(user)
    path = tmp_path / "edges.csv"
    path.write_text("child,parent,relation\nx/b,x/a,merge\nx/c,x/a,finetune\n")
    call_command("import_lineage", "--edges", str(path), "--experiment", target.slug, "--name", "cli")
    graph = LineageGraph.objects.get(name="cli")
    assert (graph.num_nodes, graph.num_edges, graph.num_families, graph.experiment) == (3, 2, 1, target)
