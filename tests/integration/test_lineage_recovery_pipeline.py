"""Recovery from weights through a real Celery worker, watched over a real websocket."""

import asyncio
import json

import pytest
import websockets
from django.contrib.auth import get_user_model

from tests.webapp.test_lineage_support import experiment, saved_checkpoint, tiny_state
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import JobEvent
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.integration
WIDER = {"kind": "mlp", "in": 16, "hidden": [16], "out": 4}


async def _collect(url, timeout=120):
    events = []
    async with websockets.connect(url, origin="http://127.0.0.1") as socket:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await socket.recv())
                for event in message["events"] if message["type"] == "snapshot" else [message]:
                    if not events or event["seq"] > events[-1]["seq"]:
                        events.append({key: event[key] for key in ("seq", "kind", "payload")})
                    if event["kind"] == "status" and event["payload"]["status"] in ("succeeded", "failed", "cancelled"):
                        return events


def test_recovery_of_catalog_checkpoints_streams_to_a_websocket(live_stack, tmp_path):
    owner = get_user_model().objects.create_user("recoverer", password="pw-recover-1")
    exp = experiment(owner, Visibility.PRIVATE, title="two bases")
    # Two families: roots from different seeds, each with three fine-tunes of equal size.  16 wide: in the
    # 4-3-2 MLP two random 3x4 updates are often closer to each other than to their root, so the answer
    # would not be known (the distance tree there gets 4-8 of 10 seeds right, depending on the distance).
    for family, seed in (("a", 0), ("b", 1)):
        base = tiny_state(seed, WIDER)
        root = saved_checkpoint(exp, f"{family}-root", base, tmp_path, spec=WIDER)
        for k in range(3):
            child = {key: value + 0.02 * tiny_state(100 + 10 * seed + k, WIDER)[key] for key, value in base.items()}
            saved_checkpoint(exp, f"{family}-child{k}", child, tmp_path, parent=root, relation="finetune", spec=WIDER)
    validated = job_params_validate(kind="lineage_recovery", data={"source": "experiment", "source_experiment": exp.slug,
                                                                    "visibility": "public"}, user=owner)
    job = job_submit(validated=validated, owner=owner)

    events = asyncio.run(_collect(f"{live_stack['web'].ws_url}/ws/jobs/{job.slug}/"))
    job.refresh_from_db()
    assert job.status == "succeeded", job.error + live_stack["worker"].log()
    stored = [{"seq": e.seq, "kind": e.kind, "payload": e.payload} for e in JobEvent.objects.filter(job=job).order_by("seq")]
    assert events == stored  # every event, in order, exactly once
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["status", "stage", "model"] and kinds.count("model") == 8
    assert kinds[-5:] == ["distances", "families", "tree", "score", "status"]
    score = job.result["score"]
    assert job.result["num_families"] == 2 and score["clustering_accuracy"] == 1.0
    assert score["undirected_edge_accuracy"] == 1.0
