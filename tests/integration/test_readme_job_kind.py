"""README's "Developer guide: adding a job kind", run as written: its two code blocks become an app
installed in a real Celery worker (TERRAIN_EXTRA_APPS), which runs a job of the example kind."""

import argparse
import re
import sys
import types

import pytest
from django.contrib.auth import get_user_model

from tests import stack
from webapp.jobs import kinds
from webapp.jobs.models import Job, JobEvent
from webapp.jobs.services import job_create, job_enqueue, job_params_validate

pytestmark = pytest.mark.integration

APP = "readme_primes"
# A queue of its own: the session's worker, which does not know the example kind, never takes the job.
QUEUE = "readme-example"


def readme_blocks() -> tuple[str, str]:
    """The guide's Python block (the app's job_kinds.py) and its JavaScript block (the renderer)."""
    text = (stack.ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Developer guide: adding a job kind"):]
    section = section[: section.index("\n## ", 1)]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = re.search(r"```js\n(.*?)```", section, re.S).group(1)
    return python, script


@pytest.fixture
def example_app(tmp_path, monkeypatch):
    """The blocks written as an app on disk (for the worker) and registered in this process (for the pages)."""
    python, script = readme_blocks()
    app = tmp_path / APP
    (app / "static" / "js").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "job_kinds.py").write_text(python)
    (app / "static" / "js" / "primes_renderer.js").write_text(script)
    monkeypatch.setattr(kinds, "_REGISTRY", dict(kinds._REGISTRY))  # the kind leaves with the test
    module = types.ModuleType(f"{APP}.job_kinds")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(python, str(app / "job_kinds.py"), "exec"), module.__dict__)
    return {"path": tmp_path, "script": script, "kind": kinds.get("primes")}


@pytest.fixture
def example_worker(example_app, transactional_db, process_logs):
    worker = stack.Worker(name="readme-worker", queues=QUEUE, env={
        "TERRAIN_EXTRA_APPS": APP, "PYTHONPATH": f"{example_app['path']}:{stack.ROOT}"}).start(process_logs)
    yield worker
    worker.stop()


def test_the_readme_example_kind_runs_through_a_real_worker(example_app, example_worker, client, monkeypatch):
    owner = get_user_model().objects.create_user("primer", password="pw-primer-1")
    validated = job_params_validate(kind="primes", data={"below": 1000, "chunks": 4}, user=owner)
    job = job_create(kind="primes", params=validated.params, owner=owner, enqueue=False)
    Job.objects.filter(pk=job.pk).update(queue=QUEUE)
    job.refresh_from_db()
    job_enqueue(job=job)
    stack.wait_until(lambda: Job.objects.get(pk=job.pk).is_finished, timeout=120, what="the primes job")

    job.refresh_from_db()
    assert job.status == "succeeded", job.error + example_worker.log()
    assert job.result == {"below": 1000, "count": 168}
    counted = [e.payload for e in JobEvent.objects.filter(job=job, kind="counted").order_by("seq")]
    assert counted == [{"up_to": 250, "count": 53}, {"up_to": 500, "count": 95}, {"up_to": 750, "count": 132},
                       {"up_to": 1000, "count": 168}]
    assert job.progress == 1.0

    # The form and the API come from the declaration: its fields, and a bad value named by its field.
    client.force_login(owner)
    form = client.get("/jobs/new/primes/")
    assert form.status_code == 200 and 'name="below"' in form.content.decode() and 'name="chunks"' in form.content.decode()
    refused = client.post("/api/jobs/", {"kind": "primes", "params": {"below": 1}}, content_type="application/json")
    assert refused.status_code == 400 and "below" in refused.json()["errors"]
    assert Job.objects.filter(kind="primes").count() == 1
    # The generated OpenAPI schema lists it, and the client's `terrain run primes` takes its options from there.
    monkeypatch.syspath_prepend(str(stack.ROOT / "client"))  # the client as `pip install ./client` gives it
    from terrain import cli

    params = cli.params_schema(client.get("/api/schema/").json(), "primes")
    assert params["properties"]["below"]["minimum"] == 2 and params["properties"]["below"]["maximum"] == 10_000_000
    parser = argparse.ArgumentParser()
    cli.add_options(parser, params)
    assert vars(parser.parse_args(["--below", "500"])) == {"below": 500}  # the server fills in the defaults

    # The renderer draws the stored events, in a real browser.
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    events = [{"seq": e.seq, "kind": e.kind, "payload": e.payload} for e in JobEvent.objects.filter(job=job).order_by("seq")]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content('<div id="result"></div>')
        page.add_script_tag(content=example_app["script"])
        text = page.evaluate("""events => {
            const view = window.TerrainRenderers.primes(document.getElementById("result"));
            view.update(events);
            return document.querySelector("#result .primes-count").textContent;
        }""", events)
        browser.close()
    assert text == "168 primes below 1000"
    assert example_app["kind"].page_scripts() == ["js/live.js", "js/primes_renderer.js", "js/result_page.js"]
