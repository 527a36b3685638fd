import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


COMPOSE_FILES = ("docker-compose.yml", "docker-compose.workers.yml")


def compose(name="docker-compose.yml"):
    return yaml.safe_load((ROOT / name).read_text())


def test_compose_has_every_service_with_healthchecks_and_one_image():
    services = compose()["services"]
    assert set(services) == {"web", "worker", "gpu-worker", "redis", "postgres", "minio", "bucket"}
    for name, service in services.items():
        assert "healthcheck" in service or service.get("restart") == "no", name  # only the one-shot bucket maker has none
    app_images = {services[name]["image"].split(":")[0] for name in ("web", "worker", "gpu-worker")}
    assert app_images == {"terrain"}


def test_app_services_share_only_postgres_redis_and_the_object_store():
    services = compose()["services"]
    for name in ("web", "worker", "gpu-worker"):
        service = services[name]
        assert not service.get("volumes"), f"{name} must not depend on a shared disk"
        env = service["environment"]
        assert env["TERRAIN_S3_BUCKET"] and env["TERRAIN_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")


def test_workers_only_compose_runs_no_web_and_needs_the_shared_services_named():
    services = compose("docker-compose.workers.yml")["services"]
    assert set(services) == {"worker", "gpu-worker"}
    env = services["worker"]["environment"]
    for variable in ("DATABASE_URL", "REDIS_URL", "TERRAIN_S3_ENDPOINT_URL"):
        assert ":?" in env[variable], f"{variable} must be required, not defaulted to this host"


def test_gpu_worker_is_one_solo_process_with_an_nvidia_reservation():
    gpu = compose()["services"]["gpu-worker"]
    assert "--pool solo" in gpu["command"] and "-Q gpu" in gpu["command"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert compose()["services"]["worker"]["command"].count("-Q cpu") == 1


# dev.py test installs Debian's docker-compose where apt-get exists; elsewhere this says so and skips.
@pytest.mark.skipif(not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose client on this machine")
@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_config_accepts_the_file(name):
    import os

    env = {**os.environ, "DATABASE_URL": "postgres://t@db/t", "REDIS_URL": "redis://r:6379/0",
           "TERRAIN_S3_ENDPOINT_URL": "http://objects:9000", "TERRAIN_S3_ACCESS_KEY_ID": "k", "TERRAIN_S3_SECRET_ACCESS_KEY": "s"}
    commands = [["docker", "compose", "-f", name, "config", "-q"], ["docker-compose", "-f", name, "config", "-q"]]
    results = [subprocess.run(c, cwd=ROOT, capture_output=True, text=True, env=env) for c in commands if shutil.which(c[0])]
    usable = [r for r in results if "unknown" not in r.stderr.lower() and "not found" not in r.stderr.lower()]
    if not usable:
        pytest.skip("no working compose client on this machine (docker compose v2 or docker-compose)")
    assert all(r.returncode == 0 for r in usable), [r.stderr for r in usable]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 dev.py test" in readme and "python3 dev.py test" in ci
    assert "python3 dev.py up" in readme
