"""One model per (cell, seed): :func:`train_run` and its :class:`RunResult`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from .. import curvature, sharpness as _sharpness
from .. import train as _train
from ..json_safe import finite_or_none
from . import tasks as _tasks
from .rules import first_step_reaching
from .sweep import RunConfig

__all__ = ["RunResult", "train_run", "run_data", "ACCURACY_THRESHOLD", "HESSIAN_LANCZOS_ITERS", "HESSIAN_TRACE_MATVECS"]

ACCURACY_THRESHOLD = 0.9  # steps_to_train_90 / steps_to_test_90
HESSIAN_LANCZOS_ITERS = 20  # Hessian-vector products for the top eigenvalue
HESSIAN_TRACE_MATVECS = 30  # Hessian-vector products for the Hutch++ trace
SHARPNESS_MEASUREMENTS = 50  # at most ~this many sharpness measurements per run...
SHARPNESS_MIN_EVERY = 10  # ...and at most one every this many steps (sweep runs are short and often full-batch)


@dataclass
class RunResult:
    """Curves, final metrics and (in memory only) the final weights of one run.

    ``steps_to_train_90`` / ``steps_to_test_90``: first evaluated step with
    train / test accuracy >= 0.9, ``None`` if never within the budget.
    ``hessian``: ``analysis.curvature_results.HessianSpectrum`` as a dict
    (top eigenvalue and trace) or ``None``.  ``sharpness``: the
    :func:`analysis.sharpness.summarize` metrics plus the measured curve
    ``{"step": [...], "sharpness": [...], "preconditioned_sharpness": [...]}``
    under ``"curve"``, or ``None``.  ``state`` (the final state
    dict, CPU tensors) is needed for between-seed metrics; it is not part of
    :meth:`to_dict` -- persist it separately (e.g. as safetensors).
    """

    config: RunConfig
    spec: dict
    steps: list[int]
    epochs: list[float]
    train_loss: list[float | None]
    train_accuracy: list[float | None]
    test_loss: list[float | None]
    test_accuracy: list[float | None]
    total_steps: int
    final: dict
    steps_to_train_90: int | None
    steps_to_test_90: int | None
    hessian: dict | None = None
    seconds: float = 0.0
    sharpness: dict | None = None
    state: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def curves(self) -> dict:
        return {
            "step": list(self.steps),
            "epoch": list(self.epochs),
            "train_loss": list(self.train_loss),
            "train_accuracy": list(self.train_accuracy),
            "test_loss": list(self.test_loss),
            "test_accuracy": list(self.test_accuracy),
        }

    def to_dict(self, *, curves: bool = True) -> dict:
        out = {
            "config": self.config.to_dict(),
            "key": self.config.key,
            "spec": self.spec,
            "total_steps": self.total_steps,
            "final": {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in self.final.items()},
            "steps_to_train_90": self.steps_to_train_90,
            "steps_to_test_90": self.steps_to_test_90,
            "hessian": None if self.hessian is None else {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in self.hessian.items()},
            "seconds": self.seconds,
            "sharpness": self.sharpness,
        }
        if curves:
            out["curves"] = {k: [(finite_or_none(v) if k not in ("step",) else v) for v in vals] for k, vals in self.curves.items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping, state: Mapping[str, torch.Tensor] | None = None) -> "RunResult":
        c = d.get("curves") or {}
        return cls(
            config=RunConfig.from_dict(d["config"]),
            spec=dict(d["spec"]),
            steps=list(c.get("step", [])),
            epochs=list(c.get("epoch", [])),
            train_loss=list(c.get("train_loss", [])),
            train_accuracy=list(c.get("train_accuracy", [])),
            test_loss=list(c.get("test_loss", [])),
            test_accuracy=list(c.get("test_accuracy", [])),
            total_steps=int(d["total_steps"]),
            final=dict(d["final"]),
            steps_to_train_90=d.get("steps_to_train_90"),
            steps_to_test_90=d.get("steps_to_test_90"),
            hessian=d.get("hessian"),
            seconds=float(d.get("seconds", 0.0)),
            sharpness=d.get("sharpness"),
            state=dict(state) if state is not None else None,
        )


def run_data(config: RunConfig) -> _tasks.TaskData:
    """The (cached) train/test data of a run."""
    hp = config.hyperparams
    return _tasks.task_data(
        config.task,
        config.task_options,
        data_fraction=hp["data_fraction"],
        label_noise=hp["label_noise"],
        data_seed=config.data_seed,
    )


def _hessian_metrics(model, train_data, seed: int, lanczos_iters: int, trace_matvecs: int) -> dict:
    """The top eigenvalue and the trace, in the one Hessian shape (analysis.curvature_results.HessianSpectrum)."""
    from analysis.curvature_results import Eigenvalues, HessianSpectrum, Trace

    op = curvature.HessianOperator(model, None, train_data)
    try:
        eig = curvature.lanczos(op, 1, max_iters=lanczos_iters, tol=1e-3, seed=seed)
        tr = curvature.hutchpp(op, trace_matvecs, seed=seed)
        loss = finite_or_none(op.loss())
    finally:
        op.release()
    return HessianSpectrum(num_parameters=op.size, loss=loss, eigenvalues=Eigenvalues.of(eig), trace=Trace.of(tr),
                           num_matvecs=op.num_matvecs).model_dump()


def _sharpness_tracker(config: RunConfig, train_data, batch_size: int) -> _sharpness.SharpnessTracker:
    hp = config.hyperparams
    return _sharpness.SharpnessTracker(
        train_data,
        lr=float(hp["lr"]),
        optimizer=hp.get("optimizer", "adamw"),
        momentum=float(hp.get("momentum", 0.9)),
        every=max(SHARPNESS_MIN_EVERY, math.ceil(config.steps / SHARPNESS_MEASUREMENTS)),
        # the run's own batch when it is full-batch GD (where the edge of stability is defined), else the default
        batch_size=_sharpness.DEFAULT_BATCH_SIZE if batch_size < train_data[0].shape[0] else None,
        seed=int(config.seed),
        final_step=config.steps,
    )


def _sharpness_result(tracker: _sharpness.SharpnessTracker) -> dict:
    records = tracker.records
    curve = {key: [r[key] for r in records] for key in ("step", "sharpness", "preconditioned_sharpness")}
    return {**tracker.summary(), "curve": curve}


def train_run(
    config: RunConfig,
    *,
    on_progress: Callable[[dict], Any] | None = None,
    device: str | torch.device | None = None,
    hessian: bool | None = None,
    hessian_lanczos_iters: int = HESSIAN_LANCZOS_ITERS,
    hessian_trace_matvecs: int = HESSIAN_TRACE_MATVECS,
) -> RunResult:
    """Train the model of one (cell, seed) and measure it.

    Data from :func:`run_data` (same examples and labels for every seed of a
    cell), model ``analysis.phases.tasks.model_spec(task, options, width)``,
    training with :func:`analysis.train.train` (initialisation and batch
    order from ``config.seed``), evaluated every ``config.eval_every`` steps
    and at the last step.  Deterministic: the same config gives the same
    result on the same machine and torch build.

    ``on_progress`` receives ``analysis.train``'s ``{"type": "metrics", ...}``
    events with ``"run"`` (the config key), ``"i"``, ``"j"`` and ``"seed"``
    added; an exception raised by it cancels the run.  ``hessian`` (default
    ``config.hessian``) adds the top Hessian eigenvalue (Lanczos,
    ``hessian_lanczos_iters`` products) and trace (Hutch++,
    ``hessian_trace_matvecs`` products) of the final training loss.
    ``config.sharpness`` tracks the top Hessian eigenvalue during training
    (:class:`analysis.sharpness.SharpnessTracker`, about
    ``SHARPNESS_MEASUREMENTS`` measurements but at most one every
    ``SHARPNESS_MIN_EVERY`` steps, on the run's full batch when it
    trains full-batch, else on a fixed batch of 256).
    """
    t0 = time.perf_counter()
    hp = config.hyperparams
    td = run_data(config)
    spec = _tasks.model_spec(config.task, config.task_options, hp["width"])
    batch_size = td.num_train if hp.get("batch_size") is None else int(hp["batch_size"])
    tracker = _sharpness_tracker(config, td.train, batch_size) if config.sharpness else None

    def progress(event: dict) -> None:
        if on_progress is not None:
            on_progress({**event, "run": config.key, "i": config.i, "j": config.j, "seed": config.seed})

    res = _train.train(
        spec,
        td.train,
        test_data=td.test,
        optimizer=hp.get("optimizer", "adamw"),
        lr=float(hp["lr"]),
        momentum=float(hp.get("momentum", 0.9)),
        weight_decay=float(hp["weight_decay"]),
        batch_size=batch_size,
        steps=int(hp["steps"]),
        seed=int(config.seed),
        eval_every=int(config.eval_every),
        snapshot_every=None,
        label_noise=0.0,  # applied to the data with data_seed, shared by the cell's seeds
        on_progress=progress if on_progress is not None else None,
        device=device,
        on_step=tracker,
    )
    h = res.history
    steps = [int(r["step"]) for r in h]
    train_acc = [r["train_accuracy"] for r in h]
    test_acc = [r["test_accuracy"] for r in h]
    state = {k: v.detach().cpu() for k, v in res.final_state.items()}
    params = dict(res.model.named_parameters())
    weight_norm = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params.values()))
    last = h[-1]
    final = {
        "train_loss": last["train_loss"],
        "train_accuracy": last["train_accuracy"],
        "test_loss": last["test_loss"],
        "test_accuracy": last["test_accuracy"],
        "generalization_gap": (
            last["train_accuracy"] - last["test_accuracy"]
            if last["train_accuracy"] is not None and last["test_accuracy"] is not None
            else None
        ),
        "weight_norm": weight_norm,
        "num_parameters": int(sum(p.numel() for p in params.values())),
        "num_train": td.num_train,
        "batch_size": min(batch_size, td.num_train),
    }
    want_hessian = config.hessian if hessian is None else hessian
    hess = None
    if want_hessian:
        if math.isfinite(last["train_loss"]):
            hess = _hessian_metrics(res.model, td.train, config.seed, hessian_lanczos_iters, hessian_trace_matvecs)
        else:
            hess = None  # no curvature at a diverged point: its metrics are missing, as for a run without them
    return RunResult(
        config=config,
        spec=res.spec,
        steps=steps,
        epochs=[float(r["epoch"]) for r in h],
        train_loss=[r["train_loss"] for r in h],
        train_accuracy=train_acc,
        test_loss=[r["test_loss"] for r in h],
        test_accuracy=test_acc,
        total_steps=int(res.total_steps),
        final=final,
        steps_to_train_90=first_step_reaching(steps, train_acc, ACCURACY_THRESHOLD),
        steps_to_test_90=first_step_reaching(steps, test_acc, ACCURACY_THRESHOLD),
        hessian=hess,
        seconds=time.perf_counter() - t0,
        sharpness=_sharpness_result(tracker) if tracker is not None else None,
        state=state,
    )
