"""A new user's first five minutes: clone the repository into a folder with nothing beside it
(no ../shared), run the quick start in smoke mode on its embedded default (SQLite, embedded
Redis, a real worker, daphne), and find a finished result of every showcased kind through
the JSON API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webapp.embedded_redis import free_port
from webapp.showcase.definitions import ENTRIES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_quick_start_in_a_fresh_clone_finishes_every_showcase_result(tmp_path):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    clone = lonely / "terrain"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    assert sorted(p.name for p in lonely.iterdir()) == ["terrain"]

    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TERRAIN_VAR_DIR=str(tmp_path / "var"), TERRAIN_PORT=str(free_port()),
               TERRAIN_EMBEDDED_REDIS_PORT=str(free_port()))
    env.pop("TERRAIN_HF_LINEAGE_DIR", None)  # the clone's own data/, nothing from outside
    # The clone's own code, run by this environment's interpreter (the packages dev.py installs).
    result = subprocess.run([sys.executable, "-m", "webapp.launcher", "--smoke"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "smoke check passed" in output
    showcase = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("showcase: "))[len("showcase: "):])
    assert set(showcase) == {entry.key for entry in ENTRIES}  # every kind finished, as /api/showcase/ reported it
