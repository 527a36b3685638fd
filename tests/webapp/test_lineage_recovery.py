"""Recovering lineage from weights as a job kind, run in-process through the job runner."""

import csv
import io

import pytest

from tests.webapp.test_lineage_support import experiment, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.runner import run_job
from webapp.jobs.services import JobParamsInvalid, job_create, job_params_validate

pytestmark = pytest.mark.django_db


def run(user, **data):
    validated = job_params_validate(kind="lineage_recovery", data={"visibility": Visibility.PUBLIC, **data}, user=user)
    job = job_create(kind="lineage_recovery", params=validated.params, owner=user, visibility=Visibility.PUBLIC,
                     enqueue=False)
    assert run_job(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    return job


def test_synthetic_zoo_recovery_streams_and_scores(client, user):
    # The zoo: 3 families of 13 models (a root, 4 children, 8 grandchildren).
    job = run(user, source="synthetic", n_families=3, children_per_root=4, grandchildren_per_child=2, seed=0)
    result = job.result
    assert result["num_models"] == 39 and result["truth_known"]
    assert result["score"]["clustering_accuracy"] >= 0.8
    assert result["score"]["directed_edge_accuracy"] >= 0.8
    assert result["num_families"] == 3

    kinds = list(job.events.order_by("seq").values_list("kind", flat=True))
    assert kinds.count("model") == 39  # one event per model trained, streamed as it happens
    for later in ("distances", "families", "tree", "score"):
        assert kinds.index("model") < kinds.index(later)
    progress = [p["done"] for p in job.events.filter(kind="model").order_by("seq").values_list("payload", flat=True)]
    assert progress == list(range(1, 40))
    tree = result["tree"]
    assert len(tree["nodes"]) == 39 and len(tree["edges"]) == 39 - len(tree["roots"])
    correct = sum(e["status"] == "correct" for e in tree["edges"])
    assert correct / 36 == pytest.approx(result["score"]["directed_edge_accuracy"])

    page = client.get(job.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200 and 'id="recovery-tree"' in html and "js/lineage_renderers.js" in html  # the kind's renderer
    rows = list(csv.DictReader(io.StringIO(client.get(f"/r/{job.slug}/export.csv").content.decode())))
    assert len(rows) == len(tree["edges"]) and {r["status"] for r in rows} <= {"correct", "reversed", "wrong"}
    assert client.get(f"/r/{job.slug}/embed").status_code == 200
    offline = client.get(f"/r/{job.slug}/export.html").content.decode()
    assert "renderers.lineage_recovery" in offline  # the renderer travels inside the standalone file


def test_catalog_checkpoints_recovery_and_its_validation(user, other_user, tmp_path):
    exp = experiment(user, Visibility.PRIVATE)
    base = tiny_state(0)
    saved = [saved_checkpoint(exp, "root", base, tmp_path)]
    for k in range(3):
        child = {key: value + 0.02 * tiny_state(10 + k)[key] for key, value in base.items()}
        saved.append(saved_checkpoint(exp, f"child{k}", child, tmp_path, parent=saved[0], relation="finetune"))
    with pytest.raises(JobParamsInvalid) as invalid:
        job_params_validate(kind="lineage_recovery", data={"source": "experiment", "source_experiment": exp.slug},
                            user=other_user)
    assert "source_experiment" in invalid.value.errors  # a private experiment is invisible to others
    job = run(user, source="experiment", source_experiment=exp.slug)
    result = job.result
    assert result["num_models"] == 4 and result["truth_known"]
    assert result["score"]["clustering_accuracy"] == 1.0 and result["score"]["undirected_edge_accuracy"] == 1.0
    assert [e["payload"]["action"] for e in job.events.filter(kind="model").values("payload")] == ["loaded"] * 4

    too_few = experiment(user, Visibility.PRIVATE, title="two only")
    saved_checkpoint(too_few, "a", base, tmp_path)
    with pytest.raises(JobParamsInvalid) as invalid:
        job_params_validate(kind="lineage_recovery", data={"source": "experiment", "source_experiment": too_few.slug},
                            user=user)
    assert "at least 3 checkpoints" in invalid.value.errors["source_experiment"][0]


def test_recovered_edges_carry_relation_confidence_and_metadata_disagreements(user, tmp_path):
    """A root, two fine-tunes and an 8-bit copy of the root; the catalog (the metadata) wrongly files
    the second fine-tune under the first.  The tree keeps the weights' answer and lists the disagreement."""
    import torch

    from analysis.lineage.zoo_models import quantize_state

    spec = {"kind": "mlp", "in": 64, "hidden": [32], "out": 10}  # rows long enough to see a value grid
    exp = experiment(user, Visibility.PRIVATE, title="metadata check")
    base = tiny_state(0, spec)
    root = saved_checkpoint(exp, "root", base, tmp_path, spec=spec)
    first = saved_checkpoint(exp, "ft-one", {k: v + 0.02 * tiny_state(11, spec)[k] for k, v in base.items()}, tmp_path,
                             parent=root, relation="finetune", spec=spec)
    saved_checkpoint(exp, "ft-two", {k: v + 0.02 * tiny_state(12, spec)[k] for k, v in base.items()}, tmp_path,
                     parent=first, relation="finetune", spec=spec)  # wrong on purpose: the weights say root
    saved_checkpoint(exp, "root-int8", quantize_state({k: v.to(torch.float32) for k, v in base.items()}, 8), tmp_path,
                     parent=root, relation="quantize", spec=spec)
    result = run(user, source="experiment", source_experiment=exp.slug).result
    edges = {(e["parent"], e["child"]): e for e in result["tree"]["edges"]}
    assert set(edges) == {("root", "ft-one"), ("root", "ft-two"), ("root", "root-int8")}
    assert edges[("root", "root-int8")]["relation"] == "quantized"
    assert edges[("root", "ft-one")]["relation"] == "finetune"
    assert all(0.0 <= e["confidence"] <= 1.0 for e in edges.values())
    disagreements = result["tree"]["disagreements"]
    assert [(d["child"], d["kind"], d["weights_parent"], d["metadata_parent"]) for d in disagreements] == [
        ("ft-two", "declared_parent", "root", "ft-one")]
    assert result["tree"]["metadata_known"] and result["score"]["relation_accuracy"] == pytest.approx(2 / 3)


def test_recipe_field_is_validated(user):
    with pytest.raises(JobParamsInvalid) as invalid:
        job_params_validate(kind="lineage_recovery", data={"source": "synthetic", "recipe": "no-such-recipe"}, user=user)
    assert "recipe" in invalid.value.errors
    validated = job_params_validate(kind="lineage_recovery", data={"source": "synthetic", "recipe": "merges"}, user=user)
    assert validated.params["recipe"] == "merges"


def test_the_declared_recipes_are_the_generators():
    import typing

    from analysis.lineage.zoo_recipes import RECIPES
    from webapp.lineage.params import Recipe

    assert list(typing.get_args(Recipe)) == ["", *RECIPES]


def test_a_recipe_zoo_job_scores_relations(user):
    job = run(user, source="synthetic", recipe="lora_adapters", seed=0)
    result = job.result
    assert result["truth_known"] and result["num_models"] == 24 and result["num_families"] == 3
    relations = {e["relation"] for e in result["tree"]["edges"]}
    assert {"finetune", "adapter"} <= relations
    assert result["score"]["relation_accuracy"] >= 0.8 and result["score"]["clustering_accuracy"] == 1.0
