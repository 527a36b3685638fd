"""A handle on a server-side job: follow it live, get its numbers, open its permalink."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO
from urllib.parse import urlsplit

from terrain.errors import JobFailed, TerrainError
from terrain.session import Session, current

FINISHED = ("succeeded", "failed", "cancelled")


class ProgressBar:
    """A one-line terminal bar: `[#######.............]  35% Loss plane, pca axes (running)`."""

    def __init__(self, title: str, stream: TextIO | None = None, width: int = 30):
        self.title, self.stream, self.width = title, stream or sys.stderr, width
        self._last = None

    def update(self, progress: float, status: str) -> None:
        filled = int(round(max(0.0, min(1.0, progress)) * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {progress * 100:3.0f}% {self.title} ({status})"
        if line != self._last:
            end = "\n" if status in FINISHED else ""
            self.stream.write("\r" + line + end)
            self.stream.flush()
            self._last = line


class Job:
    def __init__(self, state: dict, session: Session | None = None):
        self.session = session or current()
        self._state = state
        self.slug: str = state["slug"]
        self.kind: str = state.get("kind", "")
        self.events: list[dict] = []

    def __repr__(self) -> str:
        return f"<terrain.Job {self.kind} {self.slug} {self.status} {self.progress:.0%}>"

    @property
    def url(self) -> str:
        """The permalink of the result page."""
        return self._state.get("url") or f"{self.session.url}/r/{self.slug}/"

    @property
    def status(self) -> str:
        return self._state.get("status", "queued")

    @property
    def progress(self) -> float:
        return float(self._state.get("progress") or 0.0)

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def refresh(self) -> "Job":
        self._state.update(self.session.get(f"/api/jobs/{self.slug}/"))
        return self

    def wait(self, *, progress: bool = True, timeout: float | None = None, stream: TextIO | None = None) -> "Job":
        """Follow the job over its websocket until it ends (reconnecting after `seq` if the socket drops;
        polling the HTTP API if websockets are unavailable). Draws a progress bar unless progress=False."""
        bar = ProgressBar(self._state.get("title") or self.kind, stream) if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        last_seq = 0
        failures = 0
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.slug} still {self.status} after {timeout} s")
            try:
                if failures % 4 == 3:  # every fourth try, ask over HTTP: works where websockets are blocked
                    self.refresh()
                    if bar:
                        bar.update(self.progress, self.status)
                    time.sleep(1.0 if not self.done else 0)
                else:
                    last_seq = self._follow(last_seq, bar, deadline)
                failures = 0
            except TerrainError as exc:
                if exc.status is not None and exc.status < 500 and exc.status != 429:
                    raise  # unknown job, bad token: waiting longer will not help
                failures += 1
                time.sleep(min(5.0, 0.25 * 2**failures))
            except Exception:  # a dropped socket or a restarting server: reconnect after the last seq seen
                failures += 1
                time.sleep(min(5.0, 0.25 * 2**failures))
        self.refresh()
        if bar:
            bar.update(self.progress if self.status != "succeeded" else 1.0, self.status)
        return self

    def _follow(self, after: int, bar: ProgressBar | None, deadline: float | None) -> int:
        from websockets.sync.client import connect

        parts = urlsplit(self.session.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        url = f"{self.session.ws_url}/ws/jobs/{self.slug}/?after={after}"
        with connect(url, additional_headers={"Authorization": f"Bearer {self.session.token}"}, origin=origin,
                     open_timeout=30, max_size=None) as socket:
            while True:
                remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
                message = json.loads(socket.recv(timeout=remaining))
                if message.get("type") == "snapshot":
                    self._state.update(message["job"])
                    fresh = [e for e in message.get("events", []) if e["seq"] > after]
                else:
                    fresh = [message] if message.get("seq", 0) > after else []
                    for key in ("status", "progress"):
                        if message.get(key) is not None:
                            self._state[key] = message[key]
                for event in fresh:
                    self.events.append({k: event[k] for k in ("seq", "kind", "payload") if k in event})
                    after = max(after, event["seq"])
                    if event.get("kind") == "status":
                        self._state["status"] = event["payload"].get("status", self.status)
                if bar:
                    bar.update(self.progress, self.status)
                if self.done:
                    return after

    def result(self, *, wait: bool = True, progress: bool = False) -> dict[str, Any]:
        """The job's result with its numeric lists as numpy arrays (None -> NaN); waits for the job unless wait=False."""
        if wait and not self.done:
            self.wait(progress=progress)
        self.refresh()
        if self.status != "succeeded":
            raise JobFailed(f"job {self.slug} {self.status}: {self._state.get('error') or 'no result'}")
        return to_numpy(self._state.get("result") or {})

    def figure(self):
        """The Plotly figure of the result (the same view as the result page)."""
        from terrain.figures import figure_of

        return figure_of(self.kind, self.result(), title=self._state.get("title", ""))

    def show(self):
        """Draw the result inline in Jupyter (or in a browser from a script); returns the figure."""
        fig = self.figure()
        fig.show()
        return fig


def _numeric(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _rectangular(value) -> bool:
    if not isinstance(value, list) or not value:
        return False
    if all(_numeric(v) for v in value):
        return any(v is not None for v in value)
    if all(isinstance(v, list) for v in value):
        return len({len(v) for v in value}) == 1 and all(_rectangular(v) for v in value)
    return False


def to_numpy(value):
    """Numeric lists (and lists of lists of one length) become float arrays; everything else stays a plain type."""
    import numpy as np

    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    if _rectangular(value):
        return np.array(_nan(value), dtype=float)
    if isinstance(value, list):
        return [to_numpy(item) for item in value]
    return value


def _nan(value):
    if isinstance(value, list):
        return [_nan(v) for v in value]
    return float("nan") if value is None else value


def submit(kind: str, *, session: Session | None = None, **params: Any) -> Job:
    """Start any job kind with the web form's parameters (GET /api/kinds/ lists them)."""
    session = session or current()
    body: dict[str, Any] = {"kind": kind, "params": params}
    for key in ("visibility", "experiment"):
        if key in params:
            body[key] = params.pop(key)
    return Job(session.post("/api/jobs/", json=body), session)
