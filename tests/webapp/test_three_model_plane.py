"""The landscape job's plane through three models: one surface per task, the merge marked where it lies."""

import pytest

from tests.webapp.merge_fixtures import SPEC, TASKS, digits_family
from webapp.catalog.services import checkpoint_create_from_file
from webapp.jobs.models import Job
from webapp.jobs.runner import run_job
from webapp.jobs.services import JobParamsInvalid, job_create, job_params_validate

pytestmark = pytest.mark.django_db


def test_three_model_plane_per_task_with_the_merge_marked(user, tmp_path):
    from analysis import checkpoints, merging

    experiment, base, (a, b) = digits_family(user, tmp_path, epochs=1)
    states = [checkpoints.load(c.file.path).state for c in (base, a, b)]
    path = checkpoints.save(tmp_path / "merged.safetensors", merging.task_arithmetic(states[0], states[1:], lam=0.3), SPEC)
    merged = checkpoint_create_from_file(experiment=experiment, name="merged", path=path, spec=SPEC, dataset="digits",
                                         parent=base, relation="merge", merge_parents=[base, a, b])
    data = dict(mode="plane", axes="three_models", checkpoint=base.slug, checkpoint_b=a.slug, checkpoint_c=b.slug,
                markers=merged.slug, tasks=TASKS, resolution=5, span=0, split="test", eval_size=200,
                dataset="checkpoint", batchnorm="keep")
    params = job_params_validate(kind="landscape", data=data, user=user).params
    job = job_create(kind="landscape", params=params, owner=user, enqueue=False)
    assert run_job(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    result = job.result
    assert result["task_names"] == ["digits 01234", "digits 56789"]
    for task, surface in result["tasks"].items():
        marks = {m["name"]: m for m in surface["markers"]}
        assert [marks[n]["role"] for n in ("base", a.name, b.name, "merged")] == ["A", "B", "C", "marker"]
        assert marks["merged"]["a"] == pytest.approx(0.3, abs=1e-5) and marks["merged"]["b"] == pytest.approx(0.3, abs=1e-5)
        assert surface["a"][0] == pytest.approx(-0.25) and surface["a"][-1] == pytest.approx(1.25)
        assert all(all(row) for row in surface["computed"])
    # The specialist fine-tune on 0-4 is better than the one on 5-9 at its own task, as the markers' losses say.
    low = {m["name"]: m["loss"] for m in result["tasks"]["digits 01234"]["markers"]}
    assert low[a.name] < low[b.name]
    starts = [e.payload["task"] for e in job.events.filter(kind="start").order_by("seq")]
    assert starts == ["digits 01234", "digits 56789"]


def test_three_model_plane_needs_both_corners(user, tmp_path):
    experiment, base, (a, b) = digits_family(user, tmp_path, epochs=1)
    with pytest.raises(JobParamsInvalid) as exc:
        job_params_validate(kind="landscape", data=dict(mode="plane", axes="three_models", checkpoint=base.slug,
                                                        checkpoint_b=a.slug, resolution=5, dataset="checkpoint"), user=user)
    assert "checkpoint_c" in exc.value.errors
