"""Issue 9, items 2 and 3: archives are judged by what they declare before anything is
inflated, and a rejected form stores nothing (no rows, no files); a valid one stores its
uploads together with its job."""

import io
import json
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.landscape_fixtures import SPEC, trained_checkpoint
from tests.webapp.test_landscape_inputs import errors_of, post_landscape
from webapp.catalog.models import Checkpoint, DatasetUpload
from webapp.jobs.models import Job

from .security_fixtures import media, npz_bomb, npz_bytes, torch_state_bytes  # noqa: F401  (media: a fixture)

pytestmark = pytest.mark.django_db


def stored_files(media) -> list:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def _pt_bomb() -> bytes:
    """A torch.save zip whose members are deflated, plus 64 MB of zeros that deflate to ~64 KB."""
    source = zipfile.ZipFile(io.BytesIO(torch_state_bytes(SPEC)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info))
        archive.writestr(f"{source.namelist()[0].split('/')[0]}/data/999", bytes(64 << 20))
    return out.getvalue()


def test_npz_headers_are_judged_before_inflating():
    from analysis.archives import ArchiveRejected, check_npz

    # The header declares 500000 x 512 float32 (1 GB) but only 1 KB of data follows: a loader
    # that inflated first would report a truncated file; the header check names the shape.
    lying = io.BytesIO(npz_bomb(data_bytes=1000))
    with pytest.raises(ArchiveRejected, match=r"\(500000, 512\) of float32 \(1,024,000,000 bytes\)"):
        check_npz(lying, max_array_bytes=256 << 20)
    honest = io.BytesIO(npz_bytes(X=np.ones((10, 4), np.float32), y=np.arange(10)))
    assert check_npz(honest, max_array_bytes=1000) == {"X": ((10, 4), np.dtype("float32")), "y": ((10,), np.dtype("int64"))}


def test_deflated_zeros_are_refused_by_their_ratio():
    from analysis.archives import ArchiveRejected, check_zip

    with pytest.raises(ArchiveRejected, match="decompression bomb"):
        check_zip(io.BytesIO(npz_bomb(4096, 1024)), max_unpacked_bytes=None)  # 16 MB of zeros in ~16 KB


@pytest.mark.parametrize("bomb", ["declared-1GB", "deflated-zeros"])
def test_npz_bomb_upload_is_refused_and_nothing_is_stored(client, user, tmp_path, media, bomb):
    checkpoint = trained_checkpoint(user, tmp_path, with_trajectory=False)
    before = stored_files(media)
    content = npz_bomb(data_bytes=1000) if bomb == "declared-1GB" else npz_bomb(8192, 1024)  # 32 MB of zeros
    assert len(content) < 100_000
    client.force_login(user)
    response = post_landscape(client, checkpoint=checkpoint.slug, dataset_file=SimpleUploadedFile("bomb.npz", content))
    assert response.status_code == 400
    body = errors_of(response)
    assert 'data-field="dataset_file"' in body and ("declares shape" in body or "decompression bomb" in body)
    assert DatasetUpload.objects.count() == 0 and Job.objects.count() == 0
    assert stored_files(media) == before


def test_torch_zip_bomb_is_refused(client, user, media):
    client.force_login(user)
    response = post_landscape(client, checkpoint_file=SimpleUploadedFile("bomb.pt", _pt_bomb()), spec_json=json.dumps(SPEC))
    assert response.status_code == 400
    body = errors_of(response)
    assert 'data-field="checkpoint_file"' in body and "decompression bomb" in body
    assert Checkpoint.objects.count() == 0 and stored_files(media) == []


def test_good_checkpoint_with_bad_dataset_stores_nothing(client, user, media):
    client.force_login(user)
    bad = npz_bytes(X=np.random.rand(20, 10).astype(np.float32), y=np.arange(20) % 10)  # 10 features; the model takes 64
    response = post_landscape(client, checkpoint_file=SimpleUploadedFile("good.pt", torch_state_bytes(SPEC)), spec_json=json.dumps(SPEC),
                              dataset_file=SimpleUploadedFile("bad.npz", bad))
    assert response.status_code == 400 and 'data-field="dataset"' in errors_of(response)
    assert Checkpoint.objects.count() == 0 and DatasetUpload.objects.count() == 0 and Job.objects.count() == 0
    assert stored_files(media) == []


def test_valid_submission_stores_its_uploads_with_the_job(client, user, media, monkeypatch):
    from webapp.jobs import services

    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)
    client.force_login(user)
    good = npz_bytes(X=np.random.rand(30, 64).astype(np.float32), y=np.arange(30) % 10)
    response = post_landscape(client, checkpoint_file=SimpleUploadedFile("good.pt", torch_state_bytes(SPEC)), spec_json=json.dumps(SPEC),
                              dataset_file=SimpleUploadedFile("good.npz", good))
    assert response.status_code == 302
    job, checkpoint, dataset = Job.objects.get(), Checkpoint.objects.get(), DatasetUpload.objects.get()
    assert job.params["checkpoint"] == checkpoint.slug and job.params["dataset"] == f"upload:{dataset.slug}"
    assert checkpoint.experiment.owner == user and dataset.owner == user
    assert sorted(p.suffix for p in stored_files(media)) == [".npz", ".safetensors"]


def test_a_submission_refused_at_the_last_step_rolls_its_uploads_back(user, media, monkeypatch):
    from webapp.jobs import services
    from webapp.jobs.limits import LimitExceeded

    def refuse(**kwargs):
        raise LimitExceeded(field="kind", message="too many", retry_after=5)

    validated = services.job_params_validate(
        kind="landscape", user=user,
        data={"checkpoint_file": "", "spec_json": json.dumps(SPEC), "dataset": "digits", "resolution": 3, "eval_size": 10},
        files={"checkpoint_file": SimpleUploadedFile("good.pt", torch_state_bytes(SPEC))},
    )
    assert len(validated.uploads) == 1 and Checkpoint.objects.count() == 0
    monkeypatch.setattr(services, "check_job_submission", refuse)
    with pytest.raises(LimitExceeded):
        services.job_submit(validated=validated, owner=user)
    assert Checkpoint.objects.count() == 0 and Job.objects.count() == 0 and stored_files(media) == []


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def _zipped_folder() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("model/config.json", '{"model_type": "gpt2"}')
        archive.writestr("model/model.safetensors", "")
    return out.getvalue()


@pytest.mark.parametrize("name, content, spec, says", [
    ("model.safetensors", __import__("pickle").dumps({"w": [1.0]}),
     None, "this is a pickle, not a safetensors file; Terrain never unpickles uploads: save with safetensors"),
    ("model.safetensors", _zipped_folder(), None, "this is a zip archive, not a safetensors file: upload it as a .zip"),
    ("weights.pt", torch_state_bytes(SPEC), None, "carries no architecture spec: give its architecture in “Architecture spec (JSON)”"),
    ("evil.pt", None, SPEC, "refused to load: the file is a pickle with objects other than tensors (it asks for posix.system)"),
])
def test_an_unusable_checkpoint_upload_says_what_it_is_in_terrains_words(client, user, media, name, content, spec, says):
    """They were all "a PyTorch state-dict file carries no spec; pass spec= to load it", or torch's own
    text with terminal escapes and its advice on how to switch weights_only off."""
    import torch

    if content is None:
        buffer = io.BytesIO()
        torch.save({"fc0.weight": _Payload()}, buffer)
        content = buffer.getvalue()
    client.force_login(user)
    fields = {"spec_json": json.dumps(spec)} if spec else {}
    response = post_landscape(client, checkpoint_file=SimpleUploadedFile(name, content), **fields)
    assert response.status_code == 400
    body = errors_of(response)
    assert 'data-field="checkpoint_file"' in body and says in body, body[:3000]
    assert "spec=" not in body and "\x1b" not in body and "weights_only" not in body and "trust" not in body
    assert Checkpoint.objects.count() == 0 and stored_files(media) == []
