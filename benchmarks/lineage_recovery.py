"""Lineage recovery from weights, scored per zoo recipe, plus a 1,000-model scale run.

    .venv/bin/python benchmarks/lineage_recovery.py                 # every recipe, seeds 0-2, and the scale run
    .venv/bin/python benchmarks/lineage_recovery.py --recipes cnn --seeds 0 --no-scale

Per recipe and seed: a zoo from ``analysis.lineage.zoo_recipes`` is trained,
recovered from its weights alone, and scored: pairwise clustering accuracy
(Rand index), directed-edge accuracy (a merge has one true edge per
parent), root accuracy, relation accuracy (edge and relation right).
Recipes marked held out were not looked at while the cues were tuned; their
rows are reported separately.  The scale run recovers 1,000 same-architecture
models with count-sketched distances and reports time and memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.lineage.recovery import recover_lineage, score_recovery  # noqa: E402
from analysis.lineage.zoo_recipes import RECIPES, build_recipe_zoo  # noqa: E402

TARGETS = {"clustering": 0.95, "directed": 0.85}


def score_zoo(zoo, **kwargs):
    start = time.perf_counter()
    result = recover_lineage(zoo.state_dicts(), **kwargs)
    seconds = time.perf_counter() - start
    relations = {m.name: m.relation for m in zoo.models}
    return score_recovery(result, zoo.true_parents(), zoo.true_families(), relations), seconds


def recipe_rows(names: list[str], seeds: list[int]) -> list[dict]:
    rows = []
    for name in names:
        scores, train_s, recover_s, n_models = [], 0.0, 0.0, 0
        for seed in seeds:
            start = time.perf_counter()
            zoo = build_recipe_zoo(name, seed)
            train_s += time.perf_counter() - start
            score, seconds = score_zoo(zoo)
            recover_s += seconds
            n_models = len(zoo.models)
            scores.append(score)
        row = {
            "recipe": name, "held_out": RECIPES[name].held_out, "models": n_models,
            "clustering": float(np.mean([s.pairwise_clustering_accuracy for s in scores])),
            "directed": float(np.mean([s.directed_edge_accuracy for s in scores])),
            "directed_min": float(np.min([s.directed_edge_accuracy for s in scores])),
            "roots": float(np.mean([s.root_accuracy for s in scores])),
            "relations": float(np.mean([s.relation_accuracy for s in scores])),
            "undirected": float(np.mean([s.undirected_edge_accuracy for s in scores])),
            "train_s": train_s / len(seeds), "recover_s": recover_s / len(seeds),
        }
        rows.append(row)
        print(f"  {name}: directed {row['directed']:.3f} (min {row['directed_min']:.3f}), clustering "
              f"{row['clustering']:.3f}, roots {row['roots']:.3f}, relations {row['relations']:.3f}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| recipe | models | clustering | directed edges (min seed) | roots | relations | undirected | "
             "train s | recover s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        flag = " (held out)" if r["held_out"] else ""
        lines.append(f"| {r['recipe']}{flag} | {r['models']} | {r['clustering']:.3f} | {r['directed']:.3f} "
                     f"({r['directed_min']:.3f}) | {r['roots']:.3f} | {r['relations']:.3f} | {r['undirected']:.3f} | "
                     f"{r['train_s']:.1f} | {r['recover_s']:.2f} |")
    for label, part in (("tuned on", [r for r in rows if not r["held_out"]]),
                        ("held out", [r for r in rows if r["held_out"]]), ("all", rows)):
        if part:
            lines.append(f"| **total, {label}** | {sum(r['models'] for r in part)} | "
                         f"{np.mean([r['clustering'] for r in part]):.3f} | {np.mean([r['directed'] for r in part]):.3f} "
                         f"({min(r['directed_min'] for r in part):.3f}) | {np.mean([r['roots'] for r in part]):.3f} | "
                         f"{np.mean([r['relations'] for r in part]):.3f} | {np.mean([r['undirected'] for r in part]):.3f} | | |")
    return "\n".join(lines)


def scale_run(n_families: int, seed: int, sketch_dim: int) -> str:
    """1,000 models of one architecture (20 families x 50) recovered with count-sketched distances."""
    start = time.perf_counter()
    zoo = build_recipe_zoo("adam_short", seed, archs=("mlp:128",), n_families=n_families, children=7,
                           grandchildren=6, root_steps=200, child_steps=30)
    trained = time.perf_counter() - start
    n = len(zoo.models)
    last = [0.0]

    def progress(event: dict) -> None:
        now = time.perf_counter()
        if event["stage"] == "reading" and (event["done"] % 250 == 0 or event["done"] == event["total"]):
            print(f"    read {event['done']}/{event['total']} models ({now - t0:.1f} s)", flush=True)
        elif event["stage"] == "family" and now - last[0] > 5:
            last[0] = now
            print(f"    family {event['done']}/{event['total']} ({now - t0:.1f} s)", flush=True)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    result = recover_lineage(zoo.state_dicts(), sketch_dim=sketch_dim, on_progress=progress)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    relations = {m.name: m.relation for m in zoo.models}
    s = score_recovery(result, zoo.true_parents(), zoo.true_families(), relations)
    params = sum(v.numel() for v in zoo.models[0].state_dict.values())
    weights_mb = n * params * 4 / 2**20
    return (f"| {n} models x {params} parameters ({weights_mb:.0f} MB of float32 weights), sketch {sketch_dim} "
            f"(sketched: {result.sketched}) | trained in {trained:.0f} s | recovered in **{seconds:.1f} s** | "
            f"peak traced allocations {peak / 2**20:.0f} MB, process peak RSS {rss_after / 1024:.0f} MB "
            f"(+{(rss_after - rss_before) / 1024:.0f} MB) | clustering {s.pairwise_clustering_accuracy:.3f}, "
            f"directed {s.directed_edge_accuracy:.3f}, roots {s.root_accuracy:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument("--scale-families", type=int, default=20)
    parser.add_argument("--sketch-dim", type=int, default=4096)
    args = parser.parse_args()
    names = [n for n in args.recipes.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"recipes {names}, seeds {seeds}", flush=True)
    rows = recipe_rows(names, seeds)
    print()
    print(table(rows))
    missed = [r["recipe"] for r in rows if r["clustering"] < TARGETS["clustering"] or r["directed"] < TARGETS["directed"]]
    print(f"\ntargets clustering >= {TARGETS['clustering']}, directed >= {TARGETS['directed']} (mean of seeds): "
          + ("met on every recipe" if not missed else f"missed on {', '.join(missed)}"))
    if not args.no_scale:
        print("\nscale run:", flush=True)
        print(scale_run(args.scale_families, 0, args.sketch_dim))


if __name__ == "__main__":
    main()
