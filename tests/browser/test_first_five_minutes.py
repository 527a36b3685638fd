"""A new user's first five minutes, for real: clone the repository into a folder with nothing
beside it (no ../shared), start the quick start as README says (`python3 dev.py up` runs
`python -m webapp.launcher`: embedded Redis, SQLite, demo content, a real Celery worker and
daphne), run its smoke check, then find a finished result of every showcased kind through
the JSON API and see each drawn in headless Chromium: the home page and every showcase
result, no empty plot, no script error. The screenshots README shows are taken here
(`TERRAIN_SCREENSHOTS=docs/screenshots` writes them into the repository)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.stack import terminate
from webapp.embedded_redis import free_port
from webapp.showcase.definitions import ENTRIES

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
QUICK_START_BUDGET = 600  # seconds until every showcase result is finished (README promises under 3 minutes idle)

# Every Plotly figure on the page has data with points in it.
FIGURES_DRAWN = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = plots.filter(p => (p.data || []).some(t => ['x', 'y', 'z', 'lat'].some(k => t[k] && t[k].length > 0)));
  return plots.length > 0 && drawn.length === plots.length;
}"""


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("first-five-minutes")
    lonely = tmp / "lonely"
    lonely.mkdir()
    clone = lonely / "terrain"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    assert sorted(p.name for p in lonely.iterdir()) == ["terrain"]
    port, redis_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "TERRAIN_HF_LINEAGE_DIR", "DJANGO_SETTINGS_MODULE")}
    env.update(TERRAIN_VAR_DIR=str(tmp / "var"), TERRAIN_PORT=str(port), TERRAIN_EMBEDDED_REDIS_PORT=str(redis_port))
    log = open(tmp / "quick-start.log", "wb")
    # The clone's own code, run by this environment's interpreter (the packages dev.py installs).
    process = subprocess.Popen([sys.executable, "-m", "webapp.launcher"], cwd=clone, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    server = {"base": base, "clone": clone, "log": tmp / "quick-start.log", "started": time.monotonic(),
              "env": {**env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}}
    try:
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        terminate(process, timeout=30)


def _log(server) -> str:
    return server["log"].read_text(errors="replace")[-6000:]


def _showcase(server) -> list[dict]:
    with urllib.request.urlopen(server["base"] + "/api/showcase/", timeout=10) as response:
        return json.load(response)["showcase"]


def _wait_until_finished(server) -> list[dict]:
    deadline = server["started"] + QUICK_START_BUDGET
    while time.monotonic() < deadline:
        try:
            entries = _showcase(server)
        except OSError:
            entries = []  # still starting
        if entries and all(e["status"] not in ("queued", "running") for e in entries):
            return entries
        time.sleep(2)
    raise AssertionError(f"the showcase did not finish within {QUICK_START_BUDGET}s:\n{_log(server)}")


def test_quick_start_smoke_check_passes_in_a_fresh_clone(quick_start):
    _wait_until_finished(quick_start)
    result = subprocess.run([sys.executable, "manage.py", "smoke_check", "--base-url", quick_start["base"]],
                            cwd=quick_start["clone"], env=quick_start["env"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr + _log(quick_start)


def test_every_showcased_kind_has_a_finished_result(quick_start):
    entries = _wait_until_finished(quick_start)
    assert {e["key"] for e in entries} == {entry.key for entry in ENTRIES}
    assert [e["key"] for e in entries if e["status"] != "succeeded"] == [], entries


def test_home_and_every_result_draw_without_errors(quick_start, browser):
    entries = _wait_until_finished(quick_start)
    shots = Path(os.environ.get("TERRAIN_SCREENSHOTS") or quick_start["log"].parent / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=quick_start["base"], viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto("/")
        for entry in ENTRIES:
            assert page.locator(f'li[data-key="{entry.key}"]').count() == 1
        pictures = page.locator("iframe.picture")
        assert pictures.count() >= 2
        for k in range(pictures.count()):
            pictures.nth(k).scroll_into_view_if_needed()
            frame = pictures.nth(k).element_handle().content_frame()
            frame.wait_for_function(FIGURES_DRAWN, timeout=30_000)
        page.screenshot(path=str(shots / "home.png"), full_page=False)
        for entry in entries:
            page.goto(entry["url"])
            page.wait_for_function(FIGURES_DRAWN, timeout=30_000)
            page.screenshot(path=str(shots / f"{entry['key']}.png"), full_page=False)
        assert errors == []
    finally:
        context.close()
