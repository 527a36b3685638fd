"""Seeded, deterministic training of zoo models.

``train(spec, (X, y), ...)`` builds the model from ``spec`` (initialised from
``seed``), trains it with mini-batch SGD/Adam/AdamW and returns a
:class:`TrainResult` with the model (eval mode), metric history and a
trajectory of snapshots.  The same arguments give a bit-identical result on
the same machine and torch build.

Classification (integer ``y``) uses cross-entropy; regression (float ``y``)
uses mean squared error and reports ``accuracy = None``.

Progress: after every evaluation ``on_progress(event)`` is called with
``{"type": "metrics", "step", "epoch", "total_steps", "fraction",
"train_loss", "train_accuracy", "test_loss", "test_accuracy"}``.  An exception
raised by ``on_progress`` propagates out of ``train`` (that is how a caller
cancels).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from . import metrics, zoo

__all__ = ["TrainResult", "train", "OPTIMIZERS", "default_eval_every"]

OPTIMIZERS = ("sgd", "adam", "adamw")
MAX_STEPS = 10_000_000


@dataclass
class TrainResult:
    model: nn.Module
    spec: dict
    history: list[dict] = field(default_factory=list)
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    final_state: dict[str, torch.Tensor] = field(default_factory=dict)
    total_steps: int = 0
    seconds: float = 0.0

    @property
    def final_metrics(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def steps(self) -> list[int]:
        return [s for s, _ in self.snapshots]

    @property
    def states(self) -> list[dict[str, torch.Tensor]]:
        return [st for _, st in self.snapshots]


def _sub_seeds(seed: int, n: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n, dtype=np.uint32)]


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def default_eval_every(total_steps: int, steps_per_epoch: int) -> int:
    """Once per epoch, but at most ~100 evaluations in a run."""
    return max(steps_per_epoch, math.ceil(total_steps / 100), 1)


def _make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    # foreach=True: one multi-tensor kernel per update instead of a Python loop over parameters
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")


def _check_data(spec: dict, X: torch.Tensor, y: torch.Tensor, what: str) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{what} must be a pair of tensors (X, y)")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    description = {
        "input_shape": list(X.shape[1:]),
        "input_dtype": "float32" if X.is_floating_point() else "int64",
        "task": "regression" if y.is_floating_point() else "classification",
    }
    if description["task"] == "classification":
        description["num_classes"] = int(y.max()) + 1 if len(y) else 0
    else:
        description["output_dim"] = int(y.shape[1]) if y.dim() == 2 else 1
    if not X.is_floating_point() and len(X):
        description["vocab_size"] = int(X.max()) + 1
    try:
        zoo.check_compatible(spec, description)
    except zoo.SpecError as exc:
        raise ValueError(f"{what} does not fit the spec: {exc}") from None


def train(
    spec: dict,
    train_data: tuple[torch.Tensor, torch.Tensor],
    *,
    test_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    optimizer: str = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    epochs: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    eval_every: int | None = None,
    snapshot_every: int | None = None,
    label_noise: float = 0.0,
    on_progress: Callable[[dict], Any] | None = None,
    device: str | torch.device | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
    on_step: Callable[[int, nn.Module, torch.optim.Optimizer], Any] | None = None,
) -> TrainResult:
    """Train ``build(spec)`` on ``train_data``; see the module docstring.

    Give ``epochs`` or ``steps`` (not both; default 10 epochs).  A step is one
    mini-batch update; an epoch is ``ceil(N / batch_size)`` steps over a fresh
    seeded permutation.  ``eval_every`` and ``snapshot_every`` count steps;
    evaluations and snapshots always include step 0 and the final step
    (``eval_every`` defaults to once per epoch, at most ~100 times per run;
    ``snapshot_every=None`` keeps only the first and last state).
    ``label_noise`` replaces that fraction of training labels by a different,
    seeded random class.  ``init_state`` starts from given weights instead of
    the seeded initialisation.  ``on_step(step, model, optimizer)`` is called
    before the first update (step 0) and after every update, before that
    step's evaluation (e.g. :class:`analysis.sharpness.SharpnessTracker`);
    it must not change the weights.
    """
    t0 = time.perf_counter()
    s = zoo.validate_spec(spec)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {label_noise}")
    if epochs is not None and steps is not None:
        raise ValueError("give epochs or steps, not both")
    X, y = train_data
    _check_data(s, X, y, "train_data")
    if test_data is not None:
        _check_data(s, test_data[0], test_data[1], "test_data")
    n = X.shape[0]
    if n == 0:
        raise ValueError("train_data is empty")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch_size = min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    if steps is None:
        epochs = 10 if epochs is None else int(epochs)
        if epochs < 0:
            raise ValueError("epochs must be non-negative")
        total_steps = epochs * steps_per_epoch
    else:
        total_steps = int(steps)
        if total_steps < 0:
            raise ValueError("steps must be non-negative")
    if total_steps > MAX_STEPS:
        raise ValueError(f"at most {MAX_STEPS:,} steps are allowed, got {total_steps:,}")
    eval_every = default_eval_every(total_steps, steps_per_epoch) if eval_every is None else int(eval_every)
    if eval_every < 1:
        raise ValueError("eval_every must be at least 1")
    if snapshot_every is not None and int(snapshot_every) < 1:
        raise ValueError("snapshot_every must be at least 1")

    dev = torch.device(device) if device is not None else torch.device("cpu")
    init_seed, order_seed, noise_seed = _sub_seeds(seed, 3)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = zoo.build(s)
    if init_state is not None:
        model.load_state_dict(dict(init_state), strict=True)
    model = model.to(dev)
    model.terrain_spec = s

    X = X.to(dev)
    y = y.to(dev)
    classification = metrics.is_classification(y)
    if label_noise > 0:
        if not classification:
            raise ValueError("label_noise applies to classification data only")
        num_classes = zoo.output_size(s)
        g = torch.Generator().manual_seed(noise_seed)
        k = int(round(label_noise * n))
        idx = torch.randperm(n, generator=g)[:k]
        shift = torch.randint(1, num_classes, (k,), generator=g)
        y = y.clone()
        y[idx.to(dev)] = (y[idx.to(dev)] + shift.to(dev)) % num_classes
    test = None
    if test_data is not None and test_data[0].shape[0] > 0:
        test = (test_data[0].to(dev), test_data[1].to(dev))

    loss_fn = metrics.loss_fn_for(y)
    opt = _make_optimizer(optimizer, model.parameters(), lr, momentum, weight_decay)
    order_gen = torch.Generator().manual_seed(order_seed)

    history: list[dict] = []
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = []

    def record(step: int) -> None:
        model.eval()
        train_loss, train_acc = metrics.evaluate(model, X, y)
        test_loss, test_acc = metrics.evaluate(model, *test) if test is not None else (None, None)
        model.train()
        row = {
            "step": step,
            "epoch": round(step / steps_per_epoch, 6),
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
        }
        history.append(row)
        if on_progress is not None:
            on_progress(
                {
                    "type": "metrics",
                    **row,
                    "total_steps": total_steps,
                    "fraction": step / total_steps if total_steps else 1.0,
                }
            )

    model.train()
    snapshots.append((0, _clone_state(model)))
    if on_step is not None:
        on_step(0, model, opt)
    record(0)
    step = 0
    while step < total_steps:
        perm = torch.randperm(n, generator=order_gen).to(dev)
        for start in range(0, n, batch_size):
            if step >= total_steps:
                break
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
            if on_step is not None:
                on_step(step, model, opt)
            if step % eval_every == 0 or step == total_steps:
                record(step)
            if step == total_steps or (snapshot_every is not None and step % int(snapshot_every) == 0):
                snapshots.append((step, _clone_state(model)))
    model.eval()
    final_state = _clone_state(model)
    return TrainResult(
        model=model,
        spec=s,
        history=history,
        snapshots=snapshots,
        final_state=final_state,
        total_steps=total_steps,
        seconds=time.perf_counter() - t0,
    )
