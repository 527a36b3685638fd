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


def test_lineage_recovery_separates_two_hugging_face_families(tmp_path):
    """Two random-init BERTs, each with two small LoRA children: the families and the base-child
    links come out of the weights alone (as undirected edges: which end is the parent is not
    decided reliably for low-rank children)."""
    from analysis.lineage.recovery import recover_lineage

    from .conftest import save_tiny

    states = {}
    for fam in (0, 1):
        base = save_tiny("bert-cls", tmp_path / f"b{fam}", seed=fam)
        states[f"b{fam}"] = load_model(base).state()
        for child in (0, 1):
            write_adapter(tmp_path / f"a{fam}{child}", base, TARGETS["bert-cls"], alpha=0.1, seed=10 * fam + child)
            states[f"a{fam}{child}"] = load_model(tmp_path / f"a{fam}{child}").state()
    result = recover_lineage(states)
    family = dict(zip(list(states), result.labels))
    assert family["b0"] == family["a00"] == family["a01"] != family["b1"] == family["a10"] == family["a11"]
    links = {frozenset((e.parent, e.child)) for e in result.edges}
    assert links == {frozenset(p) for p in (("b0", "a00"), ("b0", "a01"), ("b1", "a10"), ("b1", "a11"))}
