"""`terrain.Run`: log metrics and checkpoints from a training loop, then analyse the trajectory."""

from __future__ import annotations

import atexit
import sys
from typing import Any, Mapping

from terrain import checkpoints
from terrain.errors import ValidationError
from terrain.jobs import Job, submit
from terrain.session import Session, current
from terrain.uploader import Uploader

# Held strongly until finished: a run the script dropped must still be flushed at exit.
_open_runs: "set[Run]" = set()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(key: str, value: Any) -> float:
    """`value` (a number, or a one-element tensor or array) as a float; a ValidationError naming `key` otherwise."""
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: .item() of a tensor with several elements
        raise ValidationError(f"{key}: must be a number, got {_shown(value)}",
                              errors={key: [f"must be a number, got {_shown(value)}"]}) from None


def _step(step: Any) -> int:
    try:
        return int(step)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"step: must be an integer, got {_shown(step)}",
                              errors={"step": [f"must be an integer, got {_shown(step)}"]}) from None


class Run:
    """A run in an experiment (found by title or slug among yours, created if new).

    `log` and `log_checkpoint` return at once; a background thread uploads. Call
    `finish()` at the end (it also runs at interpreter exit) to wait until
    everything is stored.
    """

    def __init__(self, experiment: str = "", name: str = "", *, config: Mapping[str, Any] | None = None,
                 resume: str | None = None, session: Session | None = None, max_queue: int = 256, verbose: bool = False):
        """`resume=<run slug>` logs on into an existing run of yours (a script restarted from its own checkpoint)."""
        self.session = session or current()
        if resume:
            state = self.session.get(f"/api/runs/{resume}/")
        else:
            state = self.session.post("/api/runs/", json={"experiment": experiment, "name": name, "config": dict(config or {})})
        self.slug: str = state["slug"]
        self.name: str = state["name"]
        self.experiment: str = state["experiment"]
        self.url: str = state["url"]
        on_retry = (lambda message: print(f"terrain: {message}", file=sys.stderr)) if verbose else None
        self._uploader = Uploader(self.session, self.slug, max_queue=max_queue, on_retry=on_retry)
        self.finished = False
        _open_runs.add(self)

    def __repr__(self) -> str:
        return f"<terrain.Run {self.name!r} {self.url}>"

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.finish()

    @property
    def retries(self) -> int:
        """How many uploads had to be retried (after a dropped connection, a restart, a 429)."""
        return self._uploader.retries

    # ---------------------------------------------------------------- logging
    def log(self, step: int, **metrics: float) -> None:
        """Record metrics at `step` (numbers; NaN/Inf are sent as null)."""
        clean = {key: _number(key, value) for key, value in metrics.items()}
        self._uploader.put_metrics(_step(step), {key: v if v == v and abs(v) != float("inf") else None for key, v in clean.items()})

    def log_checkpoint(self, model, step: int, *, spec: dict | None = None, adapter: Mapping[str, Any] | None = None,
                       lora_config: dict | None = None, meta: dict | None = None) -> None:
        """Snapshot `model` now and upload it in the background (safetensors only).

        A Terrain spec model (from `analysis.zoo.build`, or any module with `spec=`), a Hugging
        Face model (`save_pretrained` key names and its config) or a LoRA adapter (a peft model,
        or `adapter=` tensors with `lora_config=`).
        """
        self._uploader.put_checkpoint(checkpoints.snapshot(model, step=int(step), spec=spec, adapter=adapter,
                                                           lora_config=lora_config, meta=meta))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged so far is on the server (raises UploadError naming what was not)."""
        self._uploader.flush(timeout)

    def finish(self, timeout: float | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        _open_runs.discard(self)
        try:
            self._uploader.close(timeout)
        finally:
            self.session.post(f"/api/runs/{self.slug}/finish/")

    # ---------------------------------------------------------------- server state
    def state(self) -> dict:
        return self.session.get(f"/api/runs/{self.slug}/")

    def checkpoints(self) -> list[dict]:
        return self.state()["checkpoints"]

    def metrics(self) -> list[dict]:
        return self.session.get(f"/api/runs/{self.slug}/metrics/")["rows"]

    def latest_checkpoint(self) -> str:
        terrain_checkpoints = [c["checkpoint"] for c in self.checkpoints() if c["checkpoint"]]
        if not terrain_checkpoints:
            raise LookupError(f"run {self.name!r} has no Terrain checkpoint yet")
        return terrain_checkpoints[-1]

    # ---------------------------------------------------------------- analyses (jobs on the server's workers)
    def _analysis(self, kind: str, params: dict) -> Job:
        if not self.finished:
            self.flush()
        return submit(kind, session=self.session, run=self.slug, **params)

    def landscape(self, *, mode: str = "plane", axes: str | None = None, **params: Any) -> Job:
        """A loss landscape around the latest checkpoint; by default the PCA plane of the logged trajectory
        (a line has no axes to choose: a random direction, or to `end_checkpoint=`)."""
        axes = axes or ("random" if mode == "line" else "pca")
        return self._analysis("landscape", {"mode": mode, "axes": axes, **params})

    def hessian(self, **params: Any) -> Job:
        return self._analysis("hessian", params)

    def connectivity(self, other: "Run | str", **params: Any) -> Job:
        """Mode connectivity between this run's latest checkpoint and `other` (a Run or a checkpoint slug)."""
        if isinstance(other, Run):
            if not other.finished:
                other.flush()
            checkpoint_b = other.latest_checkpoint()
        else:
            checkpoint_b = str(other)
        return self._analysis("connectivity", {"checkpoint_b": checkpoint_b, **params})


@atexit.register
def _finish_open_runs() -> None:
    """Nothing logged is lost when a script ends without run.finish()."""
    for run in list(_open_runs):
        if not run.finished:
            try:
                run.finish()
            except Exception as exc:  # at exit there is no caller left to raise to
                print(f"terrain: run {run.name!r} could not finish: {exc}", file=sys.stderr)
