"""Kinship-guided greedy merging, against a random choice of partners.

Hu et al. (2024), "Exploring Model Kinship for Merging Large Language
Models": repeated greedy merging of the best models stalls once the pool's
members become near copies of one another (high kinship: their deltas from
the base correlate), a local optimum; choosing the next partner by kinship
(the least akin, so the merge gains something new) escapes it.  Kinship here
is the Pearson correlation of the two models' deltas from the base
(:func:`analysis.lineage.kinship.delta_kinship`).

The loop: start from the best-scoring model of the pool; each round pick a
partner among the models not yet tried (by kinship with the current merge,
or at random), merge it with the current members (``merge(states)``: by
default task arithmetic of all their deltas, ``base + lam * sum``), score the
candidate, keep it if the score does not drop.  Each round records
the merged score, the partner's kinship with the current merge and the mean
pairwise kinship of the pool's remaining models with the current merge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from analysis.lineage.kinship import delta_kinship

from ..json_safe import json_safe
from .state_dicts import StateDict
from .task_arithmetic import task_arithmetic

__all__ = ["GreedyRound", "GreedyMerge", "kinship_greedy_merge", "delta_sum_merge"]


@dataclass
class GreedyRound:
    round: int
    partner: str
    kinship: float  # partner vs the current merge
    pool_kinship: float  # mean kinship of the untried models with the current merge, before the pick
    score: float  # of the candidate merge
    accepted: bool
    members: list[str]

    def to_dict(self) -> dict:
        return json_safe(self.__dict__)


@dataclass
class GreedyMerge:
    strategy: str
    start: str
    start_score: float
    rounds: list[GreedyRound] = field(default_factory=list)
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)

    @property
    def final_score(self) -> float:
        accepted = [r.score for r in self.rounds if r.accepted]
        return accepted[-1] if accepted else self.start_score

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "start": self.start, "start_score": self.start_score,
                "final_score": self.final_score, "members": self.members, "rounds": [r.to_dict() for r in self.rounds]}


def delta_sum_merge(base: StateDict, lam: float = 0.5):
    """Merge rule: task arithmetic of the members, ``base + lam * sum_i (member_i - base)``."""

    def merge(states: list[StateDict]) -> dict[str, torch.Tensor]:
        return task_arithmetic(base, states, lam)

    return merge


def kinship_greedy_merge(
    base: StateDict,
    pool: Mapping[str, StateDict],
    score: Callable[[StateDict], float],
    *,
    strategy: str = "kinship",
    merge: Callable[[list[StateDict]], dict[str, torch.Tensor]] | None = None,
    lam: float = 0.5,
    seed: int = 0,
) -> GreedyMerge:
    """Greedy merging over ``pool`` (name -> state); ``strategy`` is ``kinship`` or ``random``.

    ``merge`` (default: task arithmetic with scale ``lam``) turns the members' states into one.
    """
    if strategy not in ("kinship", "random"):
        raise ValueError(f"strategy must be 'kinship' or 'random', got {strategy!r}")
    if len(pool) < 2:
        raise ValueError("greedy merging needs a pool of at least two models")
    merge = merge or delta_sum_merge(base, lam)
    scores = {name: score(state) for name, state in pool.items()}
    start = max(scores, key=scores.get)
    current, current_score, members = dict(pool[start]), scores[start], [start]
    result = GreedyMerge(strategy=strategy, start=start, start_score=current_score)
    untried = [name for name in pool if name != start]
    rng = np.random.default_rng(seed)
    for k in range(1, len(pool)):
        kin = {name: delta_kinship(base, current, pool[name]).pearson for name in untried}
        finite = [v for v in kin.values() if not math.isnan(v)]
        pool_kinship = float(np.mean(finite)) if finite else math.nan
        if strategy == "kinship":
            partner = min(untried, key=lambda n: (math.inf if math.isnan(kin[n]) else kin[n], n))
        else:
            partner = untried[int(rng.integers(len(untried)))]
        untried.remove(partner)
        candidate = merge([pool[name] for name in members + [partner]])
        candidate_score = score(candidate)
        accepted = candidate_score >= current_score
        if accepted:
            current, current_score = candidate, candidate_score
            members = members + [partner]
        result.rounds.append(GreedyRound(k, partner, kin[partner], pool_kinship, candidate_score, accepted, list(members)))
    result.state, result.members = current, members
    return result
