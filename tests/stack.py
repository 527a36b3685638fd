"""Real processes for integration and browser tests: a Celery worker and daphne,
pointed at the test database and the session's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from webapp.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = f"{auth}@" if auth else ""
    return f"postgres://{host}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_env(**extra) -> dict:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "PYTHONUNBUFFERED": "1"}
    env.update({key: str(value) for key, value in extra.items()})
    return env


def terminate(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until(predicate, timeout: float, what: str, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def kill_hard(worker: "Worker") -> None:
    """SIGKILL a worker and its pool children at once: no goodbye, no task handed back."""
    import psutil

    main = psutil.Process(worker.process.pid)
    for process in [main, *main.children(recursive=True)]:
        os.kill(process.pid, 9)
    worker.process.wait()
    # Its "I have N processes" announcement would count for a while yet (until it expires):
    # later tests must not fan planes out to a worker that is gone.
    from webapp.jobs import workers

    client = workers._redis()
    keys = list(client.scan_iter(match=f"terrain:worker:{worker.name}@*"))
    if keys:
        client.delete(*keys)


def pool_pids(worker: "Worker") -> set[str]:
    import psutil

    return {str(p.pid) for p in psutil.Process(worker.process.pid).children(recursive=True)}


@dataclass
class Worker:
    name: str
    queues: str = "cpu,gpu"
    concurrency: int = 1
    # Its own session, as a separate service would be: with the kernel's autogroup
    # scheduling, processes of one session share one session's CPU share.
    own_session: bool = False
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    env: dict = field(default_factory=dict)  # extra environment (e.g. object-storage settings)
    cwd: Path | None = None  # another working directory plays "another machine"

    def start(self, log_dir: Path) -> "Worker":
        self.log_path = log_dir / f"worker-{self.name}.log"
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", self.queues, "--pool", "prefork",
             "--concurrency", str(self.concurrency), "-n", f"{self.name}@%h", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=self.cwd or ROOT, env=process_env(TERRAIN_WORKER_CONCURRENCY=self.concurrency, **self._pythonpath(), **self.env),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=self.own_session,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready after {timeout}s:\n{self.log()}")

    def _pythonpath(self) -> dict:
        # Run from elsewhere, the code is found the way an installed copy on another host would be.
        return {"PYTHONPATH": str(ROOT)} if self.cwd else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path and self.log_path.exists() else ""

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class WebServer:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> "WebServer":
        self.log_path = log_dir / "daphne.log"
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "webapp.asgi:application"],
            cwd=ROOT, env=process_env(), stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("daphne exited:\n" + self.log_path.read_text(errors="replace"))
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("daphne did not start")

    def stop(self) -> None:
        terminate(self.process)
