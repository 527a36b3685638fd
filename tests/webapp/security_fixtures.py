"""Hostile inputs and small real objects shared by the security tests."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from django.core.files import File

from webapp.catalog.visibility import Visibility
from webapp.jobs.services import job_create, job_params_validate
from webapp.phases.models import RunStatus, SweepRun

TINY_SWEEP = {
    "task": {"name": "modular-addition-mlp", "p": 7},
    "x": {"name": "weight_decay", "values": [0.0]},
    "y": {"name": "lr", "values": [0.01]},
    "seeds": 1, "budget": 20, "eval_points": 10,
    "fixed": {"width": 8, "data_fraction": 0.6, "optimizer": "adamw"},
}
SPEC = {"kind": "mlp", "in": 64, "hidden": [4], "out": 10}


def sweep_with_model(owner, tmp_path, visibility=Visibility.PUBLIC):
    """A finished-looking sweep with one succeeded run whose model file exists (no training)."""
    import torch

    from analysis import checkpoints, zoo

    validated = job_params_validate(kind="sweep", data={"spec": TINY_SWEEP}, user=owner)
    job = job_create(kind="sweep", params=validated.params, owner=owner, visibility=visibility, enqueue=False)
    torch.manual_seed(0)
    path = checkpoints.save(tmp_path / "run.safetensors", zoo.build(SPEC), SPEC)
    run = SweepRun(job=job, i=0, j=0, seed=0, config={}, status=RunStatus.SUCCEEDED, result={"spec": SPEC, "final": {}})
    with open(path, "rb") as handle:
        run.state_file.save("run-0-0-0.safetensors", File(handle), save=False)
    run.save()
    return job, run


def form_defaults(kind: str) -> dict:
    """What the job form of `kind` posts when nobody edits it (multi-value fields as lists)."""
    from webapp.jobs import kinds

    fields = kinds.get(kind).form_class.base_fields.items()
    return {name: field.initial for name, field in fields if field.initial is not None and field.initial is not False}


def nested_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def npz_bomb(rows: int = 500_000, features: int = 512, data_bytes: int | None = None) -> bytes:
    """An .npz whose X.npy declares rows x features float32 but deflates to little: a real
    header followed by `data_bytes` zeros (default: all of them), never held in memory."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (rows, features)})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("X.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            block = bytes(1 << 20)
            remaining = rows * features * 4 if data_bytes is None else data_bytes
            while remaining > 0:
                member.write(block[: min(len(block), remaining)])
                remaining -= len(block)
        buf = io.BytesIO()
        np.save(buf, np.zeros(rows, dtype=np.int64)[:10])
        archive.writestr("y.npy", buf.getvalue())
    return out.getvalue()


def json_body(value) -> bytes:
    return json.dumps(value).encode()


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def torch_state_bytes(spec: dict = SPEC) -> bytes:
    """A weights-only torch.save zip of a model of `spec`."""
    import torch

    from analysis import zoo

    buffer = io.BytesIO()
    torch.save(zoo.build(spec).state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    """Uploads land in this test's own media folder, so "nothing stored" can be checked on disk."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
