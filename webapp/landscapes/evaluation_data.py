"""The data a landscape, Hessian or connectivity job evaluates on."""

from __future__ import annotations

import torch

from webapp.catalog.models import DatasetUpload

BUILTIN_DATASETS = [
    ("digits", "digits (scikit-learn 8x8)"),
    ("moons", "moons (2-D)"),
    ("modular-addition", "modular addition (p=113)"),
    ("teacher-student", "teacher-student regression"),
]
UPLOAD_PREFIX = "upload:"
SPLITS = [("train", "train"), ("test", "test"), ("all", "all")]


def dataset_choices(user) -> list[tuple[str, str]]:
    choices = list(BUILTIN_DATASETS)
    if user is not None and user.is_authenticated:
        for upload in DatasetUpload.objects.filter(owner=user)[:50]:
            choices.append((UPLOAD_PREFIX + upload.slug, f"uploaded: {upload.name} ({upload.info.get('samples')} samples)"))
    return choices


def _load(name: str, split: str, owner_id: int | None):
    from analysis import data

    if name.startswith(UPLOAD_PREFIX):
        upload = DatasetUpload.objects.filter(slug=name[len(UPLOAD_PREFIX):], owner_id=owner_id).first()
        if upload is None:
            raise data.DataError("the uploaded dataset no longer exists")
        return data.load("file", split, path=upload.file.path)
    return data.load(name, split)


def describe(name: str, owner_id: int | None) -> dict:
    from analysis import data

    if name.startswith(UPLOAD_PREFIX):
        upload = DatasetUpload.objects.filter(slug=name[len(UPLOAD_PREFIX):], owner_id=owner_id).first()
        if upload is None:
            raise data.DataError("the uploaded dataset no longer exists")
        return data.describe("file", path=upload.file.path)
    return data.describe(name)


def evaluation_data(*, dataset: str, split: str, size: int, owner_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, y) of the split, subsampled to `size` rows by a fixed permutation (seed 0), in order."""
    X, y = _load(dataset, split, owner_id)
    if len(X) > size:
        keep = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))[:size].sort().values
        X, y = X[keep], y[keep]
    return X, y
