"""Weight matching on Hugging Face models: every listed permutation (MLP units, attention heads,
ResNet block channels) leaves the outputs unchanged to 1e-5, and matching a permuted copy recovers it."""

import copy

import numpy as np
import pytest
import torch

from analysis import connectivity
from analysis.sources import load_model
from analysis.sources.permutations import permutation_spec_for

from .conftest import make_data

KINDS = {"gpt2": {"mlp", "head"}, "bert-cls": {"mlp", "head"}, "bert-mlm": {"mlp", "head"}, "resnet": {"block"},
         "llama": {"mlp"}, "gpt_neox": {"mlp"}, "roberta-mlm": {"mlp", "head"}, "distilbert-cls": {"mlp", "head"}}


def _random_perms(ps, seed=0):
    rng = np.random.default_rng(seed)
    perms = {}
    for name, n in ps.perms.items():
        p = rng.permutation(n)
        while n > 1 and (p == np.arange(n)).all():
            p = rng.permutation(n)
        perms[name] = p
    return perms


@pytest.mark.parametrize("family", list(KINDS))
def test_permuted_model_computes_the_same_outputs(tiny_folders, family):
    lm = load_model(tiny_folders[family])
    ps = permutation_spec_for(lm.module)
    assert {name.rstrip("0123456789.").split(".")[0].rstrip("0123456789") for name in ps.perms} == KINDS[family]
    state = lm.module.state_dict()
    permuted = connectivity.apply_permutations(state, ps, _random_perms(ps))
    other = copy.deepcopy(lm.module)
    other.load_state_dict(permuted)
    moved = max(float((permuted[k] - state[k]).abs().max()) for k in ps.axes if state[k].is_floating_point() and state[k].dim())
    assert moved > 1e-3  # the permutation really moved weights
    X, y, _ = make_data(family)
    with torch.no_grad():
        torch.testing.assert_close(other(X), lm.module(X), atol=1e-5, rtol=0)

    # matching the permuted copy back onto the original recovers the original weights
    al = connectivity.weight_matching(lm, other)
    back = al.model.state_dict()
    for k, v in state.items():
        if v.is_floating_point():
            torch.testing.assert_close(back[k], v, atol=1e-6, rtol=0)


def test_connectivity_of_two_hugging_face_models_after_alignment(tiny_folders):
    lm = load_model(tiny_folders["bert-cls"])
    ps = permutation_spec_for(lm.module)
    other = copy.deepcopy(lm.module)
    other.load_state_dict(connectivity.apply_permutations(lm.module.state_dict(), ps, _random_perms(ps, seed=5)))
    X, y, _ = make_data("bert-cls")
    res = connectivity.align_and_compare(lm, other, (X, y), steps=5)
    assert res["max_output_difference"] < 1e-5
    assert res["barrier_aligned"] == pytest.approx(0.0, abs=1e-6)  # aligned: the same point twice
    assert res["barrier_naive"] > res["barrier_aligned"]
