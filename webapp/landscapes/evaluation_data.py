"""The data a landscape, Hessian or connectivity job evaluates on."""

from __future__ import annotations

import torch

from webapp.catalog.models import DatasetUpload
from webapp.files import local_path

CHECKPOINT_DATA = "checkpoint"
BUILTIN_DATASETS = [
    (CHECKPOINT_DATA, "the data the checkpoint was trained on"),
    ("digits", "digits (scikit-learn 8x8)"),
    ("moons", "moons (2-D)"),
    ("modular-addition", "modular addition (p=113)"),
    ("teacher-student", "teacher-student regression"),
]
UPLOAD_PREFIX = "upload:"
# Models of a phase-diagram sweep train on a task's own data (analysis.phases.run_data).
PHASES_RUN_PREFIX = "phases-run:"
SPLITS = [("train", "train"), ("test", "test"), ("all", "all")]


def dataset_choices(user) -> list[tuple[str, str]]:
    choices = list(BUILTIN_DATASETS)
    if user is not None and user.is_authenticated:
        for upload in DatasetUpload.objects.filter(owner=user)[:50]:
            choices.append((UPLOAD_PREFIX + upload.slug, f"uploaded: {upload.name} ({upload.info.get('samples')} samples)"))
    return choices


def resolve(name: str, checkpoint) -> str:
    """The concrete dataset behind the "the checkpoint's own data" choice."""
    if name != CHECKPOINT_DATA:
        return name
    if checkpoint.dataset == "phases-run":
        return PHASES_RUN_PREFIX + checkpoint.slug
    return checkpoint.dataset or "digits"


def _phases_run_data(slug: str, split: str):
    from analysis import data
    from analysis.phases import RunConfig, run_data

    from webapp.catalog.models import Checkpoint

    checkpoint = Checkpoint.objects.filter(slug=slug).first()
    if checkpoint is None or "config" not in checkpoint.dataset_options:
        raise data.DataError("the sweep model's data is unknown")
    task = run_data(RunConfig.from_dict(checkpoint.dataset_options["config"]))
    if split == "train":
        return task.train
    if split == "test":
        return task.test
    return torch.cat([task.train[0], task.test[0]]), torch.cat([task.train[1], task.test[1]])


def _load(name: str, split: str, owner_id: int | None):
    from analysis import data

    if name.startswith(PHASES_RUN_PREFIX):
        return _phases_run_data(name[len(PHASES_RUN_PREFIX):], split)
    if name.startswith(UPLOAD_PREFIX):
        upload = DatasetUpload.objects.filter(slug=name[len(UPLOAD_PREFIX):], owner_id=owner_id).first()
        if upload is None:
            raise data.DataError("the uploaded dataset no longer exists")
        return load_upload_file(local_path(upload.file), info=upload.info, split=split)
    return data.load(name, split)


def load_upload_file(path, *, info: dict, split: str):
    """(X, y) of an uploaded data file: token ids for a user's language model (no split), or (X, y) arrays."""
    from analysis import data

    if info.get("format") == "tokens":
        from analysis.sources import data as source_data

        return source_data.load_tokens(path)
    return data.load("file", split, path=path)


def describe(name: str, owner_id: int | None) -> dict:
    from analysis import data

    if name.startswith(PHASES_RUN_PREFIX):
        X, y = _phases_run_data(name[len(PHASES_RUN_PREFIX):], "all")
        description = {"task": "regression" if y.is_floating_point() else "classification", "input_shape": list(X.shape[1:]),
                       "input_dtype": str(X.dtype).replace("torch.", ""), "num_samples": len(X),
                       "num_train": len(_phases_run_data(name[len(PHASES_RUN_PREFIX):], "train")[0]),
                       "num_test": len(_phases_run_data(name[len(PHASES_RUN_PREFIX):], "test")[0])}
        if not y.is_floating_point():
            description["num_classes"] = int(y.max()) + 1
        if not X.is_floating_point():
            description["vocab_size"] = int(X.max()) + 1
        return description
    if name.startswith(UPLOAD_PREFIX):
        upload = DatasetUpload.objects.filter(slug=name[len(UPLOAD_PREFIX):], owner_id=owner_id).first()
        if upload is None:
            raise data.DataError("the uploaded dataset no longer exists")
        return data.describe("file", path=local_path(upload.file))
    return data.describe(name)


def evaluation_data(*, dataset: str, split: str, size: int, owner_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) of the split, subsampled to `size` rows by a fixed permutation (seed 0), in order."""
    return subsample(*_load(dataset, split, owner_id), size)


def subsample(X: torch.Tensor, y: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """At most `size` rows, chosen by a fixed permutation (seed 0), kept in order."""
    if len(X) > size:
        keep = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))[:size].sort().values
        X, y = X[keep], y[keep]
    return X, y
