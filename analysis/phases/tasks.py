"""The tasks a phase-diagram sweep can train: data, model spec and default hyperparameters.

A *task* couples a dataset from :mod:`analysis.data` with an architecture from
:mod:`analysis.zoo`:

``modular-addition-mlp``
    ``(a + b) mod p``; the input is ``one_hot(a) ++ one_hot(b)`` (``2p``
    floats), so the first linear layer of the zoo ``mlp`` is a learned
    embedding of each operand summed into the hidden layer (the MLP set-up of
    Liu et al. 2022, Gromov 2023).  ``width`` is the hidden width, ``depth``
    (task option) the number of hidden layers.
``modular-addition-transformer``
    ``(a + b) mod p`` with tokens ``[a, b, "="]`` and the zoo ``transformer``
    (Nanda et al. 2023 style); ``width`` is ``d_model`` (``d_mlp = 4 *
    width``, ``heads`` must divide it).
``digits-mlp``
    scikit-learn's 8x8 digits with the zoo ``mlp``; ``width`` is the width of
    each of ``depth`` hidden layers.

How the sweepable hyperparameters act on the data (all seeded by the sweep's
``data_seed``, *not* by the model seed, so every seed of a cell trains on the
same examples and labels -- needed for between-seed metrics):

* ``data_fraction`` -- modular addition: the dataset's ``train_fraction``
  (the held-out pairs are the test set); digits: a seeded subset of the fixed
  training split (at least one example per class kept), the test split is
  always the full one.
* ``label_noise`` -- that fraction of *training* labels is replaced by a
  different, seeded random class (the same scheme as ``analysis.train``, but
  applied here with ``data_seed`` so that all seeds share the noisy labels);
  test labels stay clean.  "Train accuracy" is measured against the noisy
  labels the model was trained on.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .. import data as datasets

__all__ = [
    "Task",
    "TaskData",
    "TASKS",
    "HYPERPARAMETERS",
    "task_data",
    "model_spec",
    "num_train_examples",
    "steps_for_epochs",
]

# every hyperparameter a run has; the sweepable ones are also axes (see sweep.AXES)
HYPERPARAMETERS = ("lr", "weight_decay", "batch_size", "width", "data_fraction", "label_noise", "optimizer", "momentum")


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    description: str
    dataset: str
    options: dict[str, Any]  # task option -> default
    option_bounds: dict[str, tuple[int, int]]  # integer options: inclusive bounds
    defaults: dict[str, Any] = field(default_factory=dict)  # hyperparameter -> default


TASKS: dict[str, Task] = {
    "modular-addition-mlp": Task(
        name="modular-addition-mlp",
        title="Modular addition, MLP",
        description="(a + b) mod p from one-hot operands with a ReLU MLP; AdamW, full batch by default.",
        dataset="modular-addition",
        options={"p": 31, "depth": 1},
        option_bounds={"p": (2, 113), "depth": (1, 4)},
        defaults={
            "lr": 1e-2,
            "weight_decay": 1.0,
            "batch_size": None,  # None: full batch
            "width": 128,
            "data_fraction": 0.6,
            "label_noise": 0.0,
            "optimizer": "adamw",
            "momentum": 0.9,
        },
    ),
    "modular-addition-transformer": Task(
        name="modular-addition-transformer",
        title="Modular addition, transformer",
        description="(a + b) mod p from tokens [a, b, '='] with a one-layer transformer; AdamW, full batch by default.",
        dataset="modular-addition",
        options={"p": 31, "heads": 4, "layers": 1},
        option_bounds={"p": (2, 113), "heads": (1, 16), "layers": (1, 2)},
        defaults={
            "lr": 1e-3,
            "weight_decay": 1.0,
            "batch_size": None,
            "width": 64,
            "data_fraction": 0.6,
            "label_noise": 0.0,
            "optimizer": "adamw",
            "momentum": 0.9,
        },
    ),
    "digits-mlp": Task(
        name="digits-mlp",
        title="Digits (8x8), MLP",
        description="scikit-learn digits (1438 train / 359 test) with a ReLU MLP; SGD with momentum by default.",
        dataset="digits",
        options={"depth": 2},
        option_bounds={"depth": (1, 4)},
        defaults={
            "lr": 0.05,
            "weight_decay": 0.0,
            "batch_size": 32,
            "width": 64,
            "data_fraction": 1.0,
            "label_noise": 0.0,
            "optimizer": "sgd",
            "momentum": 0.9,
        },
    ),
}


@dataclass(frozen=True)
class TaskData:
    train: tuple[torch.Tensor, torch.Tensor]  # labels as trained on (noisy when label_noise > 0)
    test: tuple[torch.Tensor, torch.Tensor]  # clean labels
    clean_train_labels: torch.Tensor
    num_classes: int

    @property
    def num_train(self) -> int:
        return int(self.train[0].shape[0])


def _noisy_labels(y: torch.Tensor, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    if fraction <= 0:
        return y
    n = y.shape[0]
    g = torch.Generator().manual_seed(int(seed) + 7919)  # offset: independent of the subset draw
    k = int(round(fraction * n))
    idx = torch.randperm(n, generator=g)[:k]
    shift = torch.randint(1, num_classes, (k,), generator=g)
    y = y.clone()
    y[idx] = (y[idx] + shift) % num_classes
    return y


def _digits_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    n = len(y)
    k = max(1, int(round(fraction * n)))
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    # keep at least one example of every class so the label set does not depend on the fraction
    first = {}
    for idx in perm:
        first.setdefault(int(y[idx]), idx)
    keep = list(first.values())
    chosen = set(keep)
    for idx in perm:
        if len(keep) >= k:
            break
        if idx not in chosen:
            keep.append(idx)
            chosen.add(idx)
    return np.sort(np.array(keep, dtype=np.int64))


@functools.lru_cache(maxsize=32)
def _cached_task_data(task: str, options: tuple, data_fraction: float, label_noise: float, data_seed: int) -> TaskData:
    opts = dict(options)
    if task in ("modular-addition-mlp", "modular-addition-transformer"):
        p = opts["p"]
        transformer = task == "modular-addition-transformer"
        kw = dict(p=p, train_fraction=data_fraction, seed=data_seed, equals_token=transformer)
        Xtr, ytr = datasets.load("modular-addition", "train", **kw)
        Xte, yte = datasets.load("modular-addition", "test", **kw)
        if not transformer:
            Xtr = torch.cat([F.one_hot(Xtr[:, 0], p), F.one_hot(Xtr[:, 1], p)], 1).float()
            Xte = torch.cat([F.one_hot(Xte[:, 0], p), F.one_hot(Xte[:, 1], p)], 1).float()
        num_classes = p
    elif task == "digits-mlp":
        Xtr, ytr = datasets.load("digits", "train")
        Xte, yte = datasets.load("digits", "test")
        keep = torch.from_numpy(_digits_subset(ytr.numpy(), data_fraction, data_seed))
        Xtr, ytr = Xtr[keep], ytr[keep]
        num_classes = 10
    else:  # pragma: no cover - validate_sweep rejects unknown tasks
        raise ValueError(f"unknown task {task!r}")
    noisy = _noisy_labels(ytr, label_noise, num_classes, data_seed)
    for t in (Xtr, noisy, Xte, yte):
        t.requires_grad_(False)
    return TaskData(train=(Xtr, noisy), test=(Xte, yte), clean_train_labels=ytr, num_classes=num_classes)


def task_data(task: str, options: dict, *, data_fraction: float, label_noise: float = 0.0, data_seed: int = 0) -> TaskData:
    """Train/test tensors of ``task`` for these data hyperparameters (cached; do not modify the tensors)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    full = {**TASKS[task].options, **options}
    return _cached_task_data(task, tuple(sorted(full.items())), float(data_fraction), float(label_noise), int(data_seed))


def num_train_examples(task: str, options: dict, data_fraction: float) -> int:
    """Training-set size without loading the data (used to turn an epoch budget into steps)."""
    full = {**TASKS[task].options, **options}
    if task.startswith("modular-addition"):
        return max(1, int(round(data_fraction * full["p"] ** 2)))
    n = int(datasets.load("digits", "train")[1].shape[0])  # fixed stratified split (cached by analysis.data)
    return max(1, int(round(data_fraction * n)))


def model_spec(task: str, options: dict, width: int) -> dict:
    """Zoo spec of ``task``'s model at hidden width ``width``."""
    full = {**TASKS[task].options, **options}
    width = int(width)
    if task == "modular-addition-mlp":
        p = full["p"]
        return {"kind": "mlp", "in": 2 * p, "hidden": [width] * full["depth"], "out": p}
    if task == "modular-addition-transformer":
        return {
            "kind": "transformer",
            "p": full["p"],
            "d_model": width,
            "heads": full["heads"],
            "layers": full["layers"],
            "d_mlp": 4 * width,
            "layernorm": False,
            "seq_len": 3,
        }
    if task == "digits-mlp":
        return {"kind": "mlp", "in": 64, "hidden": [width] * full["depth"], "out": 10}
    raise ValueError(f"unknown task {task!r}")


def steps_for_epochs(epochs: int, n_train: int, batch_size: int | None) -> int:
    bs = n_train if batch_size is None else min(int(batch_size), n_train)
    return int(epochs) * math.ceil(n_train / bs)
