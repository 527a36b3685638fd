import pytest

from tests.webapp import kinds_for_tests  # noqa: F401  (registers test-steps)
from webapp.catalog.visibility import Visibility
from webapp.jobs import services
from webapp.jobs.context import JobContext
from webapp.jobs.models import Job, JobEvent, JobStatus
from webapp.jobs.runner import run_job

pytestmark = pytest.mark.django_db


def make_job(owner, steps=3, fail_at=None, visibility=Visibility.PRIVATE):
    return services.job_create(
        kind="test-steps", params={"steps": steps, "fail_at": fail_at}, owner=owner, visibility=visibility, enqueue=False
    )


def test_validate_names_each_bad_field(user):
    with pytest.raises(services.JobParamsInvalid) as caught:
        services.job_params_validate(kind="train", data={"hidden": "64,abc", "lr": "-1", "epochs": 100000}, user=user)
    assert {"hidden", "lr", "epochs"} <= set(caught.value.errors)
    assert "whole numbers" in caught.value.errors["hidden"][0]


def test_validate_rejects_unknown_kind(user):
    with pytest.raises(services.JobParamsInvalid) as caught:
        services.job_params_validate(kind="no-such-kind", data={}, user=user)
    assert "unknown job kind" in caught.value.errors["kind"][0]


def test_validate_rejects_someone_elses_experiment(user, other_user):
    from webapp.catalog.services import experiment_create

    experiment = experiment_create(title="Bob's", owner=other_user)
    with pytest.raises(services.JobParamsInvalid) as caught:
        services.job_params_validate(kind="train", data={"hidden": "8", "experiment": experiment.slug}, user=user)
    assert "experiment" in caught.value.errors


def test_validate_gives_json_params(user):
    validated = services.job_params_validate(kind="train", data={"hidden": "16, 8", "epochs": "5"}, user=user)
    assert validated.params["hidden"] == [16, 8]
    assert validated.params["epochs"] == 5
    assert validated.visibility == Visibility.PRIVATE


def test_create_enqueues_only_after_commit(user, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr(services, "job_enqueue", lambda *, job: enqueued.append(job.pk))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = make_job(user)
        services.job_create(kind="test-steps", params={"steps": 1}, owner=user)
    assert enqueued == [] and len(callbacks) == 1  # only the second job asked to be enqueued
    callbacks[0]()
    assert enqueued == [Job.objects.exclude(pk=job.pk).get().pk]


def test_gpu_capable_kind_goes_to_cpu_without_gpu_worker(user):
    job = services.job_create(kind="train", params={}, owner=user, enqueue=False)
    assert job.queue == "cpu"


def test_gpu_capable_kind_goes_to_gpu_while_heartbeat_lives(user):
    import time

    from webapp.jobs import queues, workers

    thread = workers.start_worker_heartbeat(name="pytest-gpu-worker", queues=["gpu"], concurrency=1, device="cuda:0")
    try:
        deadline = time.monotonic() + 5
        while not queues.gpu_worker_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert services.job_create(kind="train", params={}, owner=user, enqueue=False).queue == "gpu"
        assert make_job(user).queue == "cpu"  # not GPU-capable
    finally:
        thread.stop.set()
        thread.join()
    assert not queues.gpu_worker_alive()  # a stopped worker takes its heartbeat with it
    assert services.job_create(kind="train", params={}, owner=user, enqueue=False).queue == "cpu"


def test_runner_success_persists_ordered_events(user):
    job = make_job(user, steps=4)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    events = list(job.events.values_list("seq", "kind"))
    assert [seq for seq, _ in events] == list(range(1, 7))
    assert [kind for _, kind in events] == ["status", "tick", "tick", "tick", "tick", "status"]
    assert job.last_seq == 6 and job.progress == 1.0 and job.result == {"steps": 4}
    assert job.attempts == 1 and job.started_at and job.finished_at


def test_runner_is_idempotent_for_finished_jobs(user):
    job = make_job(user, steps=2)
    run_job(job.pk)
    count = JobEvent.objects.filter(job=job).count()
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    assert JobEvent.objects.filter(job=job).count() == count


def test_runner_retries_a_job_left_running_by_a_dead_worker(user):
    job = make_job(user, steps=2)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
    assert run_job(job.pk) == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert job.attempts == 2
    assert job.events.first().payload["attempt"] == 2


def test_runner_failure_records_error(user):
    job = make_job(user, steps=5, fail_at=3)
    assert run_job(job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert "boom at step 3" in job.error
    assert job.events.last().payload == {"status": "failed", "error": job.error}


def test_cancel_queued_job(user):
    job = make_job(user)
    services.job_cancel(job=job, user=user)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.events.last().payload["status"] == "cancelled"
    assert run_job(job.pk) == JobStatus.CANCELLED  # a late-delivered task does nothing


def test_cancel_running_job_stops_it_at_next_event(user):
    job = make_job(user, steps=10)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    ctx = JobContext(Job.objects.get(pk=job.pk))
    ctx.emit("tick", {"step": 1})
    services.job_cancel(job=job, user=user)
    from webapp.jobs.context import JobCancelled

    with pytest.raises(JobCancelled):
        ctx.raise_if_cancelled(force=True)


def test_only_owner_or_staff_can_cancel(user, other_user, staff_user):
    job = make_job(user)
    with pytest.raises(services.NotAllowed):
        services.job_cancel(job=job, user=other_user)
    services.job_cancel(job=job, user=staff_user)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
