"""Uploads end to end (issue 9, item 3): a checkpoint and a dataset uploaded with a landscape
form are stored with the job in one transaction, and a real worker evaluates the uploaded
model on the uploaded data (the plane's centre is the model's own loss on it)."""

import json

import pytest
import torch
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.integration.test_landscape_pipeline import stream
from tests.webapp.landscape_fixtures import SPEC
from tests.webapp.security_fixtures import npz_bytes, torch_state_bytes
from webapp.catalog.models import Checkpoint, DatasetUpload
from webapp.jobs.services import job_params_validate, job_submit

pytestmark = pytest.mark.integration


def test_uploaded_model_and_data_are_evaluated_by_a_worker(live_stack, tmp_path):
    import numpy as np

    from analysis import checkpoints, data

    owner = get_user_model().objects.create_user("uploader", password="pw-uploader-1")
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((50, 64), dtype=np.float32)
    y = np.arange(50) % 10
    files = {"checkpoint_file": SimpleUploadedFile("mine.pt", torch_state_bytes(SPEC)),
             "dataset_file": SimpleUploadedFile("mine.npz", npz_bytes(X=X, y=y))}
    validated = job_params_validate(kind="landscape", user=owner, files=files,
                                    data={"spec_json": json.dumps(SPEC), "resolution": 3, "eval_size": 100, "visibility": "public"})
    assert not Checkpoint.objects.exists() and not DatasetUpload.objects.exists()  # validation stored nothing
    job = job_submit(validated=validated, owner=owner)
    checkpoint, dataset = Checkpoint.objects.get(), DatasetUpload.objects.get()
    assert job.params["checkpoint"] == checkpoint.slug and job.params["dataset"] == f"upload:{dataset.slug}"

    stream(live_stack, job)
    model = checkpoints.load(checkpoint.file.path).model
    X_train, y_train = data.load("file", "train", path=dataset.file.path)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(X_train), y_train).item()
    assert job.result["loss"][1][1] == pytest.approx(expected, rel=1e-5)
