"""The demo catalog holds the real MiniLM (a Hugging Face checkpoint) with a finished plane on real text."""

import math

import pytest

from webapp.accounts.demo_account import demo_user
from webapp.catalog.models import Checkpoint, Experiment
from webapp.jobs.models import Job
from webapp.showcase import demo_minilm

pytestmark = pytest.mark.django_db


def test_minilm_demo_has_a_finished_landscape():
    owner = demo_user(dev_accounts=False)
    experiment = demo_minilm.publish(owner=owner, resolution=3)
    assert experiment.visibility == "public"
    checkpoint = Checkpoint.objects.get(experiment=experiment)
    assert checkpoint.source == "huggingface" and checkpoint.model_info["architecture"] == "BertForSequenceClassification"
    assert 22_000_000 < checkpoint.num_parameters < 23_000_000
    job = Job.objects.get(experiment=experiment, kind="landscape")
    assert job.status == "succeeded", job.error
    assert len(job.result["loss"]) == 3 and all(math.isfinite(v) for row in job.result["loss"] for v in row)
    demo_minilm.publish(owner=owner, resolution=3)  # idempotent
    assert Job.objects.filter(experiment=experiment).count() == 1 and Experiment.objects.filter(slug=demo_minilm.SLUG).count() == 1
