"""The showcase: one result of every kind, published idempotently, shown on the home page and the API."""

from urllib.parse import parse_qsl, urlsplit

import pytest

from webapp.accounts.demo_account import demo_user
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobStatus
from webapp.jobs.services import job_create, job_params_validate
from webapp.phases.models import SweepCell, SweepRun
from webapp.phases.services import sweep_run_inline
from webapp.showcase import definitions, services
from webapp.showcase import demo
from webapp.showcase.models import ShowcaseEntry
from webapp.showcase.precomputed import sweep_import, sweep_write

pytestmark = pytest.mark.django_db

TINY_SWEEP = {
    "name": "tiny", "task": {"name": "modular-addition-mlp", "p": 5},
    "x": {"name": "weight_decay", "values": [0.0, 1.0]}, "y": {"name": "lr", "values": [0.01]},
    "seeds": 2, "budget": 30, "fixed": {"width": 8, "data_fraction": 0.6}, "metrics": ["mode_connectivity"], "eval_points": 10,
}


@pytest.fixture
def tiny_demo(monkeypatch):
    monkeypatch.setattr(demo, "DEMO_EXPERIMENTS", [{
        "slug": "digits-mlp-seeds", "title": "seeds", "description": "d", "tags": ["demo"], "featured": True, "order": 1,
        "runs": [{"dataset": "digits", "hidden": "8", "epochs": 1, "seed": seed} for seed in (0, 1, 2)],
    }])
    demo.demo_publish()
    return services.demo_objects(seeds_experiment="digits-mlp-seeds", hf_graph=None)


def finished_sweep(owner) -> Job:
    validated = job_params_validate(kind="sweep", data={"spec": TINY_SWEEP, "visibility": Visibility.PUBLIC}, user=owner)
    job = job_create(kind="sweep", params=validated.params, owner=owner, visibility=Visibility.PUBLIC, enqueue=False)
    assert sweep_run_inline(job=job) == JobStatus.SUCCEEDED
    return job


def test_a_precomputed_sweep_loads_as_the_same_finished_diagram(user, tmp_path, client):
    original = finished_sweep(user)
    path = tmp_path / "tiny.json.gz"
    sweep_write(job=original, path=path)
    copy = sweep_import(path=path, owner=user, experiment=None)
    assert copy.status == JobStatus.SUCCEEDED and copy.result == original.result and copy.last_seq == original.last_seq
    events = lambda job: [(e.seq, e.kind, e.payload) for e in job.events.order_by("seq")]  # noqa: E731
    assert events(copy) == events(original)
    cells = lambda job: list(SweepCell.objects.filter(job=job).values_list("i", "j", "result", "grokking_label"))  # noqa: E731
    assert cells(copy) == cells(original) and len(cells(copy)) == 2
    assert SweepRun.objects.filter(job=copy).count() == 4
    page = client.get(f"/r/{copy.slug}/")
    assert page.status_code == 200 and client.get(f"/phases/{copy.slug}/cell/0/0/").status_code == 200


def test_publish_queues_one_job_per_kind_once_and_prefills_run_this_yourself(tiny_demo, monkeypatch, client, tmp_path):
    monkeypatch.setattr(definitions, "PRECOMPUTED_DIR", tmp_path)
    monkeypatch.setattr(services, "PRECOMPUTED_DIR", tmp_path)
    owner = demo_user(dev_accounts=False)
    sweep_write(job=finished_sweep(owner), path=tmp_path / "grokking.json.gz")
    services.showcase_publish(owner=owner, objects=tiny_demo, log=lambda line: None)
    jobs = {e.key: e.job for e in ShowcaseEntry.objects.all()}
    assert set(jobs) == {e.key for e in definitions.ENTRIES}
    assert jobs["grokking"].status == JobStatus.SUCCEEDED and jobs["load-temperature"] is None  # no file for it here
    queued = {key: job for key, job in jobs.items() if job is not None and job.status == JobStatus.QUEUED}
    assert {job.kind for job in queued.values()} == {"landscape", "hessian", "connectivity", "lineage_recovery", "train"}
    assert all(job.visibility == Visibility.PUBLIC for job in queued.values())

    services.showcase_publish(owner=owner, objects=tiny_demo, log=lambda line: None)  # queued jobs are re-made (a new broker
    assert Job.objects.filter(status=JobStatus.QUEUED).count() == len(queued)      # may have lost them), never duplicated
    Job.objects.filter(status=JobStatus.QUEUED).update(status=JobStatus.SUCCEEDED)
    before = Job.objects.count()
    services.showcase_publish(owner=owner, objects=tiny_demo, log=lambda line: None)
    assert Job.objects.count() == before  # finished results are kept

    # "Run this yourself" opens the kind's form pre-filled with exactly the showcase's parameters.
    entry = ShowcaseEntry.objects.get(key="connectivity")
    client.force_login(owner)
    form = client.get(entry.run_url).context["form"]
    wanted = dict(parse_qsl(urlsplit(entry.run_url).query))
    assert {k: str(form.initial[k]) for k in wanted} == wanted


def test_home_and_api_show_every_family_with_its_results(tiny_demo, client):
    owner = demo_user(dev_accounts=False)
    services.showcase_publish(owner=owner, objects=tiny_demo, log=lambda line: None)
    Job.objects.filter(pk=ShowcaseEntry.objects.get(key="plane-random").job_id).update(status=JobStatus.SUCCEEDED)
    page = client.get("/").content.decode()
    for family in ("landscapes", "phases", "lineage"):
        assert f'data-family="{family}"' in page
    assert 'class="picture" src="/r/' in page  # a live picture from the finished plane
    assert "run this yourself" in page
    api = client.get("/api/showcase/").json()["showcase"]
    by_key = {e["key"]: e for e in api}
    assert by_key["plane-random"]["status"] == "succeeded" and by_key["plane-random"]["kind"] == "landscape"
    assert by_key["hessian"]["status"] == "queued"
