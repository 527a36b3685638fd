"""The training job with sharpness tracking: parameters, events and the result."""

import csv
import io
import math

import pytest

from analysis import sharpness
from webapp.jobs import services
from webapp.jobs.models import JobStatus
from webapp.jobs.runner import run_job
from webapp.training import params as forms

pytestmark = pytest.mark.django_db


def test_form_defaults_are_the_libraries():
    assert forms.DEFAULT_EVERY == sharpness.DEFAULT_EVERY
    assert forms.DEFAULT_BATCH_SIZE == sharpness.DEFAULT_BATCH_SIZE


def test_api_submissions_track_sharpness_by_default(user):
    params = services.job_params_validate(kind="train", data={"hidden": "8"}, user=user).params
    assert params["track_sharpness"] is True
    assert (params["sharpness_every"], params["sharpness_batch"], params["sharpness_trace"]) == (50, 256, False)


def test_too_many_measurements_are_refused_on_the_interval_field(user):
    with pytest.raises(services.JobParamsInvalid) as caught:
        services.job_params_validate(kind="train", data={"hidden": "8", "epochs": 100, "batch_size": 16, "sharpness_every": 1}, user=user)
    assert set(caught.value.errors) == {"sharpness_every"}
    assert "at most 400" in caught.value.errors["sharpness_every"][0]
    # the same run without tracking is fine
    services.job_params_validate(kind="train", data={"hidden": "8", "epochs": 100, "batch_size": 16, "sharpness_every": 1,
                                                     "track_sharpness": False}, user=user)


def test_training_job_streams_sharpness_and_the_path(user, client):
    data = {"hidden": "8", "epochs": 2, "batch_size": 128, "lr": 0.05, "momentum": 0.0, "sharpness_every": 4,
            "sharpness_batch": 64, "sharpness_trace": True, "snapshots": 4}
    job = services.job_submit(validated=services.job_params_validate(kind="train", data=data, user=user), owner=user)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    payloads = {}
    for event in job.events.order_by("seq"):
        payloads.setdefault(event.kind, []).append(event.payload)
    total_steps = payloads["started"][0]["total_steps"]
    assert total_steps == 2 * math.ceil(payloads["started"][0]["train_size"] / 128)
    assert payloads["started"][0]["sharpness"] == {"threshold": pytest.approx(2 / 0.05), "threshold_label": "2/η",
                                                   "tracked": "sharpness", "every": 4, "batch_size": 64}
    measured = payloads["sharpness"]
    assert [m["step"] for m in measured] == list(range(0, total_steps + 1, 4))
    assert all(m["sharpness"] > 0 and m["trace"] is not None and m["preconditioned_sharpness"] is None for m in measured)
    summary = payloads["sharpness_summary"][0]
    assert summary["measurements"] == len(measured) and summary["threshold"] == pytest.approx(40.0)
    assert job.result["sharpness"]["progressive_sharpening"] == pytest.approx(measured[-1]["sharpness"] / measured[0]["sharpness"])
    path = payloads["path"][0]
    assert path["trajectory"]["t"][0] == 0.0 and path["trajectory"]["t"][-1] == pytest.approx(1.0)
    assert path["line"]["loss"][0] == pytest.approx(path["trajectory"]["loss"][0], rel=1e-5)
    assert path["line"]["loss"][-1] == pytest.approx(path["trajectory"]["loss"][-1], rel=1e-5)
    kinds = [event.kind for event in job.events.order_by("seq")]
    assert kinds.index("sharpness_summary") < kinds.index("path") < kinds.index("checkpoint")

    # the CSV export (README: every result exports CSV; it was a 404): the metric rows, then the sharpness rows
    client.force_login(user)
    response = client.get(f"/r/{job.slug}/export.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    metric_rows = [r for r in rows if r["row"] == "metrics"]
    assert [int(r["step"]) for r in metric_rows] == [m["step"] for m in payloads["metrics"]]
    assert float(metric_rows[-1]["test_accuracy"]) == pytest.approx(job.result["final"]["test_accuracy"])
    sharpness_rows = [r for r in rows if r["row"] == "sharpness"]
    assert [int(r["step"]) for r in sharpness_rows] == [m["step"] for m in measured]
    assert [float(r["sharpness"]) for r in sharpness_rows] == pytest.approx([m["sharpness"] for m in measured])
    assert sharpness_rows[0]["train_loss"] == "" and sharpness_rows[0]["threshold"] != ""


def test_adam_job_tracks_the_preconditioned_sharpness_against_38_over_eta(user):
    data = {"hidden": "8", "epochs": 1, "batch_size": 256, "optimizer": "adam", "lr": 0.01, "sharpness_every": 3,
            "sharpness_batch": 64}
    job = services.job_submit(validated=services.job_params_validate(kind="train", data=data, user=user), owner=user)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    started = job.events.get(kind="started").payload["sharpness"]
    assert started["threshold"] == pytest.approx(3800.0) and started["tracked"] == "preconditioned_sharpness"
    assert started["threshold_label"].startswith("38/η")
    measured = [e.payload for e in job.events.filter(kind="sharpness").order_by("seq")]
    assert measured[0]["preconditioned_sharpness"] is None  # step 0: Adam has no second moments yet
    assert all(m["preconditioned_sharpness"] > 0 for m in measured[1:])


def test_a_sweep_job_asking_for_sharpness_gives_cells_the_heatmap_can_colour_by(user):
    from webapp.catalog.visibility import Visibility
    from webapp.phases import services as sweep_services
    from webapp.phases.models import SweepCell

    spec = {"task": {"name": "modular-addition-mlp", "p": 7}, "x": {"name": "lr", "values": [0.01, 0.1]},
            "y": {"name": "width", "values": [8]}, "seeds": 1, "budget": 40, "eval_points": 10,
            "fixed": {"data_fraction": 0.6, "optimizer": "sgd", "momentum": 0.0}, "metrics": ["sharpness"]}
    validated = services.job_params_validate(kind="sweep", data={"spec": spec, "visibility": Visibility.PUBLIC}, user=user)
    job = services.job_create(kind="sweep", params=validated.params, owner=user, visibility=Visibility.PUBLIC, enqueue=False)
    assert sweep_services.sweep_run_inline(job=job) == "succeeded"
    for cell in SweepCell.objects.filter(job=job):
        metrics = cell.result["metrics"]
        lr = spec["x"]["values"][cell.i]
        assert metrics["progressive_sharpening"]["n"] == 1 and metrics["frac_above_2_over_eta"]["mean"] == 0.0
        run = job.sweep_runs.get(i=cell.i, j=cell.j)
        assert run.result["sharpness"]["threshold"] == pytest.approx(2 / lr)
        assert run.result["sharpness"]["curve"]["step"] == [0, 10, 20, 30, 40]


def test_the_showcased_edge_of_stability_run_is_full_batch_gd_and_reaches_2_over_eta(user):
    # the home page's sharpness result: a batch one short of the training set once left a one-example
    # step every epoch, which threw training off (chance accuracy, sharpness far below 2/eta)
    from analysis import data
    from webapp.showcase import definitions

    entry = next(e for e in definitions.ENTRIES if e.key == "sharpness")
    data_params = entry.params(None)
    assert data_params["batch_size"] == len(data.load("digits", "train")[0])
    job = services.job_submit(validated=services.job_params_validate(kind="train", data=data_params, user=user), owner=user)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    started = job.events.get(kind="started").payload
    assert started["total_steps"] == data_params["epochs"]  # one step per epoch
    measured = [e.payload["sharpness"] for e in job.events.filter(kind="sharpness").order_by("seq")]
    threshold = 2 / data_params["lr"]
    assert measured[0] < 0.5 * threshold  # it starts well below the edge ...
    assert all(0.8 * threshold <= s <= 1.2 * threshold for s in measured[-5:])  # ... and ends hovering at it
    metrics = [e.payload for e in job.events.filter(kind="metrics").order_by("seq")]
    assert metrics[-1]["train_accuracy"] > 0.9
