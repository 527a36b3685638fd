"""Headless Chromium: define a small sweep in the form, watch its heatmap fill in, open a cell."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in
from webapp.jobs.models import Job

pytestmark = pytest.mark.browser

WATCH_CELLS = """
window.__cellHistory = [];
const chart = document.getElementById('sweep-chart');
new MutationObserver(() => {
  const n = parseInt(chart.dataset.cells, 10), h = window.__cellHistory;
  if (!h.length || h[h.length - 1] !== n) h.push(n);
}).observe(chart, {attributes: true, attributeFilter: ['data-cells']});
"""

# Screen position of the centre of heatmap cell (i, j), from Plotly's own axes.
CELL_CENTRE = """([i, j]) => {
  const gd = document.getElementById('sweep-chart'), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.getBoundingClientRect();
  return [box.left + xa._offset + xa.c2p(i), box.top + ya._offset + ya.c2p(j)];
}"""


def test_define_sweep_watch_cells_fill_in_and_open_a_cell(page):
    get_user_model().objects.create_user("experimenter", password="pw-exp-12345")
    log_in(page, "experimenter", "pw-exp-12345")
    page.goto("/phases/")
    page.click("#new-sweep")
    page.select_option("#id_task", "modular-addition-mlp")
    page.fill("#id_task_options", '{"p": 11}')
    page.select_option("#id_x_axis", "weight_decay")
    page.fill("#id_x_values", "0, 1")
    page.select_option("#id_y_axis", "lr")
    page.fill("#id_y_values", "0.01, 0.03")
    page.fill("#id_seeds", "2")
    page.fill("#id_budget", "1500")  # runs of a second or more, so the heatmap is seen filling in
    page.fill("#id_fixed", '{"width": 24, "data_fraction": 0.5, "optimizer": "adamw"}')
    page.fill("#id_eval_points", "30")
    page.click("#start-job")
    page.wait_for_url("**/r/*/")
    page.evaluate(WATCH_CELLS)
    page.evaluate("window.__sameDocument = true")

    page.wait_for_function("['succeeded', 'failed'].includes(document.getElementById('job-status').textContent)", polling=250, timeout=300_000)
    job = Job.objects.get(owner__username="experimenter", kind="sweep")
    assert job.status == "succeeded", job.error
    page.wait_for_function("document.getElementById('sweep-chart').dataset.cells === '4'", timeout=10_000)
    history = page.evaluate("window.__cellHistory")
    assert page.evaluate("window.__sameDocument") is True
    assert history[-1] == 4 and len(history) >= 2, f"cells did not fill in live: {history}"

    # The legend explains the rule; every cell got a phase colour.
    assert "Liu" in page.inner_text("#sweep-legend") and "comprehension" in page.inner_text("#sweep-legend")
    z = page.evaluate("document.getElementById('sweep-chart').data[0].z")
    assert all(value is not None for row in z for value in row)

    x, y = page.evaluate(CELL_CENTRE, [1, 0])
    page.mouse.click(x, y)
    page.wait_for_selector("#sweep-cell-detail:not([hidden])", timeout=10_000)
    assert page.get_attribute("#sweep-cell-detail", "data-cell") == "1-0"
    page.wait_for_function("document.querySelector('#sweep-cell-detail .cell-chart').data && document.querySelector('#sweep-cell-detail .cell-chart').data.length === 4")
    assert page.locator("#sweep-cell-detail .cell-actions form[method=post] button").count() == 2  # a landscape button per seed
    assert page.js_errors == []

    # The button POSTs (with the CSRF token) and opens the landscape form on the run's model.
    page.locator("#sweep-cell-detail .cell-actions form[method=post] button").first.click()
    page.wait_for_url("**/jobs/new/landscape/?checkpoint=*", timeout=20_000)
    assert page.input_value("#id_checkpoint") and page.js_errors == []
