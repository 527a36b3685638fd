"""Sweep services in-process: validation errors name fields, runs and cells are written once,
and a model of a cell opens in the landscape form on its own data."""

import json

import pytest

from tests.webapp.test_fanout import capture_part_tasks, drain
from webapp.catalog.visibility import Visibility
from webapp.jobs import fanout
from webapp.jobs.models import Job
from webapp.jobs.services import JobParamsInvalid, job_create, job_params_validate
from webapp.phases import services
from webapp.phases.models import SweepCell, SweepRun

pytestmark = pytest.mark.django_db

TINY = {
    "task": {"name": "modular-addition-mlp", "p": 7},
    "x": {"name": "weight_decay", "values": [0.0, 1.0]},
    "y": {"name": "lr", "values": [0.01]},
    "seeds": 2, "budget": 60, "eval_points": 12,
    "fixed": {"width": 8, "data_fraction": 0.6, "optimizer": "adamw"},
}


@pytest.mark.parametrize("data, field", [
    ({"x_values": "0, x"}, "x_values"),
    ({"seeds": 9}, "seeds"),
    ({"budget": 999999}, "budget"),
    ({"x_values": "log 1 100 40"}, "x_values"),
    ({"fixed": "{oops"}, "fixed"),
    ({"spec_json": json.dumps({**TINY, "seeds": 50})}, "spec_json"),
    ({"x_axis": "lr", "x_values": "0.1, 1"}, "y_axis"),  # the definition's y.name: the axes must differ
    ({"task_options": '{"heads": 2}'}, "task_options"),  # task.heads: not an option of the MLP task
    ({"fixed": '{"width": 4000}'}, "fixed"),  # fixed.width: over the axis' bound
    ({"fixed": '{"width": 2048}', "task": "digits-mlp", "task_options": '{"depth": 4}'}, "fixed"),  # too many parameters
    ({"gap_fraction": 2}, "gap_fraction"),
    ({"preset": "nope"}, "preset"),
    ({"spec": {**TINY, "x": {"name": "lr", "values": [0.1, -1]}}}, "spec"),
])
def test_sweep_validation_names_the_field(user, data, field):
    with pytest.raises(JobParamsInvalid) as caught:
        job_params_validate(kind="sweep", data=data, user=user)
    assert list(caught.value.errors) == [field], caught.value.errors


def test_a_field_error_says_where_in_the_definition(user):
    with pytest.raises(JobParamsInvalid) as caught:
        job_params_validate(kind="sweep", data={"x_values": "0.1, 0.1"}, user=user)
    assert caught.value.errors == {"x_values": ["x.values: values must be distinct, 0.1 appears twice (integer axes are rounded)"]}


def test_the_form_fields_build_the_definition(user):
    data = {"task": "digits-mlp", "task_options": '{"depth": 1}', "x_axis": "width", "x_values": "lin 8 16 3",
            "y_axis": "batch_size", "y_values": "32", "seeds": 1, "budget": 40, "fixed": '{"lr": 0.1}', "metrics": ["cka"],
            "gap_fraction": 0.05, "eval_points": 10, "title": "tiny"}
    spec = job_params_validate(kind="sweep", data=data, user=user).params["spec"]
    assert spec["task"] == {"name": "digits-mlp", "depth": 1} and spec["name"] == "tiny"
    assert spec["x"] == {"name": "width", "values": [8, 12, 16], "scale": "linear"} and spec["y"]["values"] == [32]
    assert spec["seeds"] == [0] and spec["budget"] == {"steps": 40} and spec["fixed"] == {"lr": 0.1}
    assert spec["metrics"] == ["cka"] and spec["rules"]["grokking"]["gap_fraction"] == 0.05 and spec["eval_points"] == 10


def test_oversized_sweep_is_refused(user):
    big = {**TINY, "x": {"name": "weight_decay", "log": False, "start": 0, "stop": 1, "num": 12},
           "y": {"name": "lr", "log": True, "start": 1e-3, "stop": 1e-1, "num": 12}, "seeds": 5}
    with pytest.raises(JobParamsInvalid) as caught:
        job_params_validate(kind="sweep", data={"spec": big}, user=user)
    assert "400" in json.dumps(caught.value.errors)


def test_a_cell_outside_the_grid_is_a_404_with_a_message(user, client):
    validated = job_params_validate(kind="sweep", data={"spec": TINY}, user=user)
    job = job_create(kind="sweep", params=validated.params, owner=user, visibility=Visibility.PUBLIC, enqueue=False)
    assert client.get(f"/phases/{job.slug}/cell/1/0/").json() == {"i": 1, "j": 0, "cell": None, "runs": []}  # not run yet
    for i, j in ((2, 0), (0, 1), (9, 9)):  # the grid is 2 x 1
        response = client.get(f"/phases/{job.slug}/cell/{i}/{j}/")
        assert response.status_code == 404 and f"no cell ({i}, {j})" in response.json()["error"]


def test_inline_sweep_writes_every_run_and_cell_once(user, client):
    validated = job_params_validate(kind="sweep", data={"spec": TINY, "visibility": Visibility.PUBLIC}, user=user)
    job = job_create(kind="sweep", params=validated.params, owner=user, visibility=Visibility.PUBLIC, enqueue=False)
    assert services.sweep_run_inline(job=job) == "succeeded"
    assert SweepRun.objects.filter(job=job, status="succeeded").count() == 4
    assert SweepCell.objects.filter(job=job).count() == 2
    # Finishing again (a late duplicate task of a run, of the finaliser, a cell) changes nothing.
    assert services.sweep_maybe_finish_cell(job=job, i=0, j=0) is None
    for part in job.parts.all():
        assert fanout.part_run(part_id=part.pk) == "succeeded"
    assert job.parts.filter(finaliser=False).count() == 4 and set(job.parts.values_list("attempts", flat=True)) == {1}
    assert job.events.filter(kind="cell").count() == 2
    kinds = list(job.events.values_list("kind", flat=True))
    assert kinds[:2] == ["status", "sweep"] and kinds[-1] == "status" and kinds.count("run") == 4

    cell = client.get(f"/phases/{job.slug}/cell/1/0/").json()
    assert len(cell["runs"]) == 2 and cell["runs"][0]["curves"]["step"][-1] == 60
    csv_text = client.get(f"/r/{job.slug}/export.csv").content.decode()
    assert csv_text.count("\ncell,") == 2 and csv_text.count("\nrun,") == 4

    client.force_login(user)
    run = SweepRun.objects.filter(job=job).first()
    response = client.post(f"/phases/{job.slug}/run/{run.pk}/landscape")
    assert response.status_code == 302 and "dataset=checkpoint" in response["Location"]
    checkpoint_slug = response["Location"].split("checkpoint=")[1].split("&")[0]
    validated = job_params_validate(kind="landscape", data={"checkpoint": checkpoint_slug, "resolution": 5, "dataset": "checkpoint"}, user=user)
    assert validated.params["dataset"] == f"phases-run:{checkpoint_slug}"


def test_cancelled_sweep_stops_and_is_cancelled(user, monkeypatch, settings):
    sent = capture_part_tasks(monkeypatch, settings)
    validated = job_params_validate(kind="sweep", data={"spec": TINY}, user=user)
    job = job_create(kind="sweep", params=validated.params, owner=user, enqueue=False)
    from webapp.jobs.runner import run_job

    run_job(job.pk)
    assert len(sent) == 4  # one part per run
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    drain(sent)
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert set(SweepRun.objects.filter(job=job).values_list("status", flat=True)) == {"cancelled"}
    assert SweepCell.objects.filter(job=job).count() == 2 and len(job.result["cells"]) == 2


def test_the_page_shows_the_fields_filled_in_and_no_object_field(client, user):
    client.force_login(user)
    body = client.get("/jobs/new/sweep/").content.decode()
    for name in ("task", "x_axis", "x_values", "y_axis", "y_values", "seeds", "budget", "eval_points", "spec_json"):
        assert f'id="id_{name}"' in body, name
    assert 'id="id_spec"' not in body  # the definition as an object is the JSON API's
    assert 'name="task_options" value="{&quot;p&quot;: 23}"' in body and 'name="x_values" value="0, 1, 3"' in body
    assert 'value="mode_connectivity" id="id_metrics_0" checked' in body and 'value="hessian" id="id_metrics_3">' in body
    response = client.post("/jobs/new/sweep/", {"x_values": "0, oops"})
    assert response.status_code == 400 and 'data-field="x_values"' in response.content.decode()


@pytest.mark.parametrize("data, rule", [
    ({"preset": "load-temperature"}, "taxonomy"),  # opened coloured by grokking, not the Yang et al. phases it exists to show
    ({"preset": "grokking"}, "grokking"),
    ({"spec": TINY}, "grokking"),
    ({"spec": {**TINY, "task": {"name": "digits-mlp"}, "x": {"name": "batch_size", "values": [8, 64]},
               "fixed": {}, "metrics": ["mode_connectivity", "cka"]}}, "taxonomy"),
])
def test_the_diagram_opens_coloured_by_the_sweeps_own_phase_rule(user, client, data, rule):
    validated = job_params_validate(kind="sweep", data=data, user=user)
    job = job_create(kind="sweep", params=validated.params, owner=user, visibility=Visibility.PUBLIC, enqueue=False)
    page = client.get(f"/r/{job.slug}/").content.decode()
    other = {"grokking": "taxonomy", "taxonomy": "grokking"}[rule]
    assert f'<option value="phase:{rule}" selected>' in page and f'<option value="phase:{other}">' in page
    embed = client.get(f"/r/{job.slug}/embed").content.decode()
    assert f'<option value="phase:{rule}" selected>' in embed
