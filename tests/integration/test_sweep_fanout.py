"""A 3x3 sweep with 2 seeds over real workers (one fan-out part per run); one worker is killed
mid-sweep and every run and every cell is still written exactly once."""

import pytest
from django.contrib.auth import get_user_model

from tests import stack
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobPart
from webapp.jobs.services import job_params_validate, job_submit
from webapp.phases.models import SweepCell, SweepRun

pytestmark = pytest.mark.integration

SWEEP = {
    "name": "fan-out test",
    "task": {"name": "modular-addition-mlp", "p": 11},
    "x": {"name": "weight_decay", "values": [0.0, 0.5, 1.0]},
    "y": {"name": "lr", "values": [0.003, 0.01, 0.03]},
    "seeds": 2,
    "budget": 400,
    "fixed": {"width": 24, "data_fraction": 0.5, "optimizer": "adamw"},
    "metrics": ["mode_connectivity", "cka", "l2_distance"],
    "eval_points": 40,
}


@pytest.fixture
def stale_fast(monkeypatch, settings):
    # Workers read it from the environment; the test process from settings.
    monkeypatch.setenv("TERRAIN_SWEEP_STALE_SECONDS", "4")
    settings.TERRAIN_SWEEP_STALE_SECONDS = 4


def test_sweep_survives_a_killed_worker(transactional_db, stale_fast, process_logs, live_web):
    doomed = stack.Worker(name="doomed", concurrency=1).start(process_logs)
    survivor = stack.Worker(name="survivor", concurrency=1).start(process_logs)
    try:
        owner = get_user_model().objects.create_user("physicist", password="pw-physicist-1")
        validated = job_params_validate(kind="sweep", data={"spec": SWEEP, "visibility": Visibility.PUBLIC}, user=owner)
        job = job_submit(validated=validated, owner=owner)

        doomed_pids = stack.pool_pids(doomed)

        def doomed_part():
            return JobPart.objects.filter(job=job, status="running", finaliser=False, worker__regex=rf":({'|'.join(doomed_pids)})$").first()

        stack.wait_until(lambda: doomed_part() is not None, 120, "the doomed worker to be training a run")
        stack.kill_hard(doomed)
        victim = SweepRun.objects.get(pk=doomed_part().payload["run"])  # its part still "running": killed mid-run

        stack.wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, 300, "the sweep to finish")
        job.refresh_from_db()
        assert job.status == "succeeded", job.error + survivor.log()
        runs = SweepRun.objects.filter(job=job)
        assert runs.count() == 18 and set(runs.values_list("status", flat=True)) == {"succeeded"}
        assert SweepRun.objects.get(pk=victim.pk).attempts >= 2  # taken over after its worker died
        assert JobPart.objects.get(job=job, payload__run=victim.pk).worker.split(":")[-1] not in doomed_pids
        assert job.parts.filter(status="succeeded").count() == 19  # 18 runs and the finaliser
        assert SweepCell.objects.filter(job=job).count() == 9
        cell_events = [(e.payload["i"], e.payload["j"]) for e in job.events.filter(kind="cell")]
        assert sorted(cell_events) == sorted({(i, j) for i in range(3) for j in range(3)})  # each cell exactly once
        run_events = job.events.filter(kind="run", payload__status="succeeded").count()
        assert run_events == 18
        assert len(job.result["cells"]) == 9 and all(c["phase"].get("grokking") for c in job.result["cells"])
    finally:
        doomed.stop(kill=True)
        survivor.stop()
