"""Lineage import (a file and Hub ids) and kinship through a real Celery worker, watched over a
real websocket: progress events, then the result.  The worker answers Hub requests from the
recordings in the repository (tests/conftest.py), never the network."""

import asyncio

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.integration.test_lineage_recovery_pipeline import _collect
from tests.webapp.test_lineage_support import experiment, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job, JobEvent
from webapp.lineage.models import LineageGraph, ModelEdge

pytestmark = pytest.mark.integration


def _stored(job):
    return [{"seq": e.seq, "kind": e.kind, "payload": e.payload} for e in JobEvent.objects.filter(job=job).order_by("seq")]


def test_import_job_streams_files_and_hub_requests_then_the_graph(live_stack):
    owner = get_user_model().objects.create_user("importer", password="pw-import-1")
    browser = Client()
    browser.force_login(owner)
    response = browser.post("/lineage/import/", {
        "name": "streamed", "visibility": "public", "follow_parents": "on",
        "edge_files": [SimpleUploadedFile("edges.csv", b"id,base_model,base_model_relation\nx/b,x/a,finetune\nx/c,x/b,adapter\n")],
        "hub_ids": "example-org/llama-3.1-8b-sql-merge",
    })
    assert response.status_code == 302
    job = Job.objects.get(kind="lineage_import", owner=owner)

    events = asyncio.run(_collect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/"))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error + live_stack["worker"].log()
    assert events == _stored(job)  # every event, in order, exactly once
    kinds = [e["kind"] for e in events]
    assert kinds[:4] == ["status", "stage", "file", "hub"] and kinds[-2:] == ["stage", "status"]
    assert events[2]["payload"] == {"name": "edges.csv", "kind": "edges", "models": 3, "edges": 2, "issues": 0}
    hub = [e["payload"]["model"] for e in events if e["kind"] == "hub"]
    assert hub[0] == "example-org/llama-3.1-8b-sql-merge" and "meta-llama/Llama-3.1-8B" in hub  # parents followed
    progress = [e["payload"]["request"] for e in events if e["kind"] == "hub"]
    assert progress == list(range(1, len(hub) + 1))
    graph = LineageGraph.objects.get(slug=job.result["graph"]["slug"])
    assert graph.name == "streamed" and graph.experiment.owner == owner and graph.source == "mixed"
    assert job.result["graph"]["nodes"] == graph.num_nodes and ModelEdge.objects.filter(graph=graph, child__model_id="x/c").get().relation == "adapter"
    # The result page shows the graph and links to it.
    page = browser.get(job.get_absolute_url()).content.decode()
    assert f'id="import-graph-link" href="{graph.get_absolute_url()}"' in page


def test_kinship_job_streams_models_and_layers_then_the_numbers(live_stack, tmp_path):
    owner = get_user_model().objects.create_user("kin", password="pw-kin-12345")
    exp = experiment(owner, Visibility.PUBLIC, title="kin")
    base_state = tiny_state(0)
    delta = tiny_state(1)
    base = saved_checkpoint(exp, "base", base_state, tmp_path)
    a = saved_checkpoint(exp, "a", {k: v + 0.01 * delta[k] for k, v in base_state.items()}, tmp_path, parent=base, relation="finetune")
    b = saved_checkpoint(exp, "b", {k: v - 0.01 * delta[k] for k, v in base_state.items()}, tmp_path, parent=base, relation="finetune")
    browser = Client()
    browser.force_login(owner)
    response = browser.post("/jobs/new/kinship/", {"a": a.slug, "b": b.slug, "visibility": "public"})
    assert response.status_code == 302
    job = Job.objects.get(kind="kinship", owner=owner)

    events = asyncio.run(_collect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/"))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error + live_stack["worker"].log()
    assert events == _stored(job)
    kinds = [e["kind"] for e in events]
    assert kinds == ["status", "model", "model", "model", "layer", "layer", "layer", "layer", "status"]
    assert [e["payload"]["role"] for e in events if e["kind"] == "model"] == ["base", "a", "b"]
    assert all(e["payload"]["pearson"] == pytest.approx(-1.0, abs=1e-9) for e in events if e["kind"] == "layer")
    assert job.result["overall"]["cosine"] == pytest.approx(-1.0, abs=1e-9) and job.result["base"]["slug"] == base.slug
