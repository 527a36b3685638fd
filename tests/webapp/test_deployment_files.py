import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_healthchecks_and_one_image():
    services = compose()["services"]
    assert set(services) == {"web", "worker", "gpu-worker", "redis", "postgres"}
    for name, service in services.items():
        assert "healthcheck" in service, name
    app_images = {services[name]["image"].split(":")[0] for name in ("web", "worker", "gpu-worker")}
    assert app_images == {"terrain"}


def test_gpu_worker_is_one_solo_process_with_an_nvidia_reservation():
    gpu = compose()["services"]["gpu-worker"]
    assert "--pool solo" in gpu["command"] and "-Q gpu" in gpu["command"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert compose()["services"]["worker"]["command"].count("-Q cpu") == 1


@pytest.mark.skipif(not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose client here")
def test_compose_config_accepts_the_file():
    commands = [["docker", "compose", "config", "-q"], ["docker-compose", "config", "-q"]]
    results = [subprocess.run(c, cwd=ROOT, capture_output=True, text=True) for c in commands if shutil.which(c[0])]
    usable = [r for r in results if "unknown" not in r.stderr.lower() and "not found" not in r.stderr.lower()]
    if not usable:
        pytest.skip("no working compose client")
    assert all(r.returncode == 0 for r in usable), [r.stderr for r in usable]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 dev.py test" in readme and "python3 dev.py test" in ci
    assert "python3 dev.py up" in readme
