"""Headless Chromium: a landscape drawn live, shared, exported and embedded."""

import json

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job

pytestmark = pytest.mark.browser

# Records every distinct number of drawn points, and when, from the page's own point of view.
# The benchmark's digits MLP: its planes take seconds, as real ones do.
REALISTIC_MLP = {"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10}

WATCH_POINTS = """
window.__pointHistory = [];
const chart = document.getElementById('landscape-chart');
new MutationObserver(() => {
  const n = parseInt(chart.dataset.points, 10);
  const h = window.__pointHistory;
  if (!h.length || h[h.length - 1][0] !== n) h.push([n, performance.now()]);
}).observe(chart, {attributes: true, attributeFilter: ['data-points']});
"""


def test_landscape_live_share_export_embed(page, tmp_path):
    User = get_user_model()
    owner = User.objects.create_user("cartographer", password="pw-carto-1")
    User.objects.create_user("colleague", password="pw-colleague-1")
    # Wide enough that the plane takes seconds, as a real one does: on a 1-second job the
    # browser's page load alone (two shared cores) is a tenth of the job.
    checkpoint = trained_checkpoint(owner, tmp_path, spec=REALISTIC_MLP)

    log_in(page, "cartographer", "pw-carto-1")
    page.goto(checkpoint.get_absolute_url())
    page.click("#action-landscape")
    assert page.input_value("#id_checkpoint") == checkpoint.slug
    page.fill("#id_resolution", "41")
    page.fill("#id_eval_size", "1437")
    page.select_option("#id_visibility", "public")
    page.click("#start-job")
    page.wait_for_url("**/r/*/")
    page.evaluate(WATCH_POINTS)
    page.evaluate("window.__sameDocument = true")

    page.wait_for_function("['succeeded', 'failed'].includes(document.getElementById('job-status').textContent)", polling=250, timeout=180_000)
    job = Job.objects.get(owner=owner, kind="landscape")
    assert job.status == "succeeded", job.error
    page.wait_for_function("document.getElementById('landscape-chart').dataset.points === '1681'", timeout=10_000)
    history = page.evaluate("window.__pointHistory")
    assert page.evaluate("window.__sameDocument") is True
    assert len(history) >= 2 and history[0][0] < 1681, f"no refinement seen: {history}"
    assert [n for n, _ in history] == sorted(n for n, _ in history)

    # The coarse surface comes whole before any refinement point, and it is a small share of the plane
    # (its share of the job's time is measured in benchmarks/landscape_and_curvature.py --parts g, not here).
    job = Job.objects.get(owner=owner, kind="landscape")
    levels = [e.payload["level"] for e in job.events.order_by("seq") if e.kind == "points"]
    coarse_points = sum(len(e.payload["points"]) for e in job.events.filter(kind="points") if e.payload["level"] == 0)
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] > 0, levels
    assert 0 < coarse_points <= 0.10 * 1681, coarse_points

    # Redraws are batched: never more than a few per second.
    redraws = int(page.evaluate("document.getElementById('landscape-chart').dataset.redraws"))
    stream_seconds = max(1.0, (history[-1][1] - history[0][1]) / 1000)
    assert redraws / stream_seconds <= 5 or redraws <= 5

    for view in ("contour", "heatmap"):
        page.check(f"input[name=view][value={view}]")
        assert page.evaluate("document.getElementById('landscape-chart').data[0].type") == view
    page.check("input[name=log]")

    with page.expect_download() as download:
        page.click("#download-json")
    body = json.loads(open(download.value.path()).read())
    assert body["job"]["result"]["loss"] == job.result["loss"]
    with page.expect_download() as download:
        page.click("#download-csv")
    assert open(download.value.path()).read().count("\n") == 1 + 1681
    with page.expect_download() as download:
        page.click("#download-png")
    assert open(download.value.path(), "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    page.goto(f"/r/{job.slug}/embed")
    page.wait_for_function("document.getElementById('landscape-chart').dataset.points === '1681'", timeout=10_000)
    assert page.locator("header.topbar").count() == 0

    # A colleague opens the public link; once it is private, it is gone for them.
    page.context.clear_cookies()
    log_in(page, "colleague", "pw-colleague-1")
    assert page.goto(job.get_absolute_url()).status == 200
    page.wait_for_function("document.getElementById('landscape-chart').dataset.points === '1681'", timeout=10_000)
    assert page.locator("#cancel-form").count() == 0
    Job.objects.filter(pk=job.pk).update(visibility=Visibility.PRIVATE)
    assert page.goto(job.get_absolute_url()).status == 404
    assert page.goto(f"/r/{job.slug}/embed").status == 404
    assert page.js_errors == []


def test_three_streams_at_once_stay_responsive(browser, live_stack, tmp_path):
    from webapp.jobs.services import job_params_validate, job_submit

    owner = get_user_model().objects.create_user("triple", password="pw-triple-1")
    # Jobs of a few seconds each, so every tab watches its plane stream in rather than load it finished.
    checkpoint = trained_checkpoint(owner, tmp_path, spec=REALISTIC_MLP)
    jobs = []
    for seed in range(3):
        validated = job_params_validate(kind="landscape", data={"checkpoint": checkpoint.slug, "resolution": 33, "eval_size": 1437,
                                                                "seed": seed, "visibility": "public"}, user=owner)
        jobs.append(job_submit(validated=validated, owner=owner))
    context = browser.new_context(base_url=live_stack["web"].url)
    pages = []
    for job in jobs:
        tab = context.new_page()
        # Heatmaps: headless Chromium draws 3-D surfaces with software WebGL, which measures the CI box, not us.
        tab.goto(job.get_absolute_url() + "?view=heatmap")
        pages.append(tab)
    for tab in pages:
        tab.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", polling=250, timeout=240_000)
    for tab in pages:
        tab.wait_for_function("document.getElementById('landscape-chart').dataset.points === '1089'", timeout=10_000)
        chart = "document.getElementById('landscape-chart').dataset"
        # Responsive: no single redraw blocks the main thread for long, and all of them together take little of it.
        assert float(tab.evaluate(f"{chart}.maxUpdateMs")) < 1000
        assert float(tab.evaluate(f"{chart}.renderMs")) < 0.5 * float(tab.evaluate("performance.now()"))
    points_events = sum(job.events.filter(kind="points").count() for job in jobs)
    redraws = sum(int(tab.evaluate("document.getElementById('landscape-chart').dataset.redraws")) for tab in pages)
    assert redraws < points_events  # batched: fewer redraws than events
    context.close()
