import pytest

from webapp.catalog.models import Checkpoint, Experiment
from webapp.jobs.models import Job
from webapp.showcase import demo

pytestmark = pytest.mark.django_db


def test_demo_publish_is_idempotent(monkeypatch):
    tiny = [{
        "slug": "tiny-demo", "title": "Tiny demo", "description": "d", "tags": ["demo"], "featured": True, "order": 1,
        "runs": [{"dataset": "digits", "hidden": "8", "epochs": 1, "seed": seed} for seed in (0, 1)],
    }]
    monkeypatch.setattr(demo, "DEMO_EXPERIMENTS", tiny)
    demo.demo_publish()
    experiment = Experiment.objects.get(slug="tiny-demo")
    assert experiment.visibility == "public" and experiment.featured
    assert Checkpoint.objects.filter(experiment=experiment).count() == 2
    assert all(c.trajectory_file for c in Checkpoint.objects.all())
    demo.demo_publish()
    assert Checkpoint.objects.count() == 2 and Job.objects.count() == 2
    # A half-finished demo (one run lost) is completed, not duplicated.
    Job.objects.filter(params__seed=1).delete()
    Checkpoint.objects.filter(created_by_job__isnull=True).delete()
    demo.demo_publish()
    assert Job.objects.count() == 2 and Job.objects.filter(status="succeeded").count() == 2
