"""Headless Chromium: start a training job with sharpness tracking and watch loss and sharpness draw live."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in
from webapp.jobs.models import Job

pytestmark = pytest.mark.browser

# Record (sharpness points, loss points, job status) each time the sharpness chart grows.
WATCH_SHARPNESS = """
window.__sharpnessHistory = [];
const chart = document.getElementById('sharpness-chart');
new MutationObserver(() => {
  window.__sharpnessHistory.push([parseInt(chart.dataset.points, 10),
    parseInt(document.getElementById('loss-chart').dataset.points, 10),
    document.getElementById('job-status').textContent]);
}).observe(chart, {attributes: true, attributeFilter: ['data-points']});
"""

LR = 0.1


def test_training_job_draws_loss_and_sharpness_live_with_the_threshold_line(page):
    get_user_model().objects.create_user("curvy", password="pw-curvy-123")
    log_in(page, "curvy", "pw-curvy-123")
    page.goto("/")
    page.click("text=Train")
    assert page.is_checked("#id_track_sharpness")  # on by default
    page.fill("#id_hidden", "32")
    page.fill("#id_epochs", "200")  # long enough (seconds, on an idle machine) for the page to watch it run
    page.fill("#id_batch_size", "32")
    page.fill("#id_lr", str(LR))
    page.fill("#id_momentum", "0")
    page.fill("#id_sharpness_every", "200")
    page.click("#start-job")
    page.wait_for_url("**/r/*/")
    page.evaluate(WATCH_SHARPNESS)
    page.evaluate("window.__sameDocument = true")

    page.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", polling=250, timeout=300_000)
    page.wait_for_selector("#path-panel", state="visible", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True

    job = Job.objects.get(owner__username="curvy")
    measured = [e.payload for e in job.events.filter(kind="sharpness").order_by("seq")]
    total_steps = job.events.get(kind="started").payload["total_steps"]
    assert len(measured) == total_steps // 200 + 1 + (1 if total_steps % 200 else 0)

    # Live: the sharpness curve grew in several batches while the job was still running, beside a growing loss curve.
    history = page.evaluate("window.__sharpnessHistory")
    running = [(s, l) for s, l, status in history if status == "running"]
    assert len({s for s, _ in running}) >= 3, history
    assert any(0 < s < len(measured) and 0 < l for s, l in running), history

    # Finally every measurement is drawn, with the 2/eta line across the whole run.
    chart = page.evaluate("""(() => { const d = document.getElementById('sharpness-chart').data;
        return {x: d[0].x, y: d[0].y, line: {name: d[2].name, x: d[2].x, y: d[2].y}}; })()""")
    assert chart["x"] == [m["step"] for m in measured]
    assert chart["y"] == pytest.approx([m["sharpness"] for m in measured])
    assert chart["line"] == {"name": "2/η", "x": [0, total_steps], "y": [pytest.approx(2 / LR)] * 2}
    assert page.is_visible("#sharpness-chart") and "2/η" in page.inner_text("#sharpness-note")
    assert "Progressive sharpening" in page.inner_text("#sharpness-summary")
    # The path figure: trajectory and straight line, both from the initial to the final weights.
    path = page.evaluate("document.getElementById('path-chart').data.map(t => t.name)")
    assert path == ["straight line start → end", "training trajectory"]
    assert page.js_errors == []
