"""Headless Chromium: merge two fine-tunes onto their base from the family tree, watch the lambda curve fill in,
open the plane through the three models with the merge marked, and find the merge in the family tree."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in
from tests.webapp.merge_fixtures import digits_family
from webapp.catalog.models import Checkpoint
from webapp.jobs.models import Job

pytestmark = pytest.mark.browser

# Wide enough that each merged model takes a noticeable moment to score, as real ones do.
WIDE_MLP = {"kind": "mlp", "in": 64, "hidden": [1024, 1024], "out": 10}
TREE_READY = "document.getElementById('tree-chart').dataset.state === 'ready'"
FINISHED = "['succeeded', 'failed'].includes(document.getElementById('job-status').textContent)"
WATCH_CURVE = """
window.__curve = [];
const chart = document.getElementById('merge-chart');
new MutationObserver(() => {
  const n = parseInt(chart.dataset.points, 10);
  if (!window.__curve.length || window.__curve[window.__curve.length - 1] !== n) window.__curve.push(n);
}).observe(chart, {attributes: true, attributeFilter: ['data-points']});
"""


def test_merge_from_the_family_tree_to_the_plane_and_back(page, tmp_path):
    owner = get_user_model().objects.create_user("alchemist", password="pw-alchemy-1")
    experiment, base, (low, high) = digits_family(owner, tmp_path, spec=WIDE_MLP, title="Digits family")
    log_in(page, "alchemist", "pw-alchemy-1")

    # Open the family, and from it the merge form listing its checkpoints.
    page.goto(f"/lineage/checkpoint/{base.slug}/")
    page.wait_for_function(TREE_READY, timeout=30_000)
    page.click("#merge-link")
    page.check(f"input[name=models][value='{low.slug}']")
    page.check(f"input[name=models][value='{high.slug}']")
    page.select_option("#id_base", base.slug)
    page.select_option("#id_method", "task_arithmetic")
    page.fill("#id_sweep_steps", "21")
    page.fill("#id_tasks", "0,1,2,3,4; 5,6,7,8,9")
    page.select_option("#id_split", "all")
    page.click("#start-job")
    page.wait_for_load_state()
    assert not page.locator("p.error[data-field]").count(), page.locator("p.error[data-field]").all_inner_texts()
    page.wait_for_url("**/r/*/")
    page.evaluate(WATCH_CURVE)

    page.wait_for_function(FINISHED, polling=250, timeout=180_000)
    job = Job.objects.get(owner=owner, kind="merge")
    assert job.status == "succeeded", job.error
    page.wait_for_function("document.getElementById('merge-chart').dataset.points === '21'", timeout=10_000)
    curve = page.evaluate("window.__curve")
    assert curve[0] < 21 and curve == sorted(curve), f"the curve did not fill in live: {curve}"
    traces = page.evaluate("document.getElementById('merge-chart').data.map(t => t.name)")
    assert traces == ["digits 01234", "digits 56789", "mean"]
    page.wait_for_selector("#merge-saved:not([hidden])")
    merged = Checkpoint.objects.get(created_by_job=job)
    assert page.inner_text("#merged-link") == merged.name
    assert set(merged.merge_parents.all()) == {base, low, high}
    assert page.js_errors == [], ("merge page", page.js_errors)

    # The plane through the base and the two fine-tunes, with the merge on it.
    page.click("#plane-link")
    assert page.input_value("#id_axes") == "three_models"
    assert (page.input_value("#id_checkpoint"), page.input_value("#id_checkpoint_b"), page.input_value("#id_checkpoint_c")) == (
        base.slug, low.slug, high.slug)
    assert page.input_value("#id_markers") == merged.slug
    page.click("#start-job")
    page.wait_for_load_state()
    assert not page.locator("p.error[data-field]").count(), page.locator("p.error[data-field]").all_inner_texts()
    page.wait_for_url("**/r/*/")
    page.wait_for_function(FINISHED, polling=250, timeout=180_000)
    plane = Job.objects.filter(owner=owner, kind="landscape").get()
    assert plane.status == "succeeded", plane.error
    page.check("input[name=view][value=heatmap]")
    page.wait_for_function("document.getElementById('landscape-chart').dataset.points === '441'", timeout=10_000)
    names = page.evaluate("document.getElementById('landscape-chart').data.map(t => t.name)")
    assert f"merge: {merged.name}" in names and "linear paths" in names
    star = page.evaluate(f"document.getElementById('landscape-chart').data.find(t => t.name === 'merge: {merged.name}')")
    value = merged.metrics["lam"]
    assert star["x"][0] == pytest.approx(value, abs=1e-4) and star["y"][0] == pytest.approx(value, abs=1e-4)
    assert page.evaluate("Array.from(document.querySelectorAll('select[name=task] option')).map(o => o.value)") == [
        "digits 01234", "digits 56789"]
    page.select_option("select[name=task]", "digits 56789")
    assert page.evaluate("document.getElementById('landscape-chart').data[0].type") == "heatmap"
    assert page.js_errors == [], ("plane page", page.js_errors)

    # Back to the merge, and from it into the family tree: the merge is there with all three parents.
    page.goto(job.get_absolute_url())
    page.click("#tree-link")
    page.wait_for_function(TREE_READY, timeout=30_000)
    assert merged.name in page.evaluate("window.lineageTree.visibleIds()")
    page.wait_for_function(f"document.getElementById('node-panel').dataset.node === {merged.name!r}", timeout=10_000)
    panel = page.inner_text("#node-panel")
    for parent in (base, low, high):
        assert parent.name in panel
    assert not page.js_errors, page.js_errors
