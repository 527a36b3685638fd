"""Headless Chromium: on a PCA plane, hovering a step of the trajectory's loss curve marks that step on the plane."""

import pytest
from django.contrib.auth import get_user_model

from tests.webapp.landscape_fixtures import trained_checkpoint

pytestmark = pytest.mark.browser

# Screen position of point k of the first trace of the loss-per-step chart, from Plotly's own axes.
POINT = """(k) => {
  const gd = document.getElementById('trajectory-loss-chart'), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect(), t = gd.data[0];
  return [box.left + xa._offset + xa.d2p(t.x[k]), box.top + ya._offset + ya.d2p(t.y[k])];
}"""


def test_hovering_a_step_marks_it_on_the_pca_plane(page, tmp_path):
    from webapp.jobs.services import job_params_validate, job_submit

    owner = get_user_model().objects.create_user("pathfinder", password="pw-path-123")
    checkpoint = trained_checkpoint(owner, tmp_path)
    validated = job_params_validate(kind="landscape", data={"checkpoint": checkpoint.slug, "axes": "pca", "resolution": 11,
                                                            "visibility": "public"}, user=owner)
    job = job_submit(validated=validated, owner=owner)
    page.goto(job.get_absolute_url() + "?view=heatmap")
    page.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", polling=250, timeout=240_000)
    page.wait_for_selector("#trajectory-loss-chart", state="visible", timeout=10_000)

    job.refresh_from_db()
    steps, points = job.result["trajectory_steps"], job.result["trajectory"]
    assert page.evaluate("document.getElementById('trajectory-loss-chart').data[0].x") == steps
    k = len(steps) // 2
    page.locator("#trajectory-loss-chart").scroll_into_view_if_needed()
    x, y = page.evaluate(POINT, k)
    page.mouse.move(x, y)
    page.wait_for_function(f"document.getElementById('trajectory-loss-chart').dataset.hoverStep === '{steps[k]}'", timeout=10_000)
    marker = page.evaluate("document.getElementById('landscape-chart').data.filter(t => t.name.startsWith('step '))")
    assert len(marker) == 1 and marker[0]["name"] == f"step {steps[k]}"
    assert [marker[0]["x"][0], marker[0]["y"][0]] == pytest.approx(points[k])

    page.mouse.move(5, 5)  # leaving the curve removes the mark
    page.wait_for_function("document.getElementById('trajectory-loss-chart').dataset.hoverStep === ''", timeout=10_000)
    assert page.evaluate("document.getElementById('landscape-chart').data.filter(t => t.name.startsWith('step ')).length") == 0
    assert page.js_errors == []
