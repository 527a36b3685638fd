"""Headless Chromium watches a real worker recover lineage: relations, confidences and metadata disagreements."""

import pytest
import torch
from django.contrib.auth import get_user_model

from analysis.lineage.zoo_models import quantize_state
from tests.browser.conftest import log_in
from tests.webapp.test_lineage_support import experiment, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.browser

SPEC = {"kind": "mlp", "in": 64, "hidden": [32], "out": 10}


def test_recovered_tree_shows_relations_confidence_and_disagreements(page, tmp_path):
    owner = get_user_model().objects.create_user("recoverer", password="pw-recover-2")
    exp = experiment(owner, Visibility.PRIVATE, title="recovery page")
    base = tiny_state(0, SPEC)
    root = saved_checkpoint(exp, "root", base, tmp_path, spec=SPEC)
    first = saved_checkpoint(exp, "ft-one", {k: v + 0.02 * tiny_state(11, SPEC)[k] for k, v in base.items()},
                             tmp_path, parent=root, relation="finetune", spec=SPEC)
    saved_checkpoint(exp, "ft-two", {k: v + 0.02 * tiny_state(12, SPEC)[k] for k, v in base.items()}, tmp_path,
                     parent=first, relation="finetune", spec=SPEC)  # the catalog is wrong: the weights say root
    saved_checkpoint(exp, "root-int8", quantize_state({k: v.to(torch.float32) for k, v in base.items()}, 8),
                     tmp_path, parent=root, relation="quantize", spec=SPEC)
    validated = job_params_validate(kind="lineage_recovery", data={"source": "experiment", "source_experiment": exp.slug,
                                                                    "visibility": "public"}, user=owner)
    job = job_submit(validated=validated, owner=owner)

    log_in(page, "recoverer", "pw-recover-2")
    page.goto(job.get_absolute_url())
    try:
        page.wait_for_function("document.getElementById('recovery-tree').dataset.state === 'drawn'", timeout=120_000)
    finally:
        job.refresh_from_db()
        print(job.status, job.error, page.locator("#recovery-stage").inner_text(), page.js_errors)
    page.wait_for_selector("#recovery-disagreements:not([hidden])")
    assert page.locator("#recovery-disagreements").get_attribute("data-count") == "1"
    assert "model card says ft-two derives from ft-one; the weights say root" in page.locator(
        "#recovery-disagreements li").inner_text()
    hover = page.evaluate("document.getElementById('recovery-tree').data.find(t => t.name === 'edges').hovertext")
    assert len(hover) == 3
    assert any("root → root-int8<br>quantized · confidence" in h for h in hover)
    assert any("root → ft-two<br>finetune · confidence" in h and "metadata disagrees" in h for h in hover)
    legend = page.evaluate("document.getElementById('recovery-tree').data.map(t => t.name)")
    assert "wrong · finetune" in legend and "correct · quantized" in legend
    page.wait_for_function("document.getElementById('score-relations').textContent.length > 0", timeout=30_000)
    assert page.js_errors == []
