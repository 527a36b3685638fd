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


def _metrics_payload(event: dict) -> dict:
    keys = ("step", "epoch", "total_steps", "train_loss", "train_accuracy", "test_loss", "test_accuracy")
    return {key: event.get(key) for key in keys}


def training_run(ctx: JobContext) -> dict:
    """Train the model the job describes, stream its metrics, save it into the catalog."""
    from analysis import checkpoints, data, train

    params = ctx.params
    X_train, y_train = data.load(params["dataset"], "train")
    X_test, y_test = data.load(params["dataset"], "test")
    num_classes = int(max(int(y_train.max()), int(y_test.max())) + 1)
    spec = training_spec(params, num_features=int(X_train.shape[1]), num_classes=num_classes)

    steps_per_epoch = math.ceil(len(X_train) / params["batch_size"])
    total_steps = steps_per_epoch * params["epochs"]
    ctx.emit("started", {"spec": spec, "total_steps": total_steps, "train_size": len(X_train), "test_size": len(X_test)})

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
    )
    ctx.raise_if_cancelled(force=True)

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
    return {"checkpoint": checkpoint.slug, "checkpoint_name": checkpoint.name, "final": final, "spec": spec}


def _experiment_for(ctx: JobContext) -> Experiment:
    if ctx.job.owner is None:
        raise ValueError("a training job without an owner must name an experiment")
    experiment = experiment_sandbox_for(user=ctx.job.owner)
    ctx.job.experiment = experiment
    ctx.job.save(update_fields=["experiment"])
    return experiment
