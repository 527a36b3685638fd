"""A real training script logs through the client to a real daphne and Celery worker,
survives the web server being killed and restarted mid-run, and gets its PCA plane back."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from tests import stack
from webapp.accounts.tokens import token_create
from webapp.jobs.models import Job
from webapp.runs.models import Run

pytestmark = [pytest.mark.integration, pytest.mark.browser]

STEPS = 20
KILL_AT_STEP = 4
DOWN_SECONDS = 3


@pytest.fixture
def own_web(transactional_db, live_worker, process_logs):
    """A daphne of this test's own, so it can be killed and restarted without touching the session's."""
    server = stack.WebServer().start(process_logs)
    yield server
    server.stop()


def _wait_for_line(process, prefix: str, lines: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("script ended early:\n" + "".join(lines) + process.stderr.read())
        lines.append(line)
        if line.startswith(prefix):
            return
    raise AssertionError(f"no {prefix!r} from the script within {timeout} s")


def test_training_script_logs_a_run_and_gets_its_pca_plane(own_web, live_worker, process_logs, tmp_path, request):
    owner = get_user_model().objects.create_user("scripter", password="pw-scripter-1")
    token = token_create(user=owner, name="training box")
    env = stack.process_env(TERRAIN_URL=own_web.url, TERRAIN_TOKEN=token.secret,
                            PYTHONPATH=os.pathsep.join([str(stack.ROOT / "client"), str(stack.ROOT)]))
    out = tmp_path / "plane.npz"
    script = subprocess.Popen([sys.executable, str(stack.ROOT / "tests/client/train_and_log.py"), str(out), str(STEPS), "0.3"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    restarted = stack.WebServer(port=own_web.port)
    request.addfinalizer(restarted.stop)
    try:
        _wait_for_line(script, f"step {KILL_AT_STEP}", lines)
        own_web.stop()  # the web server goes away mid-run ...
        time.sleep(DOWN_SECONDS)
        restarted.start(process_logs)  # ... and comes back on the same port
        stdout, stderr = script.communicate(timeout=300)
    finally:
        if script.poll() is None:
            script.kill()
    assert script.returncode == 0, "".join(lines) + stdout + stderr + live_worker.log()
    summary = json.loads(stdout.strip().splitlines()[-1])
    print(summary)  # timings for the record (pytest -s)

    # The outage really happened to the uploads, and lost nothing.
    assert summary["retries"] > 0, stderr
    run = Run.objects.get(slug=summary["run"])
    assert [e.step for e in run.run_checkpoints.order_by("step")] == list(range(STEPS))
    assert [m.step for m in run.metric_rows.order_by("step")] == list(range(STEPS + 1))
    assert all(set(m.values) == {"loss", "lr"} for m in run.metric_rows.filter(step__lt=STEPS))

    # The script showed progress from the websocket and received the plane's arrays.
    assert "100% Loss plane, pca axes, 9x9 (succeeded)" in stderr
    assert {"start", "points", "trajectory", "status"} <= set(summary["event_kinds"])  # streamed over the websocket
    job = Job.objects.get(slug=summary["job"])
    assert job.status == "succeeded" and job.params["run"] == run.slug and job.params["axes"] == "pca"
    arrays = np.load(out)
    assert arrays["loss"].shape == (9, 9) and summary["loss_shape"] == [9, 9]
    np.testing.assert_array_equal(arrays["loss"], np.array(job.result["loss"], dtype=float))
    np.testing.assert_array_equal(arrays["a"], job.result["a"])
    # The row logged after the plane, with no run.finish(), was flushed when the script exited.
    assert run.metric_rows.get(step=STEPS).values == {"plane_min": float(np.nanmin(arrays["loss"]))}
    assert run.finished_at is not None
    # The trajectory drawn on the plane is every logged checkpoint, in step order.
    assert arrays["trajectory_steps"].tolist() == list(range(STEPS)) and arrays["trajectory"].shape == (STEPS, 2)
    # The centre is the last logged checkpoint: its projection is the origin.
    np.testing.assert_allclose(arrays["trajectory"][-1], [0.0, 0.0], atol=1e-5)

    # The permalink shows the same plane (its page, and the numbers the page draws).
    with urllib.request.urlopen(summary["url"]) as page:
        assert page.status == 200 and job.slug.encode() in page.read()
    with urllib.request.urlopen(summary["url"] + "export.json") as export:
        exported = json.loads(export.read())
    np.testing.assert_array_equal(np.array(exported["job"]["result"]["loss"], dtype=float), arrays["loss"])
    drawn = _drawn_plane(summary["url"])
    np.testing.assert_array_equal(np.array(drawn["z"], dtype=float), arrays["loss"].T)  # plotly: z[b index][a index]
    np.testing.assert_array_equal(np.array(drawn["trajectory"], dtype=float), arrays["trajectory"])


def _drawn_plane(url: str) -> dict:
    """What the permalink page draws in headless Chromium: the surface and the trajectory on it."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.getElementById('landscape-chart').dataset.points === '81'", timeout=60_000)
            page.wait_for_function("document.getElementById('landscape-chart').data.some(t => t.name === 'trajectory')", timeout=30_000)
            return page.evaluate("""() => {
                const data = document.getElementById('landscape-chart').data;
                const path = data.find(t => t.name === 'trajectory');
                return {z: data[0].z, trajectory: path.x.map((x, k) => [x, path.y[k]])};
            }""")
        finally:
            browser.close()
