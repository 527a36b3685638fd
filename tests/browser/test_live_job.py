"""Headless Chromium: open the catalog, start a training job, watch it finish live."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in
from webapp.catalog.services import experiment_create
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job

pytestmark = pytest.mark.browser


def test_catalog_to_live_training_job(page):
    owner = get_user_model().objects.create_user("explorer", password="pw-explorer-1")
    experiment_create(title="Digits landscapes", owner=owner, visibility=Visibility.PUBLIC, featured=True, tags=["digits"],
                      description="Public demo experiment")
    experiment_create(title="Hidden work", owner=owner, visibility=Visibility.PRIVATE)

    page.goto("/")
    assert page.locator("#catalog .card").count() == 1
    assert "Digits landscapes" in page.inner_text("#catalog")
    page.fill("input[name=q]", "nothing-matches-this")
    page.press("input[name=q]", "Enter")
    assert page.locator("#catalog .card").count() == 0

    log_in(page, "explorer", "pw-explorer-1")
    page.goto("/")
    page.click("text=Train")
    page.fill("#id_hidden", "32")
    page.fill("#id_epochs", "8")
    page.fill("#id_batch_size", "32")
    page.click("#start-job")
    page.wait_for_url("**/r/*/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    page.wait_for_function("document.getElementById('job-progress').getAttribute('aria-valuenow') === '100'", polling=250, timeout=120_000)
    page.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", polling=250, timeout=30_000)
    page.wait_for_selector("#checkpoint-link", state="visible", timeout=10_000)  # the last batch has been drawn
    assert not page.locator("#cancel-form").is_visible()  # nothing left to cancel
    assert page.evaluate("window.__sameDocument") is True
    points = page.evaluate("document.getElementById('loss-chart').data[0].x.length")
    job = Job.objects.get(owner__username="explorer")
    metric_events = job.events.filter(kind="metrics").count()
    assert points == metric_events > 10
    assert page.js_errors == []


def test_private_result_is_not_found_for_another_user(page):
    owner = get_user_model().objects.create_user("owner1", password="pw-owner-1")
    get_user_model().objects.create_user("intruder", password="pw-intruder-1")
    job = Job.objects.create(kind="train", owner=owner, visibility=Visibility.PRIVATE, title="Secret run")
    log_in(page, "intruder", "pw-intruder-1")
    response = page.goto(job.get_absolute_url())
    assert response.status == 404
    assert "Secret run" not in page.content()
