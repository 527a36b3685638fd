"""A fanned-out job over two real workers, one SIGKILLed while it computes a block, followed by a websocket
client as the browser follows it (tests/integration/test_plane_fanout.py, test_line_fanout.py)."""

import asyncio
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import websockets

from tests import stack
from webapp.jobs.models import Job, JobPart

FINAL = {"succeeded", "failed", "cancelled"}


async def _follow(url, by_seq, timeout=300):
    """Follow a job as the browser client does: keep every event by seq (two workers publish, so
    messages may arrive out of order), until the final status."""
    async with websockets.connect(url, origin="http://127.0.0.1") as socket:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await socket.recv())
                for event in message["events"] if message["type"] == "snapshot" else [message]:
                    by_seq.setdefault(event["seq"], {key: event[key] for key in ("seq", "kind", "payload")})
                    if event["kind"] == "status" and event["payload"]["status"] in FINAL:
                        return


def _contiguous(by_seq) -> int:
    seq = 0
    while seq + 1 in by_seq:
        seq += 1
    return seq


@dataclass
class Outcome:
    job: Job
    events: list[dict]  # every event of the job, in seq order
    survivor: stack.Worker  # still running: the single-worker reference goes to it


@contextmanager
def a_worker_killed_mid_block(process_logs, live_web, start_job, name: str, poll: float = 0.1):
    """Start two workers and the job (``start_job()``), SIGKILL the worker that computes a block (not the
    first part), wait for the job to end; check the block was redone by the survivor and the job succeeded."""
    doomed = stack.Worker(name=f"doomed-{name}").start(process_logs)
    survivor = stack.Worker(name=f"survivor-{name}").start(process_logs)
    try:
        job = start_job()
        by_seq = {}
        url = f"{live_web.ws_url}/ws/jobs/{job.slug}/"
        client = threading.Thread(target=lambda: asyncio.run(_follow(url, by_seq)))
        client.start()

        doomed_pids = stack.pool_pids(doomed)

        def doomed_block():
            return JobPart.objects.filter(job=job, status="running", index__gt=0, finaliser=False,
                                          worker__regex=rf":({'|'.join(doomed_pids)})$").first()

        stack.wait_until(lambda: doomed_block() is not None, 180, "the doomed worker to be computing a block", poll=poll)
        stack.kill_hard(doomed)
        victim = JobPart.objects.get(pk=doomed_block().pk)  # still "running": it was killed mid-block

        stack.wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, 240, f"the {name} to finish")
        client.join(timeout=60)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error + survivor.log()
        victim.refresh_from_db()
        assert victim.status == "succeeded" and victim.attempts >= 2
        assert victim.worker.split(":")[-1] not in doomed_pids  # redone by the survivor

        # A gap (a message the channel layer dropped) is filled the way the browser does: reconnect after the last seq held.
        if _contiguous(by_seq) < max(by_seq):
            asyncio.run(_follow(f"{url}?after={_contiguous(by_seq)}", by_seq, timeout=60))
        events = [by_seq[seq] for seq in sorted(by_seq)]
        assert events[-1]["kind"] == "status" and events[-1]["payload"]["status"] == "succeeded"
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        yield Outcome(job=job, events=events, survivor=survivor)
    finally:
        doomed.stop(kill=True)
        survivor.stop()
