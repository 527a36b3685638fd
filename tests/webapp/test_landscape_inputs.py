"""Bad input to the landscape jobs: clear messages, nothing queued, nothing unpickled."""

import html
import io
import json
import math
import os
import pickle

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.landscape_fixtures import SPEC, trained_checkpoint
from webapp.catalog.models import Checkpoint, DatasetUpload
from webapp.catalog.visibility import Visibility
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpoint(user, tmp_path):
    return trained_checkpoint(user, tmp_path)


@pytest.fixture
def no_enqueue(monkeypatch):
    from webapp.jobs import services

    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)


def post_landscape(client, **fields):
    base = {"mode": "plane", "axes": "random", "resolution": "11", "span": "0", "dataset": "digits", "split": "train",
            "eval_size": "500", "batchnorm": "keep", "seed": "0", "visibility": "private"}
    return client.post("/jobs/new/landscape/", {**base, **fields})


def errors_of(response) -> str:
    return html.unescape(response.content.decode())


def test_valid_request_queues_a_job(client, user, checkpoint, no_enqueue):
    client.force_login(user)
    response = post_landscape(client, checkpoint=checkpoint.slug)
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.params["checkpoint"] == checkpoint.slug and job.params["resolution"] == 11
    assert job.params["work"] > 11 * 11 * 64  # estimated multiply-adds, which decide whether "auto" fans out


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"resolution": "501"}, "resolution", "at most 101x101"),
        ({"resolution": "5000"}, "resolution", "less than or equal to 1001"),
        ({"eval_size": "999999"}, "eval_size", "less than or equal to 20000"),
        ({"axes": "pca", "checkpoint": "__no_traj__"}, "axes", "no training trajectory"),
        ({"checkpoint": "does-not-exist"}, "checkpoint", "no checkpoint 'does-not-exist'"),
        ({"checkpoint": ""}, "checkpoint", "choose a catalog checkpoint or upload one"),
        ({"dataset": "moons"}, "dataset", "expects 64 input features"),
        ({"dataset": "upload:not-mine"}, "dataset", "'upload:not-mine' is not one of the data sets you can choose"),
        ({"tasks": "0,1; 12"}, "tasks", "must list digit classes between 0 and 9"),
        ({"span": "-1"}, "span", "greater than or equal to 0"),
    ],
)
def test_bad_requests_name_the_field(client, user, checkpoint, tmp_path, fields, field, message):
    client.force_login(user)
    if fields.get("checkpoint") == "__no_traj__":
        fields["checkpoint"] = trained_checkpoint(user, tmp_path, seed=3, with_trajectory=False).slug
    fields.setdefault("checkpoint", checkpoint.slug)
    response = post_landscape(client, **fields)
    assert response.status_code == 400
    assert f'data-field="{field}"' in errors_of(response) and message in errors_of(response)
    assert Job.objects.count() == 0


def test_work_limit(client, user, tmp_path, no_enqueue, monkeypatch):
    from webapp.landscapes import params

    monkeypatch.setattr(params, "MAX_WORK", 1e6)
    client.force_login(user)
    response = post_landscape(client, checkpoint=trained_checkpoint(user, tmp_path).slug)
    assert response.status_code == 400 and "multiply-adds" in errors_of(response)


def test_someone_elses_private_checkpoint_is_invisible(client, user, other_user, tmp_path):
    private = trained_checkpoint(other_user, tmp_path, visibility=Visibility.PRIVATE)
    client.force_login(user)
    response = post_landscape(client, checkpoint=private.slug)
    assert response.status_code == 400 and f"no checkpoint {private.slug!r}" in errors_of(response)


class Payload:
    """Unpickling this would create a marker file: the test proves it never happens."""

    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_bytes(marker) -> bytes:
    Payload.marker = str(marker)
    buffer = io.BytesIO()
    torch.save({"layers.0.weight": Payload()}, buffer)  # a .pt whose unpickling would run code
    return buffer.getvalue()


def _state_bytes(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _good_state():
    from analysis import zoo

    return zoo.build(SPEC).state_dict()


@pytest.mark.parametrize("case", ["pickle", "truncated", "wrong-shape", "nan", "not-a-checkpoint", "wrong-suffix", "bad-spec-json"])
def test_hostile_checkpoint_uploads_are_rejected(client, user, tmp_path, case):
    from analysis import checkpoints

    marker = tmp_path / "payload-ran"
    spec_json = json.dumps(SPEC)
    name = "upload.pt"
    if case == "pickle":
        content = _pickle_bytes(marker)
    elif case == "truncated":
        checkpoints.save(tmp_path / "ok.safetensors", _good_state(), SPEC)
        content, name = (tmp_path / "ok.safetensors").read_bytes()[:-100], "upload.safetensors"
    elif case == "wrong-shape":
        state = _good_state()
        state[next(iter(state))] = torch.zeros(3, 3)
        content = _state_bytes(state)
    elif case == "nan":
        state = _good_state()
        next(iter(state.values()))[0, 0] = math.nan
        content = _state_bytes(state)
    elif case == "not-a-checkpoint":
        content = b"this is plain text, not tensors" * 10
    elif case == "wrong-suffix":
        content, name = b"MZ\x90\x00", "model.exe"
    else:
        content, spec_json = _state_bytes(_good_state()), "{not json"
    client.force_login(user)
    response = post_landscape(client, checkpoint_file=SimpleUploadedFile(name, content), spec_json=spec_json)
    assert response.status_code == 400, case
    body = errors_of(response)
    if case == "bad-spec-json":  # the spec's own field, not the file's (issue 9, item 6)
        assert 'data-field="spec_json"' in body and "architecture spec" in body
    else:
        assert 'data-field="checkpoint_file"' in body and "upload rejected" in body
    assert not marker.exists(), "the pickle payload ran"
    assert Job.objects.count() == 0 and Checkpoint.objects.count() == 0


def test_weights_only_pt_upload_with_spec_is_accepted_as_safetensors(client, user, no_enqueue):
    client.force_login(user)
    response = post_landscape(client, checkpoint_file=SimpleUploadedFile("mine.pt", _state_bytes(_good_state())), spec_json=json.dumps(SPEC))
    assert response.status_code == 302
    uploaded = Checkpoint.objects.get()
    assert uploaded.file.name.endswith(".safetensors") and uploaded.experiment.owner == user
    assert uploaded.experiment.visibility == Visibility.PRIVATE
    assert Job.objects.get().params["checkpoint"] == uploaded.slug


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("case, message", [
    ("nan", "NaN"), ("rows", "rows"), ("pickled", "pickled"), ("missing", "X"), ("features", "expects 64 input features"),
])
def test_hostile_dataset_uploads_are_rejected(client, user, checkpoint, case, message):
    X = np.random.rand(20, 64).astype(np.float32)
    y = np.arange(20) % 10
    if case == "nan":
        X[3, 3] = np.nan
        content = _npz(X=X, y=y)
    elif case == "rows":
        content = _npz(X=X, y=y[:5])
    elif case == "pickled":
        content = _npz(X=np.array([{"a": 1}], dtype=object), y=y[:1])
    elif case == "missing":
        content = _npz(inputs=X)
    else:
        content = _npz(X=X[:, :10], y=y)
    client.force_login(user)
    response = post_landscape(client, checkpoint=checkpoint.slug, dataset_file=SimpleUploadedFile("d.npz", content))
    assert response.status_code == 400
    assert message in errors_of(response)
    assert Job.objects.count() == 0
    assert DatasetUpload.objects.count() == 0  # even when only the fit failed (issue 9, item 3)


def test_dataset_upload_is_used(client, user, checkpoint, no_enqueue):
    X = np.random.rand(40, 64).astype(np.float32)
    y = np.arange(40) % 10
    client.force_login(user)
    response = post_landscape(client, checkpoint=checkpoint.slug, dataset_file=SimpleUploadedFile("d.npz", _npz(X=X, y=y)), split="all")
    assert response.status_code == 302
    upload = DatasetUpload.objects.get()
    assert Job.objects.get().params["dataset"] == f"upload:{upload.slug}" and upload.info["samples"] == 40


def test_the_page_offers_the_users_data_sets_and_the_kinds_fields(client, user, checkpoint):
    client.force_login(user)
    body = client.get("/jobs/new/landscape/").content.decode()
    assert '<option value="digits">digits (scikit-learn 8x8)</option>' in body and 'name="checkpoint_file"' in body
    assert 'name="tasks"' in body and 'id="id_resolution"' in body and 'value="41"' in body
    body = client.get("/jobs/new/hessian/").content.decode()
    assert 'id="id_top_k"' in body and 'id="id_resolution"' not in body and 'id="id_tasks"' not in body


def test_api_limits_are_json_errors(client, user, checkpoint):
    client.force_login(user)
    response = client.post("/api/jobs/", json.dumps({"kind": "landscape", "params": {"checkpoint": checkpoint.slug, "resolution": 400}}),
                           content_type="application/json")
    assert response.status_code == 400 and "resolution" in response.json()["errors"]


def _untrained_checkpoint(owner, tmp_path, spec):
    """A checkpoint of another architecture, one that does not fit digits either."""
    from analysis import checkpoints, zoo
    from webapp.catalog.services import checkpoint_create_from_file, experiment_create

    model = zoo.build(spec)
    path = tmp_path / "other.safetensors"
    checkpoints.save(path, model, spec, meta={})
    return checkpoint_create_from_file(experiment=experiment_create(title="other", owner=owner, visibility=Visibility.PUBLIC),
                                       name="tiny-other", path=path, spec=spec, dataset="",
                                       num_parameters=sum(p.numel() for p in model.parameters()))


@pytest.mark.parametrize(
    "fields, field, message",
    [
        # a line has no three-model axes (it quietly ran a random direction), and a line to an end checkpoint no axis
        ({"mode": "line", "axes": "three_models", "checkpoint_b": "B", "checkpoint_c": "C"}, "axes", "choose mode plane"),
        ({"mode": "line", "axes": "hessian", "end_checkpoint": "B"}, "axes", "follows the straight path"),
        # corners that coincide do not span a plane: the worker failed with "do not span a plane"
        ({"axes": "three_models", "checkpoint_b": "A", "checkpoint_c": "C"}, "checkpoint_b", "same model as the checkpoint"),
        ({"axes": "three_models", "checkpoint_b": "B", "checkpoint_c": "A"}, "checkpoint_c", "same model as the checkpoint"),
        ({"axes": "three_models", "checkpoint_b": "B", "checkpoint_c": "B"}, "checkpoint_c", "same model as corner B"),
        # an end checkpoint of another architecture was blamed on the data set
        ({"mode": "line", "end_checkpoint": "OTHER"}, "end_checkpoint", "has a different architecture from the checkpoint"),
        ({"axes": "three_models", "checkpoint_b": "OTHER", "checkpoint_c": "C"}, "checkpoint_b", "different architecture"),
    ],
)
def test_bad_combinations_are_refused_before_queueing(client, user, checkpoint, tmp_path, fields, field, message):
    slugs = {"A": checkpoint.slug, "B": trained_checkpoint(user, tmp_path, seed=1).slug,
             "C": trained_checkpoint(user, tmp_path, seed=2).slug,
             "OTHER": _untrained_checkpoint(user, tmp_path, {"kind": "mlp", "in": 4, "hidden": [8], "out": 3}).slug}
    client.force_login(user)
    fields = {name: slugs.get(value, value) for name, value in fields.items()}
    response = post_landscape(client, checkpoint=checkpoint.slug, **fields)
    text = errors_of(response)
    assert response.status_code == 400 and f'data-field="{field}"' in text and message in text, text[-3000:]
    assert 'data-field="dataset"' not in text
    assert Job.objects.count() == 0


def test_fields_another_mode_uses_are_ignored(client, user, checkpoint, tmp_path, no_enqueue):
    other = _untrained_checkpoint(user, tmp_path, {"kind": "mlp", "in": 4, "hidden": [8], "out": 3})
    client.force_login(user)
    response = post_landscape(client, checkpoint=checkpoint.slug, end_checkpoint=other.slug, checkpoint_b=other.slug)
    assert response.status_code == 302, errors_of(response)[-3000:]
    assert Job.objects.get().params["end_checkpoint"] == ""
