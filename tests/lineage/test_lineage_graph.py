"""The graph model and hostile edge files: every problem is reported with its
row, and the good rows still land."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.lineage.edge_lists import (
    HF_ANNOTATED_RELATIONS,
    EdgeListFormat,
    import_edge_csv,
    import_edge_json,
    import_edge_text,
)
from analysis.lineage.graph import EdgeStatus, ImportReport, LineageGraph

REPO_ROOT = Path(__file__).resolve().parents[2]


def issues_by_kind(report: ImportReport) -> dict[str, list]:
    out: dict[str, list] = {}
    for issue in report.issues:
        out.setdefault(issue.kind, []).append(issue)
    return out


# -- graph basics -------------------------------------------------------------


def test_add_edge_refuses_self_loops_duplicates_and_cycles():
    g = LineageGraph()
    assert g.add_edge("a", "b") is EdgeStatus.ADDED
    assert g.add_edge("b", "c", "finetune") is EdgeStatus.ADDED
    assert g.add_edge("a", "a") is EdgeStatus.SELF_LOOP
    assert g.add_edge("a", "b") is EdgeStatus.DUPLICATE
    assert g.add_edge("c", "a") is EdgeStatus.CYCLE
    assert g.add_edge("c", "b") is EdgeStatus.CYCLE
    assert g.add_edge("a", "c", "merge") is EdgeStatus.ADDED  # a shortcut is not a cycle
    assert g.num_edges == 3
    assert all(g.node(n).placeholder for n in "abc")  # only ever mentioned in edges
    # A duplicate that knows the relation upgrades an "unknown" edge.
    assert g.add_edge("a", "b", "adapter") is EdgeStatus.DUPLICATE
    assert g.edge("a", "b").relation == "adapter"
    with pytest.raises(ValueError):
        g.add_edge("x", "y", "distilled")


def test_real_row_clears_placeholder_and_merges_attrs():
    g = LineageGraph()
    g.add_edge("base", "child")
    assert g.node("base").placeholder
    g.add_node("base", {"license": "mit"})
    g.add_node("base", {"task": "fill-mask"}, placeholder=True)  # never demotes a real node
    assert not g.node("base").placeholder
    assert g.node("base").attrs == {"license": "mit", "task": "fill-mask"}


def test_families_match_brute_force_on_random_forests():
    rng = random.Random(7)
    for trial in range(20):
        g = LineageGraph()
        n = rng.randint(1, 60)
        for i in range(n):
            g.add_node(f"m{i}")
        edges = set()
        for _ in range(rng.randint(0, n)):
            a, b = rng.sample(range(n), 2) if n > 1 else (0, 0)
            if a != b and g.add_edge(f"m{a}", f"m{b}") is EdgeStatus.ADDED:
                edges.add((a, b))
        # brute force: repeatedly merge label sets until stable
        label = list(range(n))
        changed = True
        while changed:
            changed = False
            for a, b in edges:
                low = min(label[a], label[b])
                if label[a] != low or label[b] != low:
                    label[a] = label[b] = low
                    changed = True
        expected = sorted(sorted(f"m{i}" for i in range(n) if label[i] == lab) for lab in set(label))
        got = sorted(sorted(f.nodes) for f in g.families())
        assert got == expected, trial
        assert sum(f.size for f in g.families()) == n


def test_generations_stats_and_search_on_a_small_dag():
    g = LineageGraph()
    for p, c, r in [("root", "a", "finetune"), ("root", "b", "finetune"), ("a", "a1", "adapter"),
                    ("a1", "m", "merge"), ("b", "m", "merge"), ("other", "x", "quantized")]:
        g.add_edge(p, c, r)
    gen = g.generations()
    assert gen["root"] == 0 and gen["a1"] == 2
    assert gen["m"] == 3  # longest path: root -> a -> a1 -> m
    fam = g.family_of("m")
    assert set(fam.nodes) == {"root", "a", "b", "a1", "m"}
    assert fam.label == "root"
    s = g.family_stats(fam)
    assert (s.size, s.num_edges, s.depth, s.max_branching, s.num_roots, s.num_leaves, s.num_merges) == \
        (5, 5, 3, 2, 1, 1, 1)
    assert s.relation_counts == {"finetune": 2, "adapter": 1, "merge": 2}
    assert g.descendants("a") == {"a1", "m"}
    assert g.ancestors("m") == {"root", "a", "b", "a1"}
    assert g.search("A1") == ["a1"]
    assert g.search("o")[:2] == ["root", "other"]


# -- hostile CSVs -------------------------------------------------------------


def test_hostile_csv_reports_every_problem_and_lands_the_rest():
    huge = "x" * 5000
    text = "\n".join([
        "current_model,base_model,base_model_relation",   # line 1
        "org/a,org/base,finetune",                          # 2 good
        "org/b,org/a,adapter",                              # 3 good
        "org/c,org/b,finetune",                             # 4 good
        "org/base,org/c,finetune",                          # 5 closes base->a->b->c->base
        "org/self,org/self/,finetune",                      # 6 self-loop (after the '/' is normalised)
        "org/b,org/a,adapter",                              # 7 duplicate row and edge
        "org/d,org/ghost,quantized",                        # 8 parent with no row of its own
        "org/e,org/a,distilled",                            # 9 unknown relation: kept as unknown
        f"org/f,{huge},finetune",                           # 10 oversized parent field
        f"{huge},org/a,finetune",                           # 11 oversized id
        ",org/a,finetune",                                  # 12 empty id
        "org/g,\"org/a,org/b\",merge",                      # 13 merge of two parents: good
        "org/h,,source",                                    # 14 a root
        "org/i,org/a,finetune,surplus",                     # 15 extra field: kept, warned
        "org/j,org/a",                                      # 16 short row: relation missing -> unknown
    ]) + "\n"
    result = import_edge_text(text, source="hostile.csv")
    g, report = result.graph, result.report
    kinds = issues_by_kind(report)

    assert [i.row for i in kinds["cycle"]] == [5]
    assert "org/base" in kinds["cycle"][0].message
    assert [i.row for i in kinds["self_loop"]] == [6]
    assert [i.row for i in kinds["duplicate_edge"]] == [7]
    assert [i.row for i in kinds["duplicate_row"]] == [7]
    assert [(i.row, "org/ghost" in i.message) for i in kinds["missing_parent"]] == [(8, True)]
    assert [i.row for i in kinds["unknown_relation"]] == [9]
    assert "distilled" in kinds["unknown_relation"][0].message
    assert sorted(i.row for i in kinds["oversized_field"]) == [10, 11]
    assert [i.row for i in kinds["missing_value"]] == [12]
    assert [i.row for i in kinds["malformed_row"]] == [15]
    assert all(i.source == "hostile.csv" for i in report.issues)

    # The rest landed.
    assert g.parents("org/c") == ["org/b"]
    assert g.parents("org/base") == []  # the cycle-closing edge was refused
    assert sorted(g.parents("org/g")) == ["org/a", "org/b"]
    assert g.edge("org/a", "org/g").relation == "merge"
    assert g.edge("org/a", "org/e").relation == "unknown"
    assert g.edge("org/ghost", "org/d").relation == "quantized"
    assert g.node("org/ghost").placeholder and not g.node("org/d").placeholder
    assert g.parents("org/self") == [] and "org/self" in g
    assert "org/f" not in g  # its only field of substance was oversized: the whole row is skipped
    assert g.parents("org/i") == ["org/a"]
    assert g.edge("org/a", "org/j").relation == "unknown"
    assert g.node("org/h").attrs["declared_root"] is True
    assert report.rows_read == 15
    assert not any(len(n) > 1000 for n in g.node_ids())


def test_missing_columns_give_one_clear_file_error():
    result = import_edge_text("name,parent_of\norg/a,org/b\n", source="wrong.csv")
    (issue,) = result.report.issues
    assert issue.kind == "missing_column" and issue.row == 1 and issue.severity == "error"
    assert "name" in issue.message and "base_model" in issue.message
    assert result.graph.num_nodes == 0

    explicit = EdgeListFormat("model", "parent")
    result = import_edge_text("model,base\norg/a,org/b\n", fmt=explicit)
    assert result.report.of_kind("missing_column")[0].message.startswith("required column(s) 'parent'")

    # A missing optional relation column is only a warning; rows still land.
    result = import_edge_text("current_model,base_model\norg/a,org/b\n", fmt=HF_ANNOTATED_RELATIONS)
    assert result.report.of_kind("missing_column")[0].severity == "warning"
    assert result.graph.parents("org/a") == ["org/b"]


def test_csv_parser_errors_are_per_row(tmp_path):
    # A field beyond the csv module's own limit raises inside the reader; the
    # importer must report that row and carry on with the next ones.
    path = tmp_path / "big.csv"
    path.write_text("id,base_model\norg/a,org/base\norg/b," + "y" * 200_000 + "\norg/c,org/base\n",
                    encoding="utf-8")
    result = import_edge_csv(path)
    kinds = issues_by_kind(result.report)
    assert [i.row for i in kinds["malformed_row"]] == [3]
    assert sorted(result.graph.children("org/base")) == ["org/a", "org/c"]
    # Bad bytes are replaced, not fatal.
    raw = tmp_path / "latin1.csv"
    raw.write_bytes(b"id,base_model\norg/caf\xe9,org/base\norg/d,org/base\n")
    result = import_edge_csv(raw)
    assert "org/d" in result.graph and result.graph.num_edges == 2


def test_empty_and_header_only_files():
    assert import_edge_text("").report.of_kind("missing_column")[0].message.startswith("file is empty")
    result = import_edge_text("id,base_model\n")
    assert result.report.issues == [] and result.graph.num_nodes == 0


def test_extra_columns_become_attributes():
    result = import_edge_text("id,base_model,license,downloads\norg/a,org/b,mit,1200\norg/c,org/b,,x\n")
    g = result.graph
    assert g.node("org/a").attrs == {"license": "mit", "downloads": 1200}
    assert g.node("org/c").attrs == {"downloads": "x"}  # not a number: kept as text, never guessed


def test_json_edge_lists(tmp_path):
    rows = [
        {"id": "org/a", "base_model": "org/base"},
        {"id": "org/b", "base_model": ["org/a", "org/base"], "base_model_relation": "merge"},
        {"id": {"nested": 1}, "base_model": "org/a"},
        "not an object",
        {"id": "org/c", "base_model": 17},
        {"id": "org/d", "base_model": "org/d"},
    ]
    path = tmp_path / "edges.json"
    path.write_text(json.dumps({"edges": rows}), encoding="utf-8")
    result = import_edge_json(path)
    kinds = issues_by_kind(result.report)
    assert [i.row for i in kinds["bad_value"]] == [3, 5]
    assert [i.row for i in kinds["malformed_row"]] == [4]
    assert [i.row for i in kinds["self_loop"]] == [6]
    assert sorted(result.graph.parents("org/b")) == ["org/a", "org/base"]
    assert "org/c" in result.graph and result.graph.parents("org/c") == []

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert import_edge_json(bad).report.errors[0].kind == "malformed_row"
    assert import_edge_json(io.StringIO('{"rows": 1}')).report.errors[0].kind == "missing_column"


def test_import_report_limits_rows():
    text = "id,base_model\n" + "".join(f"org/m{i},org/base\n" for i in range(50))
    result = import_edge_text(text, max_rows=10)
    assert result.graph.num_edges == 10
    assert result.report.of_kind("too_many_rows")


def test_library_never_imports_web_frameworks():
    code = (
        "import sys, analysis.lineage as L\n"
        "import analysis.lineage.kinship, analysis.lineage.recovery, analysis.lineage.synthetic_zoo\n"
        "import analysis.lineage.export, analysis.lineage.hub, analysis.lineage.model_cards\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'channels')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120)
    for path in (REPO_ROOT / "analysis" / "lineage").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for framework in ("django", "celery", "channels"):
            assert f"import {framework}" not in text and f"from {framework}" not in text, path
