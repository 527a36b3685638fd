"""Every job event has a declared shape: real jobs emit only declared, well-shaped events; others are refused."""

import pytest

from tests.webapp import kinds_for_tests  # noqa: F401  (registers test-steps)
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs import kinds
from webapp.jobs.event_types import PROTOCOL_EVENTS, EventRefused
from webapp.jobs.events import job_event_append
from webapp.jobs.models import Job
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_params_validate

pytestmark = pytest.mark.django_db


def run(user, kind, **data):
    validated = job_params_validate(kind=kind, data={"visibility": Visibility.PUBLIC, **data}, user=user)
    job = job_create(kind=kind, params=validated.params, owner=user, visibility=Visibility.PUBLIC, enqueue=False)
    assert run_job(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    return job


def stored_kinds_validate(job) -> set[str]:
    """Check every stored event of `job` against its declared model (strictly: no extra key); return the kinds seen."""
    declared = {**PROTOCOL_EVENTS, **kinds.get(job.kind).events}
    seen = set()
    for kind, payload in job.events.values_list("kind", "payload"):
        declared[kind].model_validate(payload)
        seen.add(kind)
    return seen


def test_landscape_hessian_and_connectivity_jobs_emit_every_declared_event_in_its_shape(user, tmp_path):
    a = trained_checkpoint(user, tmp_path, seed=0)
    b = trained_checkpoint(user, tmp_path, seed=1, experiment=a.experiment)
    plane = run(user, "landscape", checkpoint=a.slug, axes="pca", resolution=9, eval_size=200)
    line = run(user, "landscape", checkpoint=a.slug, mode="line", end_checkpoint=b.slug, resolution=7, eval_size=200)
    hessian = run(user, "hessian", checkpoint=a.slug, eval_size=200, top_k=3, trace_matvecs=30, density_iters=20, density_probes=2)
    connectivity = run(user, "connectivity", checkpoint=a.slug, checkpoint_b=b.slug, steps=5, eval_size=200)

    assert stored_kinds_validate(plane) == {"status", "start", "points", "trajectory"}
    assert stored_kinds_validate(line) == {"status", "points"}
    assert stored_kinds_validate(hessian) == {"status", *kinds.get("hessian").events}
    assert stored_kinds_validate(connectivity) == {"status", *kinds.get("connectivity").events}


def test_lineage_recovery_job_emits_every_declared_event_in_its_shape(user):
    job = run(user, "lineage_recovery", source="synthetic", n_families=2, children_per_root=2, grandchildren_per_child=0, seed=0)
    assert stored_kinds_validate(job) == {"status", *kinds.get("lineage_recovery").events}


def test_every_kind_declares_its_events():
    for kind in kinds.all_kinds():
        assert kind.events, f"{kind.name} declares no events"
        assert not set(kind.events) & set(PROTOCOL_EVENTS), f"{kind.name} redeclares a protocol event"


def test_an_undeclared_event_is_refused_and_nothing_is_stored(user):
    job = Job.objects.create(kind="test-steps", owner=user)
    with pytest.raises(EventRefused, match="declares no 'tock' event"):
        job_event_append(job=job, kind="tock", payload={"step": 1})
    job.refresh_from_db()
    assert job.last_seq == 0 and not job.events.exists()


@pytest.mark.parametrize("payload", [
    {"step": "one"},  # wrong type
    {},  # missing field
    {"step": 1, "stride": 2},  # a key the declaration does not have
])
def test_an_ill_shaped_event_is_refused_and_nothing_is_stored(user, payload):
    job = Job.objects.create(kind="test-steps", owner=user)
    with pytest.raises(EventRefused, match="'tick' is ill-shaped"):
        job_event_append(job=job, kind="tick", payload=payload)
    job.refresh_from_db()
    assert job.last_seq == 0 and not job.events.exists()


def test_an_ill_shaped_landscape_point_is_refused(user):
    job = Job.objects.create(kind="landscape", owner=user)
    good = {"points": [{"i": 0, "j": 1, "a": -1.0, "b": 0.5, "loss": 2.3, "accuracy": None}], "done": 1, "total": 4,
            "level": 0, "levels": 2}
    job_event_append(job=job, kind="points", payload=good)
    bad = {**good, "points": [{"i": 0, "j": 1, "a": -1.0, "b": 0.5}]}  # no loss
    with pytest.raises(EventRefused):
        job_event_append(job=job, kind="points", payload=bad)
    assert list(job.events.values_list("payload", flat=True)) == [good]  # stored as sent, byte for byte
