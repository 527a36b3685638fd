"""Datasets as ``(X, y)`` tensor pairs.

``load(name, split="train", **options)`` returns ``X`` (float32 features, or
int64 tokens for ``modular-addition``) and ``y`` (int64 class labels, or
float32 regression targets of shape ``(N, output_dim)``).  Every dataset is
deterministic given its options (all randomness is seeded).
``describe(name, **options)`` tells the input shape and task so a spec can be
checked against the data (see :func:`analysis.zoo.check_compatible`).
``DATASETS`` is a registry (name -> :class:`DatasetInfo`) for building forms.

Splits are ``"train"``, ``"test"`` and ``"all"`` for every dataset.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["DataError", "DatasetInfo", "DATASETS", "SPLITS", "load", "describe", "validate_options"]


class DataError(ValueError):
    """Bad dataset name, options or data file; the message says what is wrong."""


SPLITS = ("train", "test", "all")
DEFAULT_MAX_FILE_BYTES = 512 * 2**20
# What an .npz's arrays may declare in all (they are compressed: the file size says little).
DEFAULT_MAX_ARRAY_BYTES = 2 * 2**30
MAX_SAMPLES = 2_000_000


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    task: str  # "classification" or "regression"
    options: dict[str, Any] = field(default_factory=dict)  # option -> default


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        "digits",
        "Digits (8x8)",
        "scikit-learn's 1797 handwritten digits, 64 features in [0, 1], 10 classes; fixed stratified 80/20 split.",
        "classification",
        {},
    ),
    "moons": DatasetInfo(
        "moons",
        "Two moons",
        "scikit-learn make_moons: 2-D points, 2 classes; 80/20 split.",
        "classification",
        {"n": 1000, "noise": 0.1, "seed": 0, "test_fraction": 0.2},
    ),
    "teacher-student": DatasetInfo(
        "teacher-student",
        "Teacher-student regression",
        "Gaussian inputs labelled by a random one-hidden-layer tanh teacher network, plus optional noise.",
        "regression",
        {"n": 1000, "d_in": 16, "d_out": 1, "teacher_hidden": 32, "noise": 0.0, "seed": 0, "test_fraction": 0.2},
    ),
    "modular-addition": DatasetInfo(
        "modular-addition",
        "Modular addition",
        "All pairs (a, b) with label (a + b) mod p, tokens [a, b, '='] ('=' is token p); random train fraction.",
        "classification",
        {"p": 113, "train_fraction": 0.3, "seed": 0, "equals_token": True},
    ),
    "file": DatasetInfo(
        "file",
        "Uploaded file",
        "A .safetensors or .npz file holding X and y (or X_train/y_train/X_test/y_test).",
        "classification",
        {"path": None, "seed": 0, "test_fraction": 0.2, "max_bytes": DEFAULT_MAX_FILE_BYTES,
         "max_array_bytes": DEFAULT_MAX_ARRAY_BYTES},
    ),
}

_MAX_P = 113


# --------------------------------------------------------------------------- options


def _num(options: dict, key: str, lo: float, hi: float, integer: bool) -> Any:
    value = options[key]
    if isinstance(value, bool):
        raise DataError(f"dataset option {key!r} must be a number, got {value!r}")
    if integer:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise DataError(f"dataset option {key!r} must be an integer, got {value!r}")
    else:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"dataset option {key!r} must be a finite number, got {value!r}")
        value = float(value)
    if not lo <= value <= hi:
        raise DataError(f"dataset option {key!r} must be between {lo} and {hi}, got {value}")
    return value


def validate_options(name: str, **options: Any) -> dict:
    """Check a dataset name and options; return the options with defaults filled in."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    info = DATASETS[name]
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise DataError(f"dataset {name!r} has no option {unknown[0]!r} (options: {sorted(info.options)})")
    o = {**info.options, **options}
    if name == "moons":
        o["n"] = _num(o, "n", 10, MAX_SAMPLES, True)
        o["noise"] = _num(o, "noise", 0.0, 10.0, False)
        o["seed"] = _num(o, "seed", 0, 2**32 - 1, True)
        o["test_fraction"] = _num(o, "test_fraction", 0.0, 0.9, False)
    elif name == "teacher-student":
        o["n"] = _num(o, "n", 10, MAX_SAMPLES, True)
        o["d_in"] = _num(o, "d_in", 1, 4096, True)
        o["d_out"] = _num(o, "d_out", 1, 4096, True)
        o["teacher_hidden"] = _num(o, "teacher_hidden", 1, 4096, True)
        o["noise"] = _num(o, "noise", 0.0, 100.0, False)
        o["seed"] = _num(o, "seed", 0, 2**32 - 1, True)
        o["test_fraction"] = _num(o, "test_fraction", 0.0, 0.9, False)
        if o["n"] * o["d_in"] > 200_000_000:
            raise DataError("dataset option 'n' times 'd_in' is too large (more than 2e8 values)")
    elif name == "modular-addition":
        o["p"] = _num(o, "p", 2, _MAX_P, True)
        o["train_fraction"] = _num(o, "train_fraction", 0.01, 1.0, False)
        o["seed"] = _num(o, "seed", 0, 2**32 - 1, True)
        if not isinstance(o["equals_token"], bool):
            raise DataError("dataset option 'equals_token' must be true or false")
    elif name == "file":
        if not o["path"] or not isinstance(o["path"], (str, os.PathLike)):
            raise DataError("dataset 'file' needs the option path=<.safetensors or .npz file>")
        o["seed"] = _num(o, "seed", 0, 2**32 - 1, True)
        o["test_fraction"] = _num(o, "test_fraction", 0.0, 0.9, False)
        for key in ("max_bytes", "max_array_bytes"):
            if o[key] is not None:
                o[key] = _num(o, key, 1, 2**40, True)
    return o


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"split must be one of {list(SPLITS)}, got {split!r}")


def _split_indices(n: int, test_fraction: float, seed: int, stratify: np.ndarray | None = None):
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    if test_fraction <= 0:
        return idx, idx[:0]
    n_test = max(1, int(round(n * test_fraction)))
    try:
        return train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify: plain shuffle split
        return train_test_split(idx, test_size=n_test, random_state=seed)


def _pick(X: np.ndarray, y: np.ndarray, train_idx, test_idx, split: str):
    if split == "train":
        X, y = X[np.sort(train_idx)], y[np.sort(train_idx)]
    elif split == "test":
        X, y = X[np.sort(test_idx)], y[np.sort(test_idx)]
    return torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.ascontiguousarray(y))


# --------------------------------------------------------------------------- generators


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    train_idx, test_idx = _split_indices(len(y), 0.2, 0, stratify=y)
    return X, y, train_idx, test_idx


def _moons(o: dict):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=o["n"], noise=o["noise"], random_state=o["seed"])
    return X.astype(np.float32), y.astype(np.int64)


def _teacher_student(o: dict):
    rng = np.random.default_rng(o["seed"])
    X = rng.standard_normal((o["n"], o["d_in"])).astype(np.float64)
    W1 = rng.standard_normal((o["d_in"], o["teacher_hidden"])) / math.sqrt(o["d_in"])
    b1 = 0.1 * rng.standard_normal(o["teacher_hidden"])
    W2 = rng.standard_normal((o["teacher_hidden"], o["d_out"])) / math.sqrt(o["teacher_hidden"])
    y = np.tanh(X @ W1 + b1) @ W2
    if o["noise"] > 0:
        y = y + o["noise"] * rng.standard_normal(y.shape)
    return X.astype(np.float32), y.astype(np.float32)


def _modular(o: dict, split: str):
    p = o["p"]
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    cols = [a, b, np.full_like(a, p)] if o["equals_token"] else [a, b]
    X = np.stack(cols, axis=1).astype(np.int64)
    y = ((a + b) % p).astype(np.int64)
    perm = np.random.default_rng(o["seed"]).permutation(len(y))
    n_train = max(1, int(round(o["train_fraction"] * len(y))))
    train_idx, test_idx = perm[:n_train], perm[n_train:]
    return _pick(X, y, train_idx, test_idx, split)


def _read_file(o: dict) -> dict[str, np.ndarray]:
    path = Path(o["path"])
    try:
        size = path.stat().st_size
    except OSError:
        raise DataError(f"data file {str(path)!r} does not exist or cannot be read") from None
    if o["max_bytes"] is not None and size > o["max_bytes"]:
        raise DataError(f"data file is {size:,} bytes, more than the limit of {o['max_bytes']:,}")
    suffix = path.suffix.lower()
    arrays: dict[str, np.ndarray] = {}
    if suffix == ".npz":
        import zipfile

        from analysis.archives import ArchiveRejected, check_npz

        try:
            check_npz(path, max_array_bytes=o["max_array_bytes"])  # before inflating anything
        except ArchiveRejected as exc:
            raise DataError(f"refused .npz data file: {exc}") from None
        try:
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    arrays[key] = z[key]
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise DataError("data file contains pickled objects; only numeric arrays are accepted") from None
            raise DataError(f"cannot read .npz data file: {exc}") from None
        except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise DataError(f"cannot read .npz data file (corrupt or truncated?): {exc}") from None
    elif suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            arrays = dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise DataError(f"cannot read .safetensors data file (corrupt or truncated?): {exc}") from None
    else:
        raise DataError(f"data file must end in .npz or .safetensors, got {path.name!r}")
    return arrays


def _clean_pair(X: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    for name, arr in (("X", X), ("y", y)):
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{where}: {name} must be a numeric array, got dtype {arr.dtype}")
    if X.ndim < 2:
        raise DataError(f"{where}: X must have shape (N, features...), got {X.shape}")
    if y.ndim not in (1, 2):
        raise DataError(f"{where}: y must have shape (N,) or (N, k), got {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{where}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise DataError(f"{where}: no samples")
    if X.shape[0] > MAX_SAMPLES:
        raise DataError(f"{where}: more than {MAX_SAMPLES:,} samples")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise DataError(f"{where}: X contains {int((~np.isfinite(X)).sum())} NaN/Inf values")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{where}: y contains {int((~np.isfinite(y)).sum())} NaN/Inf values")
    if X.dtype.kind == "f" or X.dtype.kind == "b":
        X = X.astype(np.float32)
    else:
        X = X.astype(np.int64)
        if X.min() < 0:
            raise DataError(f"{where}: integer X (tokens) must be non-negative")
    if y.dtype.kind in "biu":
        if y.ndim != 1:
            raise DataError(f"{where}: integer class labels y must have shape (N,), got {y.shape}")
        y = y.astype(np.int64)
        if y.min() < 0:
            raise DataError(f"{where}: class labels must be non-negative, got {int(y.min())}")
        if y.max() >= 100_000:
            raise DataError(f"{where}: class label {int(y.max())} is too large")
    else:
        y = y.astype(np.float32)
        if y.ndim == 1:
            y = y[:, None]
    return X, y


def _file(o: dict, split: str):
    arrays = _read_file(o)
    if {"X_train", "y_train", "X_test", "y_test"} <= set(arrays):
        Xtr, ytr = _clean_pair(arrays["X_train"], arrays["y_train"], "train arrays")
        Xte, yte = _clean_pair(arrays["X_test"], arrays["y_test"], "test arrays")
        if Xtr.shape[1:] != Xte.shape[1:] or Xtr.dtype != Xte.dtype or ytr.dtype != yte.dtype:
            raise DataError("X_train/X_test (or y_train/y_test) shapes or types disagree")
        if split == "train":
            X, y = Xtr, ytr
        elif split == "test":
            X, y = Xte, yte
        else:
            X, y = np.concatenate([Xtr, Xte]), np.concatenate([ytr, yte])
        return torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.ascontiguousarray(y))
    if not {"X", "y"} <= set(arrays):
        raise DataError(f"data file must hold arrays 'X' and 'y' (found {sorted(arrays)[:10]})")
    X, y = _clean_pair(arrays["X"], arrays["y"], "data file")
    strat = y if y.dtype == np.int64 else None
    train_idx, test_idx = _split_indices(len(y), o["test_fraction"], o["seed"], stratify=strat)
    return _pick(X, y, train_idx, test_idx, split)


# --------------------------------------------------------------------------- public API


def load(name: str, split: str = "train", **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(X, y)`` tensors for dataset ``name`` and ``split`` (train/test/all).

    Raises :class:`DataError` for an unknown name, bad options or a bad file.
    """
    o = validate_options(name, **options)
    _check_split(split)
    if name == "digits":
        X, y, train_idx, test_idx = _digits()
        return _pick(X, y, train_idx, test_idx, split)
    if name == "moons":
        X, y = _moons(o)
        train_idx, test_idx = _split_indices(len(y), o["test_fraction"], o["seed"], stratify=y)
        return _pick(X, y, train_idx, test_idx, split)
    if name == "teacher-student":
        X, y = _teacher_student(o)
        train_idx, test_idx = _split_indices(len(y), o["test_fraction"], o["seed"])
        return _pick(X, y, train_idx, test_idx, split)
    if name == "modular-addition":
        return _modular(o, split)
    return _file(o, split)


def describe(name: str, **options: Any) -> dict:
    """Shape and task of a dataset, for checking a spec against it.

    Returns ``{"name", "task", "input_shape", "input_dtype", "num_classes"
    (classification) or "output_dim" (regression), "num_train", "num_test",
    "num_samples"}`` and ``"vocab_size"`` for token inputs.
    """
    o = validate_options(name, **options)
    Xtr, ytr = load(name, "train", **options)
    Xte, yte = load(name, "test", **options)
    task = "regression" if ytr.is_floating_point() else "classification"
    out: dict[str, Any] = {
        "name": name,
        "task": task,
        "input_shape": list(Xtr.shape[1:]),
        "input_dtype": str(Xtr.dtype).replace("torch.", ""),
        "num_train": int(Xtr.shape[0]),
        "num_test": int(Xte.shape[0]),
        "num_samples": int(Xtr.shape[0] + Xte.shape[0]),
        "options": {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in o.items()},
    }
    if task == "classification":
        top = max(int(ytr.max()), int(yte.max()) if len(yte) else 0)
        out["num_classes"] = o["p"] if name == "modular-addition" else top + 1
    else:
        out["output_dim"] = int(ytr.shape[1])
    if not Xtr.is_floating_point():
        out["vocab_size"] = max(int(Xtr.max()), int(Xte.max()) if len(Xte) else 0) + 1
    return out
