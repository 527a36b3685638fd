"""A plane split into parts in-process: the same result as one worker, the coarse lattice first,
every point streamed exactly once even when a block is taken over from a dead worker."""

import numpy as np
import pytest

from analysis import plane_blocks
from tests.webapp.landscape_fixtures import trained_checkpoint
from tests.webapp.test_fanout import capture_part_tasks, drain, finish_after_a_dead_worker
from webapp.jobs.models import JobStatus
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_params_validate

pytestmark = pytest.mark.django_db
N = 13


def landscape_job(user, checkpoint, parts, **data):
    params = job_params_validate(kind="landscape", data={"checkpoint": checkpoint.slug, "resolution": N, "eval_size": 300, **data},
                                 user=user).params
    return job_create(kind="landscape", params={**params, "parts": parts}, owner=user, enqueue=False)


def streamed_points(job):
    return [(q["i"], q["j"], q["loss"], q["accuracy"], e.payload.get("part")) for e in job.events.filter(kind="points").order_by("seq")
            for q in e.payload["points"]]


@pytest.mark.parametrize("axes", ["random", "pca"])
def test_parts_give_the_single_worker_surface(user, tmp_path, monkeypatch, settings, axes):
    sent = capture_part_tasks(monkeypatch, settings)
    checkpoint = trained_checkpoint(user, tmp_path)
    single = landscape_job(user, checkpoint, parts=1, axes=axes)
    assert run_job(single.pk) == JobStatus.SUCCEEDED and not sent
    job = landscape_job(user, checkpoint, parts=3, axes=axes)
    assert run_job(job.pk) == JobStatus.RUNNING and len(sent) == 1  # the coarse lattice goes first
    drain(sent)
    job.refresh_from_db()
    single.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.parts.count() == 5  # lattice, 3 row blocks, finaliser
    for key in ("a", "b", "loss", "accuracy", "computed", "directions", "centre_loss", "centre_accuracy", "trajectory",
                "trajectory_loss", "checkpoint", "eval_size", "num_points", "mode", "axes"):
        assert job.result[key] == single.result[key], key
    points = streamed_points(job)
    assert sorted((i, j) for i, j, *_ in points) == [(i, j) for i in range(N) for j in range(N)]  # each once
    lattice = plane_blocks.coarse_mask(N, N)
    assert all(lattice[i, j] for i, j, *_ in points[: int(lattice.sum())])  # the coarse surface first
    kinds = list(job.events.values_list("kind", flat=True))
    assert kinds.index("start") < kinds.index("points") and kinds[-1] == "status"
    assert ("trajectory" in kinds) == (axes == "pca")


def test_a_block_taken_over_from_a_dead_worker_is_streamed_once(user, tmp_path, monkeypatch, settings):
    sent = capture_part_tasks(monkeypatch, settings)
    checkpoint = trained_checkpoint(user, tmp_path)
    job = landscape_job(user, checkpoint, parts=2)
    run_job(job.pk)

    def first_row(victim):  # the dead worker streamed its block's first row (values are irrelevant: not sent again)
        level, row = victim.payload["rows"][0]
        points = [{"i": row, "j": j, "a": 0.0, "b": 0.0, "loss": -1.0, "accuracy": 0.0} for j in plane_blocks.row_points(row, N, N)]
        return {"points": points, "done": 0, "total": N * N, "level": level}

    victim = finish_after_a_dead_worker(job, sent, settings, first_row)
    row = victim.payload["rows"][0][1]
    points = streamed_points(job)
    assert sorted((i, j) for i, j, *_ in points) == [(i, j) for i in range(N) for j in range(N)]
    loss = np.array(job.result["loss"])
    assert np.isfinite(loss).all() and (loss[row, plane_blocks.row_points(row, N, N)] > 0).all()  # recomputed, not copied


def test_workers_announce_their_slots_and_planes_fan_out_when_there_are_several(monkeypatch, settings):
    from webapp.jobs import queues, workers
    from webapp.landscapes import fanout_blocks, plane_fanout

    beats = [workers.start_worker_heartbeat(name="pytest-a", queues=["pytest-queue"], concurrency=2, device="cpu"),
             workers.start_worker_heartbeat(name="pytest-b", queues=["pytest-queue", "x"], concurrency=1, device="cpu")]
    try:
        import time

        deadline = time.monotonic() + 5
        while queues.worker_slots("pytest-queue") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queues.worker_slots("pytest-queue") == 3 and queues.worker_slots("x") == 1
    finally:
        for beat in beats:
            workers.stop_heartbeat(beat)
    assert queues.worker_slots("pytest-queue") == 0  # a clean shutdown withdraws at once

    plane = {"mode": "plane"}
    settings.TERRAIN_PLANE_PARTS = "auto"
    for slots, parts in [(0, 1), (1, 1), (2, 8), (3, 12)]:
        monkeypatch.setattr(fanout_blocks, "worker_slots", lambda queue, slots=slots: slots)
        assert plane_fanout.plane_parts(plane, "cpu") == parts
    assert plane_fanout.plane_parts({**plane, "parts": 1}, "cpu") == 1  # the job's own choice wins
    # a job too small to gain stays on one worker, unless it asks for parts
    assert plane_fanout.plane_parts({**plane, "work": fanout_blocks.MIN_AUTO_WORK / 2}, "cpu") == 1
    assert plane_fanout.plane_parts({**plane, "work": fanout_blocks.MIN_AUTO_WORK * 2}, "cpu") == 12
    assert plane_fanout.plane_parts({**plane, "work": fanout_blocks.MIN_AUTO_WORK / 2, "parts": 3}, "cpu") == 3
    assert plane_fanout.plane_parts({"mode": "line"}, "cpu") == 1
    settings.TERRAIN_PLANE_PARTS = "5"
    assert plane_fanout.plane_parts(plane, "cpu") == 5
