"""A dense line and a Hessian density split into parts in-process: the same result as one worker, the
coarse curve first, every point streamed once even when a block is taken over from a dead worker."""

import pytest

from analysis import line_blocks
from tests.webapp.landscape_fixtures import trained_checkpoint
from tests.webapp.test_fanout import capture_part_tasks, drain, finish_after_a_dead_worker
from webapp.jobs.models import JobStatus
from webapp.jobs.runner import run_job
from webapp.jobs.services import job_create, job_params_validate

pytestmark = pytest.mark.django_db
STEPS = 420  # 28 coarse points, then segments of 128, 128, 128 and 8 points


def make_job(user, kind, parts, **data):
    params = job_params_validate(kind=kind, data={"eval_size": 300, **data}, user=user).params
    return job_create(kind=kind, params={**params, "parts": parts}, owner=user, enqueue=False)


def streamed(job):
    return [(q["k"], q["loss"], e.payload.get("part")) for e in job.events.filter(kind="points").order_by("seq") for q in e.payload["points"]]


def test_line_parts_give_the_single_worker_line_coarse_curve_first(user, tmp_path, monkeypatch, settings):
    sent = capture_part_tasks(monkeypatch, settings)
    checkpoint = trained_checkpoint(user, tmp_path, with_trajectory=False)
    single = make_job(user, "landscape", 1, checkpoint=checkpoint.slug, mode="line", resolution=STEPS)
    assert run_job(single.pk) == JobStatus.SUCCEEDED and not sent
    job = make_job(user, "landscape", 3, checkpoint=checkpoint.slug, mode="line", resolution=STEPS)
    assert run_job(job.pk) == JobStatus.RUNNING and len(sent) == 1  # the coarse curve goes first
    drain(sent)
    job.refresh_from_db()
    single.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.parts.count() == 5 and job.result["fanout"]["parts"] == 4  # coarse curve, 3 segment blocks, finaliser
    for key in ("t", "loss", "accuracy", "kind", "mode", "directions", "checkpoint", "checkpoint_name", "eval_size", "device"):
        assert job.result[key] == single.result[key], key
    assert set(job.result) - set(single.result) == {"coarse_seconds", "fanout"}
    points = streamed(job)
    assert sorted(k for k, *_ in points) == list(range(STEPS))  # each once
    coarse = line_blocks.coarse_indices(STEPS)
    assert sorted(k for k, *_ in points[: len(coarse)]) == coarse.tolist() and {part for *_, part in points[: len(coarse)]} == {0}
    assert all(loss == single.result["loss"][k] for k, loss, _ in points)  # every streamed value exact


@pytest.mark.parametrize("axes", ["hessian", "pca"])
def test_a_line_along_the_hessian_or_pca_axis_runs_on_one_worker(user, tmp_path, monkeypatch, settings, axes):
    # each part would find the axis again (and a Lanczos sign or a PCA sign could differ between workers)
    sent = capture_part_tasks(monkeypatch, settings)
    checkpoint = trained_checkpoint(user, tmp_path, with_trajectory=axes == "pca")
    job = make_job(user, "landscape", 3, checkpoint=checkpoint.slug, mode="line", axes=axes, resolution=STEPS)
    assert run_job(job.pk) == JobStatus.SUCCEEDED and not sent
    job.refresh_from_db()
    directions = job.result["directions"]
    assert directions["axes"] == axes and directions["norm"] == pytest.approx(1.0, rel=1e-6)
    assert len(job.result["loss"]) == STEPS and all(v is not None for v in job.result["loss"])
    if axes == "hessian":
        assert directions["eigenvalue"] > 0
    else:  # the default span covers the trajectory's projections on the axis
        assert job.result["t"][-1] == pytest.approx(1.25 * max(abs(t) for t in directions["trajectory_t"]))


def test_short_lines_and_lone_probes_stay_on_one_worker(settings, monkeypatch):
    from webapp.landscapes.hessian_fanout import probe_groups
    from webapp.landscapes.line_fanout import line_split

    line = {"mode": "line", "parts": 8}
    assert line_split({**line, "resolution": 150}, "cpu") == []  # 130 points after the coarse curve: one segment and a bit
    assert line_split({**line, "resolution": 270}, "cpu") == []
    assert line_split({**line, "resolution": 280}, "cpu") == [[1], [2, 3]]  # 261 points after the coarse curve
    split = line_split({**line, "resolution": 1001}, "cpu")  # 968 points: at most 7 blocks of a full segment or more
    assert len(split) == 7 and [n for block in split for n in block] == list(range(1, 9))
    assert line_split({**line, "resolution": 1001, "parts": 3}, "cpu") == [[1, 2, 3], [4, 5], [6, 7, 8]]
    assert line_split({**line, "mode": "plane", "resolution": 1001}, "cpu") == []
    assert line_split({**line, "axes": "hessian", "resolution": 1001}, "cpu") == []
    hessian = {"density": True, "density_probes": 5, "parts": 3}
    assert probe_groups(hessian, "cpu") == [[0, 1], [2, 3], [4]]
    assert probe_groups({**hessian, "density_probes": 1}, "cpu") == [] and probe_groups({**hessian, "density": False}, "cpu") == []
    settings.TERRAIN_PLANE_PARTS = "1"
    assert probe_groups({**hessian, "parts": None}, "cpu") == []
    # "auto" with two workers alive: only a density big enough to gain is split
    from webapp.landscapes import fanout_blocks

    settings.TERRAIN_PLANE_PARTS = "auto"
    monkeypatch.setattr(fanout_blocks, "worker_slots", lambda queue: 2)
    small, big = fanout_blocks.MIN_AUTO_WORK / 2, fanout_blocks.MIN_AUTO_WORK * 2
    assert probe_groups({**hessian, "parts": None, "work": small}, "cpu") == []
    assert len(probe_groups({**hessian, "parts": None, "work": big}, "cpu")) == 5


def test_a_line_block_taken_over_from_a_dead_worker_is_streamed_once(user, tmp_path, monkeypatch, settings):
    sent = capture_part_tasks(monkeypatch, settings)
    checkpoint = trained_checkpoint(user, tmp_path, with_trajectory=False)
    job = make_job(user, "landscape", 2, checkpoint=checkpoint.slug, mode="line", resolution=STEPS)
    run_job(job.pk)
    first = []

    def first_points(victim):  # the dead worker streamed its block's first ten points (values are irrelevant: not sent again)
        first.extend(line_blocks.segments(STEPS)[victim.payload["segments"][0]][:10].tolist())
        return {"points": [{"k": k, "t": 0.0, "loss": -1.0, "accuracy": 0.0} for k in first], "done": 0, "total": STEPS}

    finish_after_a_dead_worker(job, sent, settings, first_points)
    assert sorted(k for k, *_ in streamed(job)) == list(range(STEPS))
    assert all(job.result["loss"][k] > 0 for k in first)  # recomputed, not copied


def test_density_parts_give_the_single_worker_spectrum(user, tmp_path, monkeypatch, settings):
    sent = capture_part_tasks(monkeypatch, settings)
    checkpoint = trained_checkpoint(user, tmp_path, with_trajectory=False)
    data = dict(checkpoint=checkpoint.slug, eval_size=200, top_k=3, trace_matvecs=12, density_probes=5, density_iters=12, seed=4)
    single = make_job(user, "hessian", 1, **data)
    assert run_job(single.pk) == JobStatus.SUCCEEDED and not sent
    job = make_job(user, "hessian", 3, **data)
    assert run_job(job.pk) == JobStatus.RUNNING and len(sent) == 4  # the spectrum and three probe groups, all at once
    sent.reverse()  # the probes land in any order
    drain(sent)
    job.refresh_from_db()
    single.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert [part.payload.get("probes") for part in job.parts.filter(index__in=(1, 2, 3)).order_by("index")] == [[0, 1], [2, 3], [4]]
    assert {**job.result, "fanout": None} == single.result  # every number, the density's included
    kinds = [kind for kind in job.events.values_list("kind", flat=True) if kind != "status"]
    assert kinds == ["started", "eigenvalues", "trace", "density"]
