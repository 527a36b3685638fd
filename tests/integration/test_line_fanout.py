"""One dense line over two real workers; one is SIGKILLed mid-line.  The line still completes, a websocket
client sees the coarse curve first and every point exactly once, and the line equals a single-worker run
number for number.  Then a Hessian density whose probes are parts equals the single-worker spectrum."""

import pytest
from django.contrib.auth import get_user_model

from analysis import line_blocks
from tests import stack
from tests.integration.fanout_harness import a_worker_killed_mid_block
from tests.webapp.landscape_fixtures import trained_checkpoint
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job
from webapp.jobs.services import job_create, job_params_validate

pytestmark = pytest.mark.integration
STEPS = 1001  # 33 coarse points, then eight segments


def _line_job(owner, checkpoint, parts):
    data = {"checkpoint": checkpoint.slug, "mode": "line", "resolution": STEPS, "eval_size": 1000}
    params = job_params_validate(kind="landscape", data=data, user=owner).params
    return job_create(kind="landscape", params={**params, "parts": parts}, owner=owner, visibility=Visibility.PUBLIC)


def _hessian_job(owner, checkpoint, parts):
    data = {"checkpoint": checkpoint.slug, "eval_size": 300, "top_k": 2, "trace_matvecs": 6, "density_probes": 3, "density_iters": 10}
    params = job_params_validate(kind="hessian", data=data, user=owner).params
    return job_create(kind="hessian", params={**params, "parts": parts}, owner=owner, visibility=Visibility.PUBLIC)


def test_line_survives_a_killed_worker(transactional_db, monkeypatch, process_logs, live_web, tmp_path):
    monkeypatch.setenv("TERRAIN_FANOUT_STALE_SECONDS", "3")  # the workers' takeover timeout
    owner = get_user_model().objects.create_user("surveyor", password="pw-surveyor-1")
    checkpoint = trained_checkpoint(owner, tmp_path, spec={"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10},
                                    with_trajectory=False)
    # the blocks are short (a few hundred milliseconds): look often for the one to kill the worker in
    with a_worker_killed_mid_block(process_logs, live_web, lambda: _line_job(owner, checkpoint, parts=8), "line", poll=0.02) as outcome:
        job, events = outcome.job, outcome.events
        streamed = [p["k"] for e in events if e["kind"] == "points" for p in e["payload"]["points"]]
        assert sorted(streamed) == list(range(STEPS))  # every point once, across the takeover
        coarse = line_blocks.coarse_indices(STEPS).tolist()
        assert sorted(streamed[: len(coarse)]) == coarse  # the coarse curve first

        single = _line_job(owner, checkpoint, parts=1)  # the reference: one worker, the classic path
        stack.wait_until(lambda: Job.objects.get(pk=single.pk).is_finished, 240, "the single-worker line")
        single.refresh_from_db()
        assert single.status == "succeeded" and not single.parts.exists()
        for key in ("t", "loss", "accuracy", "directions"):
            assert job.result[key] == single.result[key], key
        loss = {p["k"]: p["loss"] for e in events if e["kind"] == "points" for p in e["payload"]["points"]}
        assert all(value == single.result["loss"][k] for k, value in loss.items())  # every streamed value exact

        spectra = [_hessian_job(owner, checkpoint, parts) for parts in (3, 1)]  # the spectrum part and 3 one-probe parts
        stack.wait_until(lambda: all(Job.objects.get(pk=j.pk).is_finished for j in spectra), 240, "the two spectra")
        fanned, alone = (Job.objects.get(pk=j.pk) for j in spectra)
        assert fanned.status == alone.status == "succeeded" and fanned.parts.count() == 5 and not alone.parts.exists()
        assert {**fanned.result, "fanout": None, "device": alone.result["device"]} == alone.result  # the density's numbers too
