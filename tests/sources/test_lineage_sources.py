"""Kinship between relatives brought in as Hugging Face folders and LoRA adapters (state dicts of LoadedModels)."""

import pytest

from analysis.lineage.kinship import delta_kinship
from analysis.sources import load_model

from .test_lora import TARGETS, write_adapter


def test_lora_kinship_known_answers(tiny_folders, tmp_path):
    base = tiny_folders["bert-cls"]
    write_adapter(tmp_path / "a", base, TARGETS["bert-cls"], alpha=4, seed=0)
    write_adapter(tmp_path / "b", base, TARGETS["bert-cls"], alpha=4, seed=7)
    write_adapter(tmp_path / "a2", base, TARGETS["bert-cls"], alpha=12, seed=0)  # the same update, three times as strong
    states = {k: load_model(tmp_path / k).state() for k in ("a", "b", "a2")}
    root = load_model(base).state()
    same = delta_kinship(root, states["a"], states["a2"])
    assert same.overall.cosine == pytest.approx(1.0, abs=1e-5)
    assert same.overall.euclidean > 0
    unrelated = delta_kinship(root, states["a"], states["b"])
    assert abs(unrelated.overall.cosine) < 0.5
    touched = {layer.name for layer in same.layers if layer.similarity.cosine == pytest.approx(1.0, abs=1e-4)}
    assert {f"model.{t}.weight" for t in TARGETS["bert-cls"]} <= touched
