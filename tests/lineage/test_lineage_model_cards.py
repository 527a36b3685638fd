"""Model-card front matter, and Hub ``model_info`` responses replayed offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.lineage.hub import HfHubClient, RecordedHubClient, import_from_hub, parse_model_info
from analysis.lineage.model_cards import ModelCardError, import_model_cards, parse_model_card

GOOD_CARD = """---
license: apache-2.0
language:
- fr
- en
base_model:
- mistralai/Mistral-7B-v0.1
- HuggingFaceH4/zephyr-7b-beta/
base_model_relation: merge
pipeline_tag: text-generation
library_name: transformers
model-index:
- name: my-merge
  results:
  - task: {type: text-generation}
    dataset: {name: MMLU, type: mmlu}
    metrics:
    - {type: accuracy, value: 0.61}
    - {type: note, value: "n/a"}
---
# My merge

Some text.
"""


def test_parse_good_card():
    card = parse_model_card(GOOD_CARD, "me/my-merge")
    assert card.base_models == ["mistralai/Mistral-7B-v0.1", "HuggingFaceH4/zephyr-7b-beta"]
    assert card.relation == "merge"
    assert card.attrs["license"] == "apache-2.0"
    assert card.attrs["language"] == ["en", "fr"]
    assert card.attrs["task"] == "text-generation" and card.attrs["library"] == "transformers"
    assert card.attrs["metrics"] == {"MMLU/accuracy": 0.61}
    assert card.attrs["card_length"] == len("# My merge\n\nSome text.")
    assert card.problems == []


def test_single_base_model_and_no_front_matter():
    card = parse_model_card("---\nbase_model: google-bert/bert-base-uncased\n---\nhi", "me/bert")
    assert card.base_models == ["google-bert/bert-base-uncased"] and card.relation is None
    plain = parse_model_card("# Just a README\n", "me/plain")
    assert plain.base_models == [] and plain.attrs == {"card_length": len("# Just a README")}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("---\nbase_model: [unclosed\n---\n", "invalid YAML at line"),
        ("---\nlicense: mit\nlicense: : :\n---\n", "invalid YAML"),
        ("---\n- just\n- a list\n---\n", "front matter is a list"),
        ("---\nbase_model: x\n", "never closed"),
    ],
)
def test_bad_front_matter_raises_a_clear_error(text, fragment):
    with pytest.raises(ModelCardError, match=fragment.replace("(", r"\(")):
        parse_model_card(text, "me/bad")


def test_import_model_cards_reports_per_row_and_lands_the_rest():
    huge_yaml = "---\nlicense: mit\ndescription: " + "z" * 70_000 + "\n---\n"
    cards = [
        ("org/base", "---\nlicense: mit\nlanguage: en\n---\nbase card"),             # 1 good
        ("org/child", "---\nbase_model: org/base\nbase_model_relation: finetune\n"
                      "license: apache-2.0\n---\n"),                                   # 2 good
        ("org/bad-yaml", "---\nbase_model: [org/base\nlicense: mit\n---\n"),            # 3 bad YAML
        ("org/odd-relation", "---\nbase_model: org/base\nbase_model_relation: distill\n---\n"),  # 4
        ("org/typed", "---\nbase_model: 12\nlanguage: [en, 3]\n---\n"),                 # 5 wrong types
        ("x" * 2000, "---\nbase_model: org/base\n---\n"),                               # 6 oversized id
        ("org/huge", huge_yaml),                                                        # 7 oversized
        ("org/none", None),                                                             # 8 not text
        ("org/self", "---\nbase_model: org/self\n---\n"),                              # 9 self-loop
        ("org/quant", "---\nbase_model: org/child\nbase_model_relation: quantized\n---\n"),  # 10 good
    ]
    result = import_model_cards(cards, source="cards")
    g, report = result.graph, result.report
    by_row = {}
    for issue in report.issues:
        by_row.setdefault(issue.row, set()).add(issue.kind)
    assert by_row[3] == {"bad_yaml"}
    assert "at line 3, column 8 of the card" in report.of_kind("bad_yaml")[0].message
    assert by_row[4] == {"unknown_relation"}
    assert by_row[5] == {"bad_value"}
    assert by_row[6] == {"oversized_field"}
    assert by_row[7] == {"oversized_field"}
    assert by_row[8] == {"bad_value"}
    assert by_row[9] == {"self_loop"}
    assert not {1, 2, 10} & set(by_row)
    # The rest landed.
    assert g.edge("org/base", "org/child").relation == "finetune"
    assert g.edge("org/child", "org/quant").relation == "quantized"
    assert g.edge("org/base", "org/odd-relation").relation == "unknown"
    assert g.node("org/child").attrs["license"] == "apache-2.0"
    assert g.node("org/typed").attrs["language"] == ["en"]
    assert "org/bad-yaml" not in g and "org/huge" not in g
    assert report.rows_read == 10 and report.rows_imported == 6


# -- Hub ----------------------------------------------------------------------


HUB_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hub"


@pytest.fixture
def recorded():
    return RecordedHubClient.from_directory(HUB_FIXTURES)


def test_parse_recorded_model_info_responses(recorded):
    instruct = parse_model_info(recorded.model_info("meta-llama/Llama-3.1-8B-Instruct"))
    assert instruct.parents == ["meta-llama/Llama-3.1-8B"]
    assert instruct.relation == "finetune"  # stated only in the Hub's tags
    assert instruct.attrs["license"] == "llama3.1"
    assert instruct.attrs["created"].startswith("2024-07-18T08:56:00")
    assert instruct.attrs["downloads"] == 5366271

    base = parse_model_info(recorded.model_info("meta-llama/Llama-3.1-8B"))
    assert base.parents == [] and base.attrs["library"] == "transformers"

    lora = parse_model_info(recorded.model_info("example-org/llama-3.1-8b-sql-lora"))
    assert lora.relation == "adapter" and lora.attrs["language"] == ["en"]
    assert lora.attrs["metrics"] == {"Spider/exact_match": 0.712, "Spider/execution_accuracy": 0.768}

    legacy = parse_model_info(recorded.model_info("legacy-user/bert-imdb"))
    assert legacy.parents == ["google-bert/bert-base-uncased"] and legacy.relation == "finetune"

    broken = parse_model_info(recorded.model_info("broken-user/bad-card"))
    assert broken.parents == [] and len(broken.problems) == 4


def test_raw_json_bodies_parse_like_model_info_objects(recorded):
    raw = RecordedHubClient.from_directory(HUB_FIXTURES, as_model_info=False)
    for repo_id in ("example-org/llama-3.1-8b-sql-merge", "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF"):
        a = parse_model_info(recorded.model_info(repo_id))
        b = parse_model_info(raw.model_info(repo_id))
        assert (a.parents, a.relation) == (b.parents, b.relation)


def test_import_from_hub_walks_parents_and_reports_failures(recorded):
    result = import_from_hub(["example-org/llama-3.1-8b-sql-merge", "broken-user/bad-card", "nobody/missing"],
                             recorded, follow_parents=True)
    g, report = result.graph, result.report
    merge = "example-org/llama-3.1-8b-sql-merge"
    assert sorted(g.parents(merge)) == ["example-org/llama-3.1-8b-sql-lora", "meta-llama/Llama-3.1-8B-Instruct"]
    assert {g.edge(p, merge).relation for p in g.parents(merge)} == {"merge"}
    # Walked up: merge -> instruct -> base, all fetched (no placeholders on that path).
    assert g.parents("meta-llama/Llama-3.1-8B-Instruct") == ["meta-llama/Llama-3.1-8B"]
    assert not g.node("meta-llama/Llama-3.1-8B").placeholder
    failed = report.of_kind("fetch_failed")
    assert [("nobody/missing" in i.message) for i in failed] == [True]
    assert report.of_kind("unknown_relation")  # the broken card's "distillation"
    assert recorded.requests.count("meta-llama/Llama-3.1-8B-Instruct") == 1  # fetched once


def test_real_client_path_builds_the_expected_call():
    calls = []

    class FakeApi:
        def model_info(self, repo_id, **kwargs):
            calls.append((repo_id, kwargs))
            return {"id": repo_id, "cardData": {"base_model": "org/base"}}

    client = HfHubClient(api=FakeApi(), timeout=3.0)
    result = import_from_hub(["org/child"], client)
    assert calls == [("org/child", {"expand": ["cardData", "createdAt", "downloads", "likes", "library_name",
                                                "pipeline_tag", "tags"], "timeout": 3.0})]
    assert result.graph.parents("org/child") == ["org/base"]
