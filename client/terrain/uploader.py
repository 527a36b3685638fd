"""The background uploader of a run: the training loop only enqueues.

Metrics and checkpoint snapshots go into a bounded queue (a full queue makes
`log` wait, so memory stays bounded when the server is slower than training).
One thread drains it: metric rows are batched into one request, each checkpoint
is written to a spool file and uploaded. A transport error, a 5xx or a 429 is
retried with exponential backoff (the server may be restarting: nothing is
dropped); the server makes retries harmless (metric steps merge, the same file
for the same step is acknowledged again). Other 4xx answers are permanent
failures, reported by `flush()`.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import httpx

from terrain import checkpoints
from terrain.errors import RateLimited, TerrainError, UploadError
from terrain.session import Session

MAX_BATCH_ROWS = 500
BACKOFF_START = 0.25
BACKOFF_MAX = 5.0


class Uploader:
    def __init__(self, session: Session, run_slug: str, *, max_queue: int = 256, give_up_after: float = 600.0,
                 on_retry: Callable[[str], None] | None = None):
        self.session = session
        self.run_slug = run_slug
        self.give_up_after = give_up_after
        self.on_retry = on_retry
        self.failures: list[str] = []  # everything lost, in order
        self._reported = 0  # how many of them flush() has raised already
        self.retries = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._spool = Path(tempfile.mkdtemp(prefix=f"terrain-{run_slug}-"))
        self._http = session.new_http_client()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"terrain-uploader-{run_slug}", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- producer side
    def put_metrics(self, step: int, metrics: dict) -> None:
        self._put(("metrics", {"step": step, "metrics": metrics}))

    def put_checkpoint(self, snap: checkpoints.Snapshot) -> None:
        self._put(("checkpoint", snap))

    def _put(self, item) -> None:
        if self._closed:
            raise TerrainError("this run is finished; start a new terrain.Run to log more")
        self._queue.put(item)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged so far is stored on the server; raise UploadError if some of it could not be."""
        done = threading.Event()
        self._queue.put(("flush", done))
        if not done.wait(timeout):
            raise TimeoutError(f"the uploader did not flush within {timeout} s ({self._queue.qsize()} items waiting)")
        # Only what no earlier flush() reported: an error the caller already handled is not raised again (by finish()).
        new = self.failures[self._reported:]
        self._reported = len(self.failures)
        if new:
            raise UploadError(f"{len(new)} logged item(s) were not stored: {new[0]}", new)

    def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._queue.put(("stop", None))
            self._thread.join(timeout=5)
            self._http.close()
            shutil.rmtree(self._spool, ignore_errors=True)

    # ---------------------------------------------------------------- consumer thread
    def _loop(self) -> None:
        pending = None
        while True:
            kind, payload = pending or self._queue.get()
            pending = None
            if kind == "stop":
                return
            try:
                if kind == "metrics":
                    rows = [payload]
                    while len(rows) < MAX_BATCH_ROWS:  # batch the rows already waiting
                        try:
                            nxt = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if nxt[0] != "metrics":
                            pending = nxt
                            break
                        rows.append(nxt[1])
                    self._send_metrics(rows)
                elif kind == "checkpoint":
                    self._send_checkpoint(payload)
                elif kind == "flush":
                    payload.set()
            except Exception as exc:  # never let the thread die: flush() must still return
                self.failures.append(f"{kind}: {type(exc).__name__}: {exc}")

    def _send_metrics(self, rows: list[dict]) -> None:
        self._deliver(f"metrics up to step {rows[-1]['step']}",
                      lambda: self.session.post(f"/api/runs/{self.run_slug}/metrics/", json={"rows": rows}, http=self._http))

    def _send_checkpoint(self, snap: checkpoints.Snapshot) -> None:
        path = self._spool / f"step-{snap.step}.safetensors"
        try:
            checkpoints.write(snap, path)
        except Exception as exc:  # a tensor safetensors cannot hold: report it, keep training
            self.failures.append(f"checkpoint of step {snap.step}: {exc}")
            return

        def upload():
            with open(path, "rb") as handle:
                files = {"file": (path.name, handle, "application/octet-stream")}
                return self.session.post(f"/api/runs/{self.run_slug}/checkpoints/", data={"step": str(snap.step)}, files=files,
                                         http=self._http)

        if self._deliver(f"checkpoint of step {snap.step}", upload):
            path.unlink(missing_ok=True)

    def _deliver(self, what: str, send: Callable[[], dict]) -> bool:
        deadline = time.monotonic() + self.give_up_after
        delay = BACKOFF_START
        while True:
            try:
                send()
                return True
            except (httpx.TransportError, RateLimited, TerrainError) as exc:
                status = getattr(exc, "status", None)
                transient = isinstance(exc, (httpx.TransportError, RateLimited)) or (status is not None and status >= 500)
                if not transient:
                    self.failures.append(f"{what}: {exc}")
                    return False
                if time.monotonic() > deadline:
                    self.failures.append(f"{what}: gave up after {self.give_up_after:.0f} s: {exc}")
                    return False
                self.retries += 1
                if self.on_retry:
                    self.on_retry(f"{what}: {type(exc).__name__}: {exc}; retrying in {delay:.2f} s")
                time.sleep(max(delay, getattr(exc, "retry_after", 0) if isinstance(exc, RateLimited) else 0))
                delay = min(BACKOFF_MAX, delay * 2)

