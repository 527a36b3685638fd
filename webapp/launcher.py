"""`python -m webapp.launcher`: the whole app on the embedded default, in one process tree.

Starts the embedded Redis (unless REDIS_URL is set), migrates, publishes the demo
content, then runs a real Celery worker and the ASGI server (daphne) beside it
until Ctrl-C.  `--smoke` instead runs one job end to end through them and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _run(args: list[str], env: dict) -> None:
    subprocess.run([sys.executable, *args], cwd=BASE_DIR, env=env, check=True)


def _wait_for_http(url: str, timeout: float, process: subprocess.Popen) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the web server exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("TERRAIN_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("TERRAIN_PORT", "8000")))
    parser.add_argument("--no-demo", action="store_true", help="skip the demo content")
    parser.add_argument("--smoke", action="store_true", help="start everything, run one job end to end, stop")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    var_dir = Path(env.get("TERRAIN_VAR_DIR", BASE_DIR / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)

    redis_server = None
    if "REDIS_URL" not in env:
        from webapp.embedded_redis import EmbeddedRedis

        redis_server = EmbeddedRedis(var_dir / "redis", port=int(env.get("TERRAIN_EMBEDDED_REDIS_PORT", "6390"))).start()
        env["REDIS_URL"] = redis_server.url
        print(f"[terrain] embedded Redis at {redis_server.url}", flush=True)

    children: list[subprocess.Popen] = []

    def stop_all(*_):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis_server is not None:
            redis_server.stop()

    try:
        _run(["manage.py", "migrate", "--noinput", "-v", "0"], env)
        if not args.no_demo:
            _run(["manage.py", "seed_demo", "--dev-accounts"], env)
        concurrency = env.get("TERRAIN_WORKER_CONCURRENCY", "2")
        queues = "cpu,gpu" if env.get("TERRAIN_GPU_WORKER") == "1" else "cpu"
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", queues,
                 "--concurrency", concurrency, "--loglevel", "INFO", "-n", "terrain-local@%h"],
                cwd=BASE_DIR, env=env,
            )
        )
        web = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", args.host, "-p", str(args.port), "webapp.asgi:application"],
            cwd=BASE_DIR, env=env,
        )
        children.append(web)
        base_url = f"http://{args.host}:{args.port}"
        _wait_for_http(base_url + "/", 60, web)
        print(f"\n[terrain] Terrain is running at {base_url}/  (demo login: demo / terrain-demo)  Ctrl-C stops it.\n", flush=True)
        if args.smoke:
            _run(["manage.py", "smoke_check", "--base-url", base_url], env)
            print("[terrain] smoke check passed", flush=True)
            return 0
        # Ctrl-C and SIGTERM both stop the whole tree (a background shell ignores SIGINT otherwise).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(child.poll() is None for child in children):
            time.sleep(1)
        print("[terrain] a process exited; stopping the rest", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"[terrain] {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
