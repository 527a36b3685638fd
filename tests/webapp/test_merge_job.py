"""The merge job kind: form rules, the sweep's events, the merged child in the catalog and the family tree."""

import pytest

from tests.webapp.merge_fixtures import TASKS, digits_family
from webapp.catalog.models import Checkpoint
from webapp.jobs.models import Job
from webapp.jobs.runner import run_job
from webapp.jobs.services import JobParamsInvalid, job_create, job_params_validate
from webapp.lineage import services as lineage

pytestmark = pytest.mark.django_db


def validate(user, **data):
    return job_params_validate(kind="merge", data=data, user=user)


def test_merge_form_names_the_bad_field(user, tmp_path):
    experiment, base, (a, b) = digits_family(user, tmp_path, epochs=1)
    ok = dict(source_experiment=experiment.slug, models=[a.slug, b.slug], base=base.slug, method="task_arithmetic", tasks=TASKS)
    assert validate(user, **ok).params["models"] == [a.slug, b.slug]
    cases = [
        (dict(ok, base=""), "base"),  # task arithmetic needs it
        (dict(ok, models=[a.slug]), None),  # one model + base is allowed
        (dict(ok, base=a.slug), "base"),  # the base cannot be merged with itself
        (dict(ok, tasks="0,1; 12"), "tasks"),
        (dict(ok, sweep_from=3.0), "sweep_from"),
        (dict(ok, models=["nope"]), "models"),
        (dict(ok, method="soup"), "method"),
    ]
    for data, field in cases:
        if field is None:
            validate(user, **data)
            continue
        with pytest.raises(JobParamsInvalid) as exc:
            validate(user, **data)
        assert field in exc.value.errors, (data, exc.value.errors)


def test_merge_job_streams_the_sweep_and_stores_a_child_of_all_parents(user, tmp_path):
    experiment, base, (a, b) = digits_family(user, tmp_path)
    params = validate(user, source_experiment=experiment.slug, models=[a.slug, b.slug], base=base.slug,
                      method="task_arithmetic", tasks=TASKS, sweep_steps=6, sweep_from=0.0, sweep_to=1.0).params
    job = job_create(kind="merge", params=params, owner=user, enqueue=False)
    assert run_job(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    points = [e.payload for e in job.events.filter(kind="point").order_by("seq")]
    assert [p["value"] for p in points] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert set(points[0]["results"]) == {"digits 01234", "digits 56789", "mean"}
    saved = job.result["saved"]
    best = max(points, key=lambda p: p["score"])
    assert saved["value"] == best["value"] and 0 < saved["value"] < 1

    merged = Checkpoint.objects.get(slug=saved["slug"])
    assert merged.relation == "merge" and merged.parent == base and merged.experiment == experiment
    assert merged.spec == base.spec
    assert set(merged.merge_parents.all()) == {base, a, b}
    assert merged.created_by_job_id == job.pk
    # Scored as the sweep said: the stored model is the merge at the chosen value.
    from analysis import checkpoints, merging

    stored = checkpoints.load(merged.file.path)
    assert stored.meta["merge"]["models"] == [a.slug, b.slug]
    tasks = [merging.digits_task(c) for c in ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))]
    direct = merging.evaluate_state(stored.state, tasks, spec=stored.spec)
    assert direct["mean"]["accuracy"] == pytest.approx(best["results"]["mean"]["accuracy"])
    # Every fine-tune is a specialist; the merge beats both on the mean of the two tasks.
    singles = [merging.evaluate_state(checkpoints.load(c.file.path).state, tasks, spec=stored.spec)["mean"]["accuracy"]
               for c in (a, b)]
    assert direct["mean"]["accuracy"] > max(singles)

    graph = lineage.lineage_graph_sync_catalog(experiment=experiment)
    edges = {(e.parent.model_id, e.child.model_id, e.relation) for e in graph.edges.select_related("parent", "child")}
    assert {(p.name, merged.name, "merge") for p in (base, a, b)} <= edges
    assert "three_models" in saved["plane_url"] and merged.slug in saved["plane_url"]
    from django.test import Client

    client = Client()
    client.force_login(user)
    page = client.get(merged.get_absolute_url()).content.decode()
    assert 'id="merge-parents"' in page and all(p.get_absolute_url() in page for p in (base, a, b))


def test_greedy_merge_job_compares_kinship_with_random_partners(user, tmp_path):
    pairs = [(0, 1), (2, 3), (4, 5), (0, 1)]  # the last one is a near twin of the first
    experiment, base, pool = digits_family(user, tmp_path, subsets=pairs, epochs=3)
    with pytest.raises(JobParamsInvalid) as exc:
        job_params_validate(kind="merge_greedy", data=dict(models=[pool[0].slug, pool[1].slug], base=base.slug), user=user)
    assert "models" in exc.value.errors
    params = job_params_validate(kind="merge_greedy", data=dict(
        source_experiment=experiment.slug, models=[c.slug for c in pool], base=base.slug, tasks="0,1; 2,3; 4,5",
        random_runs=2), user=user).params
    job = job_create(kind="merge_greedy", params=params, owner=user, enqueue=False)
    assert run_job(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    runs = [e.payload for e in job.events.filter(kind="run").order_by("seq")]
    assert [r["run"] for r in runs] == ["kinship", "random (seed 0)", "random (seed 1)"]
    for run in runs:
        assert len(run["rounds"]) == 3 and run["start"] == runs[0]["start"]
        assert run["final_score"] >= run["start_score"]
    guided = runs[0]["rounds"]
    # Each pick is the least akin of the untried models: at most the pool's mean.
    assert all(r["kinship"] <= r["pool_kinship"] + 1e-12 for r in guided)
    assert job.result["kinship_final"] == runs[0]["final_score"]


def test_merge_forms_offer_the_family_and_the_family_page_links_them(client, user, tmp_path):
    from webapp.lineage import services as lineage_services

    experiment, base, (a, b) = digits_family(user, tmp_path, epochs=1)
    client.force_login(user)
    for kind in ("merge", "merge_greedy"):
        page = client.get(f"/jobs/new/{kind}/?source_experiment={experiment.slug}").content.decode()
        assert all(f'value="{c.slug}"' in page for c in (base, a, b)), kind
    graph = lineage_services.lineage_graph_sync_catalog(experiment=experiment)
    family = client.get(graph.families.first().get_absolute_url()).content.decode()
    assert f"/jobs/new/merge/?source_experiment={experiment.slug}" in family
    assert f"/jobs/new/merge_greedy/?source_experiment={experiment.slug}" in family


def test_evaluation_sets_from_class_lists_or_the_checkpoints_own_data(user, tmp_path):
    from webapp.landscapes import evaluation_sets

    assert evaluation_sets.parse_class_lists(" 0,1 ,2; 9 ;") == [[0, 1, 2], [9]]
    for bad in ("0,x", "10", "1;2;3;4;5;6;7"):
        with pytest.raises(evaluation_sets.EvaluationSetError):
            evaluation_sets.parse_class_lists(bad)
    experiment, base, (a, b) = digits_family(user, tmp_path, epochs=1)
    assert evaluation_sets.own_datasets([a, b, base]) == ["digits"]
    (own,) = evaluation_sets.tasks_for(class_lists=[], datasets=["digits"], split="test", size=100, owner_id=None)
    assert own.name == "digits" and len(own.X) == 100
    low, high = evaluation_sets.tasks_for(class_lists=[[0, 1], [8, 9]], datasets=[], split="all", size=50, owner_id=None)
    assert set(low.y.tolist()) == {0, 1} and set(high.y.tolist()) == {8, 9} and len(low.X) == 50


def test_the_declared_methods_are_the_librarys():
    import typing

    from analysis.merging import METHODS
    from webapp.merging.params import Method

    assert list(typing.get_args(Method)) == list(METHODS)
