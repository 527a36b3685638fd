"""Run one real job through the running stack (worker + web server) and check what a user sees."""

import asyncio
import json
import urllib.request

import websockets
from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.demo_account import demo_user
from webapp.catalog.visibility import Visibility
from webapp.jobs.services import job_params_validate, job_submit


class Command(BaseCommand):
    help = "Smoke-test a running Terrain: a training job over the real worker, watched over the real websocket."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--timeout", type=float, default=180)

    def handle(self, *args, base_url, timeout, **options):
        for path in ("/", "/static/vendor/plotly.min.js", "/e/digits-mlp-seeds/"):
            with urllib.request.urlopen(base_url + path, timeout=10) as response:
                if response.status != 200:
                    raise CommandError(f"GET {path} gave {response.status}")
        owner = demo_user(dev_accounts=False)
        validated = job_params_validate(
            kind="train", data={"dataset": "digits", "hidden": "32", "epochs": 3, "visibility": Visibility.PUBLIC}, user=owner
        )
        job = job_submit(validated=validated, owner=owner)
        ws_url = base_url.replace("http", "ws", 1) + f"/ws/jobs/{job.slug}/"
        status, events = asyncio.run(self._watch(ws_url, timeout))
        if status != "succeeded":
            raise CommandError(f"smoke job ended {status}")
        seqs = [event["seq"] for event in events]
        if seqs != list(range(1, len(seqs) + 1)):
            raise CommandError(f"events out of order or missing: {seqs}")
        self.stdout.write(f"smoke job {job.slug}: {len(events)} events in order, status {status}")
        self._wait_for_showcase(base_url, timeout)

    def _wait_for_showcase(self, base_url, timeout):
        """Every demo result finished, as the JSON API reports it (the demo's promise to a new user)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(base_url + "/api/showcase/", timeout=10) as response:
                entries = json.load(response)["showcase"]
            pending = [e["key"] for e in entries if e["status"] in ("queued", "running")]
            broken = [f"{e['key']}: {e['status']}" for e in entries if e["status"] not in ("queued", "running", "succeeded")]
            if broken:
                raise CommandError(f"showcase results not finished: {', '.join(broken)}")
            if not pending:
                break
            if time.monotonic() > deadline:
                raise CommandError(f"showcase results still pending after {timeout:.0f}s: {', '.join(pending)}")
            time.sleep(1)
        self.stdout.write("showcase: " + json.dumps({e["key"]: e["kind"] for e in entries}))

    async def _watch(self, url, timeout):
        events, status = [], None
        async with websockets.connect(url, origin="http://127.0.0.1") as socket:
            async with asyncio.timeout(timeout):
                while status not in ("succeeded", "failed", "cancelled"):
                    message = json.loads(await socket.recv())
                    batch = message["events"] if message["type"] == "snapshot" else [message]
                    for event in batch:
                        if event["seq"] > (events[-1]["seq"] if events else 0):
                            events.append(event)
                        if event["kind"] == "status":
                            status = event["payload"]["status"]
        return status, events
