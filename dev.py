#!/usr/bin/env python3
"""Terrain's two commands.  Needs only Python 3.11+ on the machine.

    python3 dev.py up     install into .venv, then run the app with demo content at http://127.0.0.1:8000
    python3 dev.py test   install into .venv (and Debian's chromium and docker-compose if missing), then run the whole test suite

Anything after `test` goes to pytest (e.g. `python3 dev.py test tests/analysis -x`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


def say(message: str) -> None:
    print(f"[terrain] {message}", flush=True)


def ensure_venv() -> None:
    if not PYTHON.exists():
        say(f"creating a virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    say("installing the pinned dependencies (first run takes a few minutes)")
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(wanted)


def ensure_debian_packages() -> None:
    """Browser tests drive Debian's chromium; the deployment tests validate the compose files
    with Debian's docker-compose. Install whichever is missing."""
    needed = {"chromium": "/usr/bin/chromium", "docker-compose": "/usr/bin/docker-compose"}
    missing = [package for package, path in needed.items() if not Path(path).exists()]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None:
        say(f"WARNING: {', '.join(missing)} missing and apt-get is unavailable; the tests that need them will fail or skip")
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    say(f"installing Debian's {' and '.join(missing)} for the tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, apt, "-qq", "update"], check=True, env=env)
    subprocess.run([*sudo, apt, "-qq", "install", "-y", "--no-install-recommends", *missing], check=True, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "test"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    os.chdir(ROOT)
    if command == "up":
        os.execv(str(PYTHON), [str(PYTHON), "-m", "webapp.launcher", *rest])
    ensure_debian_packages()
    os.execv(str(PYTHON), [str(PYTHON), "-m", "pytest", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
