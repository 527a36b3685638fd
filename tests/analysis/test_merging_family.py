"""Merging on real trained digits models: a family (base + fine-tunes on digit subsets) and two strangers."""

import pytest
import torch

from analysis import data, merging
from analysis.train import train

SPEC = {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}
SUBSETS = [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]


def fine_tune(base_state, classes, seed, epochs=5):
    X, y = data.load("digits", "train")
    keep = torch.isin(y, torch.tensor(classes))
    return train(SPEC, (X[keep], y[keep]), epochs=epochs, lr=0.02, seed=seed, init_state=base_state).model.state_dict()


@pytest.fixture(scope="module")
def family():
    """A briefly trained base and one fine-tune per digit subset (a few seconds)."""
    base = train(SPEC, data.load("digits", "train"), epochs=1, lr=0.02, seed=0).model.state_dict()
    return base, [fine_tune(base, classes, 10 + i) for i, classes in enumerate(SUBSETS)]


def test_task_arithmetic_beats_every_single_fine_tune_on_the_union(family):
    base, fine_tunes = family
    tasks = [merging.digits_task(c) for c in SUBSETS]
    union = merging.union_task(tasks)
    singles = [merging.evaluate_state(ft, [union], spec=SPEC)["union"]["accuracy"] for ft in fine_tunes]
    curve = merging.sweep("task_arithmetic", base=base, models=fine_tunes, tasks=[union], spec=SPEC,
                          values=merging.knob_values("task_arithmetic", 11))
    assert curve.points[0].results["union"] == merging.evaluate_state(base, [union], spec=SPEC)["union"]  # lambda 0
    best = curve.best
    print(f"union accuracy: fine-tunes {singles}, task arithmetic {best.score:.4f} at lambda={best.value:.2f}")
    assert 0 < best.value < 2
    assert best.score > max(singles) + 0.05
    # Each fine-tune is a specialist: it has forgotten the other subset.
    for ft, other in zip(fine_tunes, reversed(tasks)):
        assert merging.evaluate_state(ft, [other], spec=SPEC)[other.name]["accuracy"] < 0.2


def test_kinship_greedy_picks_the_least_akin_partner_first(family):
    base, fine_tunes = family
    twin = fine_tune(base, SUBSETS[0], seed=99)  # a near copy of the first fine-tune's task
    pool = {"low-a": fine_tunes[0], "low-a-twin": twin, "high": fine_tunes[1]}
    union = merging.union_task([merging.digits_task(c) for c in SUBSETS])

    def score(state):
        return merging.evaluate_state(state, [union], spec=SPEC)["union"]["accuracy"]

    guided = merging.kinship_greedy_merge(base, pool, score, strategy="kinship")
    assert guided.start in ("low-a", "low-a-twin", "high")
    first = guided.rounds[0]
    # The partner is the least akin to the start, and the rounds report the pool's kinship.
    assert first.kinship <= first.pool_kinship
    assert len(guided.rounds) == 2 and guided.final_score >= guided.start_score
    if guided.start != "high":
        assert first.partner == "high" and first.accepted
    randomly = merging.kinship_greedy_merge(base, pool, score, strategy="random", seed=1)
    assert sorted([randomly.start] + [r.partner for r in randomly.rounds]) == sorted(pool)
    print(f"greedy: kinship {guided.final_score:.4f} {guided.members}, random {randomly.final_score:.4f} {randomly.members}")


def test_aligned_average_of_two_strangers_beats_the_naive_average():
    X, y = data.load("digits", "train")
    test = merging.Task("test", *data.load("digits", "test"))
    a = train(SPEC, (X, y), epochs=8, lr=0.05, seed=0).model.state_dict()
    b = train(SPEC, (X, y), epochs=8, lr=0.05, seed=1).model.state_dict()
    naive = merging.evaluate_state(merging.weighted_average([a, b]), [test], spec=SPEC)["test"]
    aligned = merging.evaluate_state(merging.aligned_average([a, b], SPEC).state, [test], spec=SPEC)["test"]
    print(f"test loss: naive average {naive['loss']:.4f}, aligned average {aligned['loss']:.4f}")
    assert aligned["loss"] < 0.6 * naive["loss"]
    assert aligned["accuracy"] > naive["accuracy"]
