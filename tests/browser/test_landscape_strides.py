"""Headless Chromium: the landscape page fills a refining plane's gaps from the strides its first event announces."""

import pytest
from django.contrib.auth import get_user_model

from webapp.catalog.visibility import Visibility
from webapp.jobs.events import job_event_append
from webapp.jobs.models import Job, JobStatus

pytestmark = pytest.mark.browser

N = 21
# Not what analysis.landscape plans for 21 points ([[4, 4], [2, 1], [1, 1]]): the page cannot guess these, it must read them.
STRIDES = [[5, 5], [2, 1], [1, 1]]


def lattice(stride: int) -> list[int]:
    return sorted(set(range(0, N, stride)) | {N - 1})


def points(rows, cols):
    # loss = 100 i + j: a borrowed value tells which computed point it came from
    return [{"i": i, "j": j, "a": i / 10 - 1, "b": j / 10 - 1, "loss": float(100 * i + j), "accuracy": None} for i in rows for j in cols]


def shown(page, i, j):
    """The value drawn at grid point (i, j) (plotly's z is indexed [b][a])."""
    return page.evaluate(f"document.getElementById('landscape-chart').data[0].z[{j}][{i}]")


def test_gaps_are_filled_from_the_densest_complete_level_the_start_event_announced(page):
    owner = get_user_model().objects.create_user("surveyor", password="pw-surveyor-1")
    job = Job.objects.create(kind="landscape", owner=owner, visibility=Visibility.PUBLIC, status=JobStatus.RUNNING,
                             params={"mode": "plane", "axes": "random", "resolution": N})
    axis = [k / 10 - 1 for k in range(N)]
    job_event_append(job=job, kind="start", payload={"a": axis, "b": axis, "total": N * N, "done": 0, "levels": 3,
                                                     "strides": STRIDES, "axes": "random", "directions": {}})
    coarse = points(lattice(5), lattice(5))
    job_event_append(job=job, kind="points", payload={"points": coarse, "done": len(coarse), "total": N * N, "level": 0, "levels": 3})

    page.goto(f"/r/{job.slug}/?view=heatmap")
    page.wait_for_function(f"document.getElementById('landscape-chart').dataset.points === '{len(coarse)}'", timeout=20_000)
    assert shown(page, 5, 10) == 510  # computed
    assert shown(page, 1, 2) == 0 and shown(page, 3, 8) == 510  # borrowed from the coarse lattice (5, 5)

    known = {(p["i"], p["j"]) for p in coarse}
    finer = [p for p in points(lattice(2), range(N)) if (p["i"], p["j"]) not in known]
    job_event_append(job=job, kind="points", payload={"points": finer, "done": len(coarse) + len(finer), "total": N * N,
                                                      "level": 1, "levels": 3})
    total = len(known | {(i, j) for i in lattice(2) for j in range(N)})
    page.wait_for_function(f"document.getElementById('landscape-chart').dataset.points === '{total}'", timeout=20_000)
    assert shown(page, 3, 8) == 208 and shown(page, 19, 7) == 1807  # now from level 1's whole rows at stride 2
    assert page.js_errors == []
