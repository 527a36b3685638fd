"""Timings for the lineage library: snapshot import, layouts, zoo and recovery.

    python benchmarks/bench_lineage.py            # everything (~30 s on a shared 2-core box)
    python benchmarks/bench_lineage.py --no-zoo   # skip training the synthetic zoo

Layout times are the best of ``--repeats`` runs on random trees whose shape
mixes long chains and wide fan-outs, like real model families.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from analysis.lineage.graph import LineageGraph  # noqa: E402
from analysis.lineage.layout import radial_layout, tidy_tree_layout  # noqa: E402


def random_family(n: int, seed: int) -> LineageGraph:
    rng = random.Random(seed)
    graph = LineageGraph()
    graph.add_node("m0")
    for i in range(1, n):
        parent = rng.randrange(max(0, i - 30), i) if rng.random() < 0.6 else rng.randrange(i)
        graph.add_edge(f"m{parent}", f"m{i}", "finetune")
    # a few merges, so the DAG path (primary parents, extra edges) is timed too
    for _ in range(n // 100):
        a, b = sorted(rng.sample(range(n), 2))
        graph.add_edge(f"m{a}", f"m{b}", "merge")
    return graph


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-zoo", action="store_true")
    args = parser.parse_args()

    snapshot = REPO_ROOT / "data" / "hf-lineage"
    if snapshot.exists():
        from analysis.lineage.edge_lists import import_hf_snapshot

        start = time.perf_counter()
        result = import_hf_snapshot(snapshot)
        elapsed = time.perf_counter() - start
        g = result.graph
        families = g.families()
        print(f"snapshot import: {elapsed:.2f} s  nodes={g.num_nodes} edges={g.num_edges} roots={len(g.roots())} "
              f"families={len(families)} largest={families[0].size} ({families[0].label})")
        print(f"  report: {result.report.summary()}")
        t = best_of(lambda: tidy_tree_layout(g, families[0]), args.repeats)
        print(f"  tidy layout of the largest family: {t * 1000:.1f} ms")

    for n in (2_000, 10_000):
        graph = random_family(n, seed=n)
        family = graph.families()[0]
        tidy = best_of(lambda: tidy_tree_layout(graph, family), args.repeats)
        radial = best_of(lambda: radial_layout(graph, family), args.repeats)
        capped = best_of(lambda: tidy_tree_layout(graph, family, max_nodes=500), args.repeats)
        layout = tidy_tree_layout(graph, family)
        print(f"layout n={n}: tidy {tidy * 1000:.0f} ms, radial {radial * 1000:.0f} ms, "
              f"capped at 500 {capped * 1000:.0f} ms; width {layout.x.max():.0f}, depth {layout.depth.max()}, "
              f"{len(layout.extra_edges)} merge edges")

    if not args.no_zoo:
        from analysis.lineage.recovery import recover_lineage, score_recovery
        from analysis.lineage.synthetic_zoo import build_synthetic_zoo

        start = time.perf_counter()
        zoo = build_synthetic_zoo(seed=0)
        built = time.perf_counter() - start
        start = time.perf_counter()
        result = recover_lineage(zoo.state_dicts())
        recovered = time.perf_counter() - start
        score = score_recovery(result, zoo.true_parents(), zoo.true_families())
        print(f"zoo: {len(zoo.models)} models trained in {built:.1f} s; recovery {recovered * 1000:.0f} ms")
        print(f"  clustering pairwise acc {score.pairwise_clustering_accuracy:.3f}, ARI {score.adjusted_rand_index:.3f}, "
              f"directed edges {score.directed_edge_accuracy:.3f}, undirected {score.undirected_edge_accuracy:.3f}, "
              f"roots {score.root_accuracy:.3f}")


if __name__ == "__main__":
    main()
