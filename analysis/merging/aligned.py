"""Permutation-aligned averaging of independently trained models.

Ainsworth, Hayase & Srinivasa (2023), "Git Re-Basin: Merging Models modulo
Permutation Symmetries" (ICLR).  Two networks trained from different seeds
sit in different permutations of the same basin; averaging them unaligned
lands on a barrier.  Here every model is first permuted onto one reference
by weight matching (:func:`analysis.connectivity.weight_matching`), then
averaged.  With three or more models the alignment is refined as in the
paper's MergeMany (Algorithm 3): each model in turn, in a seeded random
order, is matched to the mean of the others, until a whole round changes no
permutation.  Every permuted model computes the same function as before.

Needs the permutation structure of the architecture (the zoo's ``mlp`` and
``cnn`` specs; see :func:`analysis.connectivity.permutation_spec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .average import weighted_average
from .state_dicts import StateDict, check_compatible

__all__ = ["AlignedMerge", "aligned_average", "align_to"]


@dataclass
class AlignedMerge:
    state: dict[str, torch.Tensor]
    aligned: list[dict[str, torch.Tensor]]  # each input after its permutation
    rounds: int
    changed_units: list[int] = field(default_factory=list)  # hidden units moved, per round


def _plain(state: StateDict) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in state.items()}


def align_to(reference: StateDict, state: StateDict, spec: dict, *, seed: int = 0) -> tuple[dict[str, torch.Tensor], int]:
    """``state`` permuted to match ``reference``; also how many hidden units moved."""
    from analysis.connectivity import weight_matching

    alignment = weight_matching(dict(reference), dict(state), spec=spec, seed=seed)
    moved = sum(int((np.asarray(p) != np.arange(len(p))).sum()) for p in alignment.permutations.values())
    permuted = alignment.model.state_dict()
    return {k: permuted[k].detach().to(state[k].dtype).clone() for k in state}, moved


def aligned_average(
    states: Sequence[StateDict],
    spec: dict,
    *,
    weights: Sequence[float] | None = None,
    reference: int = 0,
    max_rounds: int = 10,
    seed: int = 0,
) -> AlignedMerge:
    """Weight-match every model to ``states[reference]``, refine (MergeMany, 3+ models), then average."""
    check_compatible(states)
    if not 0 <= reference < len(states):
        raise ValueError(f"reference must index one of the {len(states)} models, got {reference}")
    aligned = [_plain(s) for s in states]
    moved_first = 0
    for i in range(len(aligned)):
        if i != reference:
            aligned[i], moved = align_to(aligned[reference], aligned[i], spec, seed=seed)
            moved_first += moved
    changed = [moved_first]
    rounds = 1
    if len(aligned) >= 3:
        rng = np.random.default_rng(seed)
        for rounds in range(2, max_rounds + 2):
            moved_round = 0
            for i in rng.permutation(len(aligned)):
                others = [aligned[j] for j in range(len(aligned)) if j != i]
                aligned[i], moved = align_to(weighted_average(others), aligned[i], spec, seed=seed)
                moved_round += moved
            changed.append(moved_round)
            if moved_round == 0:
                break
    return AlignedMerge(state=weighted_average(aligned, weights), aligned=aligned, rounds=rounds, changed_units=changed)
