"""Each recovery cue on its own, on constructed weights whose answer is known, then a recipe zoo end to end."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from analysis.lineage.recovery import recover_lineage, score_recovery
from analysis.lineage.recovery_metadata import ModelMetadata
from analysis.lineage.recovery_tree import orient_tree
from analysis.lineage.weight_cues import adapter_evidence, merge_fits, model_stats, parent_preference
from analysis.lineage.weight_sketch import weight_gram
from analysis.lineage.zoo_models import merge_states, quantize_state
from analysis.lineage.zoo_recipes import RECIPES, build_recipe_zoo


def _state(seed: int, scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": scale * torch.randn(64, 96, generator=g), "a.bias": scale * torch.randn(64, generator=g),
            "b.weight": scale * torch.randn(32, 64, generator=g)}


def _plus(base, delta, k=1.0):
    return {name: base[name] + k * delta[name] for name in base}


def test_quantisation_grid_is_found_with_its_bits_and_float_weights_are_not():
    base = _state(0)
    assert model_stats(base, list(base)).bits is None and model_stats(base, list(base)).grid_fraction < 0.05
    for bits in (8, 4):
        q = quantize_state(base, bits)
        stats = model_stats(q, list(q))
        assert stats.quantized and stats.bits == bits


def test_merge_fit_recovers_the_mixing_weight_and_declines_non_merges():
    base = _state(0)
    a, b = _plus(base, _state(1, 0.1)), _plus(base, _state(2, 0.1))
    states = {"base": base, "a": a, "b": b, "m": merge_states(a, b, 0.3), "c": _plus(base, _state(3, 0.1))}
    wg = weight_gram(states, list(states))
    fits = {f.child: f for f in merge_fits(wg.gram, np.arange(5), wg.distances())}
    assert fits[3].parents in ((1, 2), (2, 1)) and fits[3].relative_residual < 1e-6
    assert fits[3].alpha == pytest.approx(0.3 if fits[3].parents == (1, 2) else 0.7, abs=1e-6)
    # The base is the centre of its children, not a convex combination of them.
    assert all(f.relative_residual > 0.3 for v, f in fits.items() if v != 3)


def test_low_rank_update_reads_as_an_adapter_and_a_full_one_does_not():
    base = _state(0)
    g = torch.Generator().manual_seed(5)
    lora = dict(base)
    for name in ("a.weight", "b.weight"):
        out_f, in_f = base[name].shape
        lora[name] = base[name] + 0.05 * torch.randn(out_f, 4, generator=g) @ torch.randn(4, in_f, generator=g)
    evidence = adapter_evidence(base, lora, list(base))
    assert evidence.is_adapter and evidence.max_rank == 4 and evidence.vectors_changed == 0
    full = adapter_evidence(base, _plus(base, _state(7, 0.05)), list(base))
    assert not full.is_adapter and full.max_rank > 16


def test_sibling_geometry_orients_a_star_with_a_chain():
    """root -> c0, c1, c2 (independent updates); c0 -> g (an update that continues c0's)."""
    rng = np.random.default_rng(0)
    d = rng.standard_normal((5, 4000))
    root = rng.standard_normal(4000) * 10
    c = [root + d[i] for i in range(3)]
    g = c[0] + 0.6 * d[0] + 0.8 * d[3]
    X = np.stack([root, *c, g])
    gram = X @ X.T
    tree = nx.Graph([(0, 1), (0, 2), (0, 3), (1, 4)])
    pref = parent_preference(gram, {v: list(tree.neighbors(v)) for v in tree.nodes})
    root_found, margin, arb = orient_tree(tree, pref)
    assert root_found == 0 and set(arb.edges) == {(0, 1), (0, 2), (0, 3), (1, 4)}
    assert all(m > 0 for m in margin.values())


def test_metadata_adds_direction_and_disagreements_are_listed():
    base = _state(0)
    states = {"root": base, "x": _plus(base, _state(1, 0.05)), "y": _plus(base, _state(2, 0.05))}
    metadata = {"root": ModelMetadata(uploaded_at=1.0), "x": ModelMetadata(("root",), "finetune", 2.0),
                "y": {"declared_parents": ["x"], "uploaded_at": 3.0}}
    result = recover_lineage(states, metadata=metadata)
    assert {(e.parent, e.child) for e in result.edges} == {("root", "x"), ("root", "y")}
    assert [(d.child, d.kind, d.metadata_parent) for d in result.disagreements] == [("y", "declared_parent", "x")]


def test_sketched_distances_match_exact_ones():
    states = {f"m{i}": _plus(_state(0), _state(10 + i, 0.1)) for i in range(5)}
    exact = weight_gram(states, list(states), sketch_dim=None)
    sketched = weight_gram(states, list(states), sketch_dim=2048)
    assert sketched.sketched and not exact.sketched
    np.testing.assert_allclose(sketched.distances(), exact.distances(), rtol=0.1, atol=1e-9)


def test_a_small_recipe_zoo_is_recovered_with_its_relations():
    zoo = build_recipe_zoo("mixed_everything", 0, archs=("mlp:32", "cnn:4"), n_families=2, children=2,
                           grandchildren=1, root_steps=300, child_steps=60, quantized=(8, 4), merges=1)
    relations = {m.name: m.relation for m in zoo.models}
    assert set(relations.values()) == {None, "finetune", "adapter", "quantized", "merge"}
    again = build_recipe_zoo("mixed_everything", 0, archs=("mlp:32", "cnn:4"), n_families=2, children=2,
                             grandchildren=1, root_steps=300, child_steps=60, quantized=(8, 4), merges=1)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for a, b in zip(zoo.models, again.models)
               for k in a.state_dict)
    result = recover_lineage(zoo.state_dicts())
    score = score_recovery(result, zoo.true_parents(), zoo.true_families(), relations)
    found = {(e.parent, e.child): e.relation for e in result.edges}
    for m in zoo.models:
        if m.relation in ("quantized", "merge"):
            assert all(found.get((p, m.name)) == m.relation for p in m.parents), m.name
    assert score.pairwise_clustering_accuracy == 1.0 and score.directed_edge_accuracy >= 0.8
    assert len(RECIPES) >= 8 and sum(r.held_out for r in RECIPES.values()) == 2
