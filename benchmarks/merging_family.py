"""Figures for the README's merging section (run on demand, a minute on one core).

A digits family: a base trained one epoch on all digits, fine-tunes on different
class subsets.  Prints every method's best score on the union of the subsets
along its main knob, the single fine-tunes' scores, permutation-aligned vs naive
averaging of two independently trained MLPs, and kinship-guided vs random
greedy merging over a pool with near-duplicate fine-tunes.

    .venv/bin/python benchmarks/merging_family.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(1)

from analysis import data, merging  # noqa: E402
from analysis.train import train  # noqa: E402

SPEC = {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}


def fine_tune(base, classes, seed):
    X, y = data.load("digits", "train")
    keep = torch.isin(y, torch.tensor(classes))
    return train(SPEC, (X[keep], y[keep]), epochs=5, lr=0.02, seed=seed, init_state=base).model.state_dict()


def main() -> None:
    X, y = data.load("digits", "train")
    base = train(SPEC, (X, y), epochs=1, lr=0.02, seed=0).model.state_dict()
    halves = [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
    tasks = [merging.digits_task(c) for c in halves]
    union = merging.union_task(tasks)
    fts = [fine_tune(base, c, 10 + i) for i, c in enumerate(halves)]

    def acc(state):
        return merging.evaluate_state(state, [union], spec=SPEC)["union"]["accuracy"]

    print("== base + fine-tunes on digits 0-4 and 5-9; accuracy on the union (test split)")
    print(f"base {acc(base):.4f}; fine-tunes {acc(fts[0]):.4f}, {acc(fts[1]):.4f}")
    for name, method in merging.METHODS.items():
        values = merging.knob_values(name, 21)
        curve = merging.sweep(name, base=base, models=fts, tasks=[union], spec=SPEC, values=values)
        print(f"{method.label:45s} best {curve.best.score:.4f} at {method.knob.name}={curve.best.value:.2f}")

    print("== two digits MLPs trained from seeds 0 and 1 (test loss / accuracy)")
    test = merging.Task("test", *data.load("digits", "test"))
    a = train(SPEC, (X, y), epochs=8, lr=0.05, seed=0).model.state_dict()
    b = train(SPEC, (X, y), epochs=8, lr=0.05, seed=1).model.state_dict()
    for label, state in (("model a", a), ("model b", b), ("naive average", merging.weighted_average([a, b])),
                         ("aligned average", merging.aligned_average([a, b], SPEC).state)):
        r = merging.evaluate_state(state, [test], spec=SPEC)["test"]
        print(f"{label:16s} loss {r['loss']:.4f} accuracy {r['accuracy']:.4f}")

    print("== greedy merging over a pool of 6 fine-tunes (pairs of digits, two of them twice)")
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    pool = {f"{c[0]}{c[1]}": fine_tune(base, c, 20 + i) for i, c in enumerate(pairs)}
    pool["01b"] = fine_tune(base, (0, 1), 40)
    pool["23b"] = fine_tune(base, (2, 3), 41)
    guided = merging.kinship_greedy_merge(base, pool, acc, strategy="kinship")
    print(f"kinship-guided: final {guided.final_score:.4f}, members {guided.members}")
    for r in guided.rounds:
        print(f"  round {r.round}: partner {r.partner} kinship {r.kinship:.3f} pool kinship {r.pool_kinship:.3f} "
              f"score {r.score:.4f} {'kept' if r.accepted else 'rejected'}")
    finals = [merging.kinship_greedy_merge(base, pool, acc, strategy="random", seed=s).final_score for s in range(10)]
    print(f"random partners (10 seeds): final mean {statistics.mean(finals):.4f}, min {min(finals):.4f}, max {max(finals):.4f}")


if __name__ == "__main__":
    main()
