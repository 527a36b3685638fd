"""Training a model as a job: analysis.train does the work, the catalog keeps the result."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from webapp.catalog.models import Experiment
from webapp.catalog.services import checkpoint_create_from_file, experiment_sandbox_for
from webapp.jobs.context import JobContext

# Fewer points than this would make a jagged live chart; more would flood the socket.
METRIC_EVENTS_PER_RUN = 100


def training_spec(params: dict, num_features: int, num_classes: int) -> dict:
    return {
        "kind": "mlp",
        "in": num_features,
        "hidden": list(params["hidden"]),
        "out": num_classes,
        "batchnorm": bool(params.get("batchnorm", False)),
    }


def threshold_label(params: dict) -> str:
    """How the stability threshold of these optimizer settings reads on the chart."""
    if params["optimizer"] != "sgd":
        return "38/η (Adam, β₁=0.9: (2+2β₁)/((1−β₁)η))"
    momentum = params.get("momentum") or 0.0
    return "2/η" if momentum == 0 else f"(2+2β)/η, β={momentum:g}"


def sharpness_tracker(params: dict, train_data, total_steps: int, emit):
    """The tracker the job's parameters ask for, or None; each measurement goes to ``emit``."""
    from analysis import sharpness

    if not params.get("track_sharpness"):
        return None
    return sharpness.SharpnessTracker(
        train_data,
        lr=params["lr"],
        optimizer=params["optimizer"],
        momentum=params.get("momentum") or 0.0,
        every=params.get("sharpness_every") or sharpness.DEFAULT_EVERY,
        batch_size=params.get("sharpness_batch") or sharpness.DEFAULT_BATCH_SIZE,
        trace=bool(params.get("sharpness_trace")),
        seed=params["seed"],
        on_measure=emit,
        final_step=total_steps,
    )


def _sharpness_payload(record: dict) -> dict:
    keys = ("step", "sharpness", "threshold", "preconditioned_sharpness", "trace", "trace_stderr", "matvecs", "converged")
    return {key: record.get(key) for key in keys}


def _metrics_payload(event: dict) -> dict:
    keys = ("step", "epoch", "total_steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
    return {key: event.get(key) for key in keys}


def training_run(ctx: JobContext) -> dict:
    """Train the model the job describes, stream its metrics, save it into the catalog."""
    from analysis import checkpoints, data, train, training_path

    params = ctx.params
    X_train, y_train = data.load(params["dataset"], "train")
    X_test, y_test = data.load(params["dataset"], "test")
    num_classes = int(max(int(y_train.max()), int(y_test.max())) + 1)
    spec = training_spec(params, num_features=int(X_train.shape[1]), num_classes=num_classes)

    steps_per_epoch = math.ceil(len(X_train) / params["batch_size"])
    total_steps = steps_per_epoch * params["epochs"]
    tracker = sharpness_tracker(params, (X_train, y_train), total_steps, lambda record: ctx.emit("sharpness", _sharpness_payload(record)))
    started = {"spec": spec, "total_steps": total_steps, "train_size": len(X_train), "test_size": len(X_test)}
    if tracker is not None:
        started["sharpness"] = {
            "threshold": tracker.threshold,
            "threshold_label": threshold_label(params),
            "tracked": tracker.tracked_key,
            "every": tracker.every,
            "batch_size": len(tracker.batch[0]),
        }
    ctx.emit("started", started)

    def on_progress(event: dict) -> None:
        if event.get("type") == "metrics":
            # The last 5% of progress is saving into the catalog.
            ctx.emit("metrics", _metrics_payload(event), progress=0.95 * float(event.get("fraction", 0.0)))

    result = train.train(
        spec,
        (X_train, y_train),
        test_data=(X_test, y_test),
        optimizer=params["optimizer"],
        lr=params["lr"],
        momentum=params["momentum"],
        weight_decay=params["weight_decay"],
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        seed=params["seed"],
        eval_every=max(1, total_steps // METRIC_EVENTS_PER_RUN),
        snapshot_every=max(1, total_steps // max(1, params["snapshots"] - 1)),
        on_progress=on_progress,
        device=ctx.device,
        on_step=tracker,
    )
    ctx.raise_if_cancelled(force=True)
    sharpness_summary = None
    if tracker is not None:
        sharpness_summary = tracker.summary()
        ctx.emit("sharpness_summary", sharpness_summary)
    path = training_path.path_versus_line(result.model, result.states, result.steps, (X_train, y_train))
    ctx.emit("path", path)

    final = _metrics_payload(result.history[-1]) if result.history else {}
    name = params.get("name") or f"{params['dataset']}-mlp-{'x'.join(map(str, params['hidden']))}-seed{params['seed']}"
    meta = {"dataset": params["dataset"], "train_params": params, "final_metrics": final, "job": ctx.job.slug}
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.safetensors"
        trajectory_path = Path(tmp) / "trajectory.safetensors"
        checkpoints.save(model_path, result.model, spec, meta=meta)
        steps = [step for step, _ in result.snapshots]
        checkpoints.save_trajectory(trajectory_path, [state for _, state in result.snapshots], steps, spec, meta=meta)
        experiment = ctx.job.experiment or _experiment_for(ctx)
        checkpoint = checkpoint_create_from_file(
            experiment=experiment,
            name=name,
            path=model_path,
            trajectory_path=trajectory_path,
            spec=spec,
            dataset=params["dataset"],
            metrics=final,
            num_parameters=sum(p.numel() for p in result.model.parameters()),
            created_by_job=ctx.job,
        )
    ctx.emit(
        "checkpoint",
        {"slug": checkpoint.slug, "name": checkpoint.name, "url": checkpoint.get_absolute_url(), "snapshots": len(steps)},
        progress=1.0,
    )
    return {
        "checkpoint": checkpoint.slug,
        "checkpoint_name": checkpoint.name,
        "final": final,
        "spec": spec,
        "sharpness": sharpness_summary,
        "history": [_metrics_payload(event) for event in result.history],
        "sharpness_history": [_sharpness_payload(record) for record in tracker.records] if tracker is not None else [],
    }


def _experiment_for(ctx: JobContext) -> Experiment:
    if ctx.job.owner is None:
        raise ValueError("a training job without an owner must name an experiment")
    experiment = experiment_sandbox_for(user=ctx.job.owner)
    ctx.job.experiment = experiment
    ctx.job.save(update_fields=["experiment"])
    return experiment
