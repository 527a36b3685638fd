"""Headless Chromium: upload a Hugging Face folder as a .zip with token data, start a plane, watch it refine live."""

import zipfile

import numpy as np
import pytest
import torch
from django.contrib.auth import get_user_model

from tests.browser.conftest import log_in
from tests.browser.test_landscape_page import WATCH_POINTS
from webapp.catalog.models import Checkpoint
from webapp.jobs.models import Job

pytestmark = pytest.mark.browser

RESOLUTION = 17


def _gpt2_folder_zip(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=32, bos_token_id=0, eos_token_id=0))
    folder = tmp_path / "my-gpt2"
    model.save_pretrained(str(folder), safe_serialization=True)
    path = tmp_path / "my-gpt2.zip"
    with zipfile.ZipFile(path, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"my-gpt2/{f.name}")
    ids = torch.randint(1, 96, (24, 24), generator=torch.Generator().manual_seed(1)).numpy()
    np.savez(tmp_path / "tokens.npz", input_ids=ids)
    return path, tmp_path / "tokens.npz"


def test_upload_hugging_face_zip_and_watch_plane_refine(page, tmp_path):
    get_user_model().objects.create_user("byom", password="pw-byom-123")
    model_zip, tokens = _gpt2_folder_zip(tmp_path)
    log_in(page, "byom", "pw-byom-123")
    page.goto("/jobs/new/landscape/")
    page.set_input_files("#id_checkpoint_file", str(model_zip))
    page.set_input_files("#id_dataset_file", str(tokens))
    page.fill("#id_resolution", str(RESOLUTION))
    page.fill("#id_eval_size", "24")
    page.click("#start-job")
    page.wait_for_url("**/r/*/", timeout=60_000)
    page.evaluate(WATCH_POINTS)
    total = RESOLUTION * RESOLUTION
    page.wait_for_function("['succeeded', 'failed'].includes(document.getElementById('job-status').textContent)", polling=250, timeout=180_000)
    job = Job.objects.get(owner__username="byom", kind="landscape")
    assert job.status == "succeeded", job.error
    page.wait_for_function(f"document.getElementById('landscape-chart').dataset.points === '{total}'", timeout=10_000)
    # the server streamed the coarse surface first and refined it (a tiny model's plane can be done before the
    # page's socket connects, and then the browser gets every point in one snapshot: that is not a refinement failure)
    streamed = [e.payload["done"] for e in job.events.filter(kind="points").order_by("seq")]
    assert len(streamed) >= 2 and streamed[0] < total and streamed == sorted(streamed), streamed
    history = page.evaluate("window.__pointHistory")
    assert history and history[-1][0] == total and [n for n, _ in history] == sorted(n for n, _ in history), history
    assert page.js_errors == []

    checkpoint = Checkpoint.objects.get()
    assert checkpoint.source == "huggingface"
    page.goto(checkpoint.get_absolute_url())
    assert page.inner_text("#model-source") == "Hugging Face"
    assert "GPT2LMHeadModel" in page.inner_text("#model-architecture")
    assert page.inner_text("#model-parameters") == str(checkpoint.num_parameters)
