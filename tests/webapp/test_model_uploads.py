"""Users' own models on the job forms: a Hugging Face folder as .zip, a LoRA adapter on a catalog base,
an ONNX graph; hostile or unfitting uploads get field-named errors and leave nothing stored or queued."""

import html
import io
import zipfile

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.sources.conftest import make_data, save_tiny
from tests.sources.test_lora import TARGETS, write_adapter
from webapp.catalog.models import Checkpoint, DatasetUpload
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_enqueue(monkeypatch):
    from webapp.jobs import services

    monkeypatch.setattr(services, "job_enqueue", lambda *, job: None)


def zip_folder(folder, top="model") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"{top}/{f.name}")
    return buf.getvalue()


def tokens_npz(family="gpt2", bump=0) -> bytes:
    X, y, _ = make_data(family, n=6)
    buf = io.BytesIO()
    np.savez(buf, input_ids=(X + bump).numpy(), attention_mask=(y != -100).numpy().astype(np.int64))
    return buf.getvalue()


def post(client, kind="landscape", **fields):
    base = {"mode": "plane", "axes": "random", "resolution": "5", "span": "0", "dataset": "checkpoint", "split": "all",
            "eval_size": "100", "batchnorm": "keep", "seed": "0", "visibility": "private", "top_k": "2",
            "trace_matvecs": "10", "density_probes": "1", "density_iters": "10"}
    return client.post(f"/jobs/new/{kind}/", {**base, **fields})


def errors(response) -> str:
    return html.unescape(response.content.decode())


def test_hugging_face_zip_and_token_data_queue_a_plane(client, user, tmp_path, no_enqueue):
    client.force_login(user)
    folder = save_tiny("gpt2", tmp_path / "gpt2")
    response = post(client, checkpoint_file=SimpleUploadedFile("tiny-gpt2.zip", zip_folder(folder)),
                    dataset_file=SimpleUploadedFile("tokens.npz", tokens_npz()))
    assert response.status_code == 302, errors(response)[:3000]
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.source == "huggingface" and checkpoint.file.name.endswith(".zip")
    assert checkpoint.model_info["architecture"] == "GPT2LMHeadModel" and checkpoint.model_info["head"] == "causal-lm"
    assert checkpoint.num_parameters == sum(p.numel() for p in torch.nn.Module.parameters(__import__("analysis.sources", fromlist=["load_model"]).load_model(folder).module))
    job = Job.objects.get()
    assert job.params["checkpoint"] == checkpoint.slug and job.params["dataset"].startswith("upload:")
    page = client.get(checkpoint.get_absolute_url())
    text = errors(page)
    assert "Hugging Face" in text and "GPT2LMHeadModel" in text and str(checkpoint.num_parameters) in text

    # the plane itself, run in-process on what the job would load
    from webapp.jobs.context import JobContext  # noqa: F401  (the worker path is covered by the browser test)
    from webapp.landscapes.services import _load_checkpoint
    from webapp.landscapes.evaluation_data import evaluation_data

    record, loaded = _load_checkpoint(checkpoint.slug)
    X, y = evaluation_data(dataset=job.params["dataset"], split="all", size=100, owner_id=user.pk)
    from analysis import landscape

    surface = landscape.plane(loaded, (X, y), resolution=3)
    with torch.no_grad():
        assert surface.centre_loss == pytest.approx(float(loaded.loss_fn(loaded.module(X), y)), rel=1e-5)


def test_lora_upload_links_its_base(client, user, tmp_path, no_enqueue):
    client.force_login(user)
    folder = save_tiny("gpt2", tmp_path / "gpt2")
    assert post(client, checkpoint_file=SimpleUploadedFile("base.zip", zip_folder(folder)),
                dataset_file=SimpleUploadedFile("tokens.npz", tokens_npz())).status_code == 302
    base = Checkpoint.objects.get()
    write_adapter(tmp_path / "adapter", folder, TARGETS["gpt2"])
    adapter_zip = SimpleUploadedFile("adapter.zip", zip_folder(tmp_path / "adapter", "adapter"))
    # without a base: the base field is blamed
    response = post(client, checkpoint_file=adapter_zip)
    assert response.status_code == 400 and "choose its base model" in errors(response)
    assert 'data-field="base_checkpoint"' in errors(response)
    adapter_zip.seek(0)
    response = post(client, checkpoint_file=adapter_zip, base_checkpoint=base.slug, dataset=f"upload:{DatasetUpload.objects.get().slug}")
    assert response.status_code == 302, errors(response)[:3000]
    lora = Checkpoint.objects.exclude(pk=base.pk).get()
    assert lora.source == "lora" and lora.parent == base and lora.relation == "adapter"
    page = errors(client.get(lora.get_absolute_url()))
    assert "LoRA" in page and base.get_absolute_url() in page and "rank 2" in page


def test_onnx_upload_plane_yes_hessian_no(client, user, tmp_path, no_enqueue):
    from analysis import zoo
    from tests.sources.test_onnx import export

    client.force_login(user)
    model = zoo.build({"kind": "mlp", "in": 64, "hidden": [8], "out": 10}).eval()
    data = export(model, torch.randn(4, 64), tmp_path / "m.onnx").read_bytes()
    assert post(client, checkpoint_file=SimpleUploadedFile("m.onnx", data), dataset="digits").status_code == 302
    onnx_ck = Checkpoint.objects.get()
    assert onnx_ck.source == "onnx"
    response = post(client, "hessian", checkpoint=onnx_ck.slug, dataset="digits")
    assert response.status_code == 400 and "forward-only" in errors(response)
    # Hessian axes of a plane need gradients too (the worker failed: "element 0 of tensors does not require grad")
    response = post(client, checkpoint=onnx_ck.slug, dataset="digits", axes="hessian")
    assert response.status_code == 400 and 'data-field="axes"' in errors(response) and "forward-only" in errors(response)
    assert Job.objects.count() == 1

    # two ONNX graphs cannot be merged (the "tasks" field was blamed: "spec field 'kind' ... got None")
    assert post(client, checkpoint_file=SimpleUploadedFile("m2.onnx", data), dataset="digits").status_code == 302
    response = client.post("/jobs/new/merge/", {"models": [c.slug for c in Checkpoint.objects.all()], "method": "average",
                                                "split": "test", "eval_size": "100", "sweep_steps": "3", "visibility": "private"})
    assert response.status_code == 400 and 'data-field="models"' in errors(response)
    assert "ONNX graphs cannot be merged" in errors(response) and 'data-field="tasks"' not in errors(response)
    assert Job.objects.count() == 2


@pytest.mark.parametrize("case", ["escaping-zip", "pt2", "bad-ids", "too-big", "pickle-only"])
def test_hostile_or_unfitting_uploads_are_refused_by_field(client, user, tmp_path, settings, case):
    client.force_login(user)
    folder = save_tiny("gpt2", tmp_path / "gpt2")
    fields = {"dataset_file": SimpleUploadedFile("tokens.npz", tokens_npz())}
    field = "checkpoint_file"
    if case == "escaping-zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("../../evil.json", "{}")
        fields["checkpoint_file"] = SimpleUploadedFile("evil.zip", buf.getvalue())
        message = "points outside the archive"
    elif case == "pt2":
        fields["checkpoint_file"] = SimpleUploadedFile("model.pt2", b"PK\x03\x04")
        message = "torch.onnx.export"
    elif case == "bad-ids":
        fields = {"checkpoint_file": SimpleUploadedFile("m.zip", zip_folder(folder)),
                  "dataset_file": SimpleUploadedFile("tokens.npz", tokens_npz(bump=1000))}
        field, message = "dataset", "vocab_size"
    elif case == "too-big":
        settings.TERRAIN_MAX_MODEL_PARAMETERS = 100
        fields["checkpoint_file"] = SimpleUploadedFile("m.zip", zip_folder(folder))
        message = "TERRAIN_MAX_MODEL_PARAMETERS"
    else:
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
        fields["checkpoint_file"] = SimpleUploadedFile("m.zip", zip_folder(folder))
        message = "safe_serialization=True"
    response = post(client, **fields)
    assert response.status_code == 400
    text = errors(response)
    assert message in text
    assert f'data-field="{field}"' in text
    assert Job.objects.count() == 0
    if case != "bad-ids":
        assert Checkpoint.objects.count() == 0


def test_cost_limit_uses_counted_flops(client, user, tmp_path, monkeypatch):
    from webapp.landscapes import params

    client.force_login(user)
    folder = save_tiny("gpt2", tmp_path / "gpt2")
    monkeypatch.setattr(params, "MAX_WORK", 1e3)
    response = post(client, checkpoint_file=SimpleUploadedFile("m.zip", zip_folder(folder)),
                    dataset_file=SimpleUploadedFile("tokens.npz", tokens_npz()))
    assert response.status_code == 400
    assert 'data-field="resolution"' in errors(response) and "multiply-adds" in errors(response)
    assert Job.objects.count() == 0


def test_an_upload_over_the_limit_names_the_setting_and_sizes_in_mb(client, user, tmp_path, settings, no_enqueue):
    settings.TERRAIN_MAX_UPLOAD_BYTES = 2_000_000
    client.force_login(user)
    big = SimpleUploadedFile("big.zip", b"PK\x03\x04" + bytes(2_500_000))
    text = errors(post(client, checkpoint_file=big))
    assert ("file is 2.5 MB, above this server's upload limit of 2.0 MB (the setting TERRAIN_MAX_UPLOAD_BYTES raises it)"
            in text), text[:3000]
    files = [SimpleUploadedFile(name, bytes(1_200_000)) for name in ("config.json", "model.safetensors")]
    text = errors(post(client, model_files=files))
    assert "the files add up to 2.4 MB, above this server's upload limit of 2.0 MB" in text
    assert Checkpoint.objects.count() == 0 and Job.objects.count() == 0


def test_the_default_upload_limit_takes_minilm_zipped_with_both_weight_files():
    """README suggests the real all-MiniLM-L6-v2 (model.safetensors and pytorch_model.bin, 91 MB each)."""
    from django.conf import settings

    assert settings.TERRAIN_MAX_UPLOAD_BYTES >= 2 * 91_000_000 + 10_000_000


def test_folder_uploaded_as_its_files(client, user, tmp_path, no_enqueue):
    client.force_login(user)
    page = errors(client.get("/jobs/new/landscape/"))
    assert 'name="model_files"' in page and "multiple" in page
    folder = save_tiny("bert-cls", tmp_path / "bert")
    files = [SimpleUploadedFile(name, (folder / name).read_bytes()) for name in ("config.json", "model.safetensors")]
    X, y, _ = make_data("bert-cls", n=6)
    buf = io.BytesIO()
    np.savez(buf, input_ids=X.numpy(), labels=y.numpy())
    response = post(client, model_files=files, dataset_file=SimpleUploadedFile("cls.npz", buf.getvalue()))
    assert response.status_code == 302, errors(response)[:3000]
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.source == "huggingface" and checkpoint.model_info["head"] == "sequence-classification"


def test_stored_language_model_reloads_although_its_info_records_num_labels(tmp_path):
    """model_info keeps every config's num_labels (2 by transformers' default); a causal LM must not be given it."""
    from analysis.sources import load_model
    from webapp.catalog.model_files import load_path, model_info_of

    folder = save_tiny("gpt2", tmp_path / "gpt2")
    info = model_info_of(load_model(folder))
    assert info["head"] == "causal-lm" and info["num_labels"] == 2
    with zipfile.ZipFile(tmp_path / "gpt2.zip", "w") as z:
        for f in folder.iterdir():
            z.write(f, f"gpt2/{f.name}")
    assert load_path(tmp_path / "gpt2.zip", tmp_path / "work", info=info).provenance["head"] == "causal-lm"
