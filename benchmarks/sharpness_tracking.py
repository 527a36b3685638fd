"""Benchmark: what sharpness tracking costs during training, and what the warm start saves.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/sharpness_tracking.py [--repeats 3] [--threads N] [--parts ab] [--every N ...]

(a) Overhead.  The training job's default run (digits, MLP 64-64-64-10, SGD
    lr 0.05 momentum 0.9, batch 64, 30 epochs = 690 steps, evaluated every
    6 steps as the job does), and the same run with a small CNN (channels
    16-32), trained without and with a :class:`analysis.sharpness.SharpnessTracker`
    at several settings, the first row being the job's defaults (every 50
    steps, a fixed batch of 256 examples, relative residual 3e-3, warm
    starts, no trace), the second the former default (cold starts at 1e-2; the CNN,
    whose products cost ~10x the MLP's, only these two).  Runs
    alternate ``--repeats`` times and each keeps its best wall time; overhead =
    tracked / untracked - 1, and (steadier on a shared machine) within each
    tracked run the time spent measuring over the time spent on everything
    else (best over repeats).  Measured at torch's default thread count and
    at one thread (what the tests use).
(b) Warm vs cold at the same accuracy.  In one training run, trackers that
    differ only in ``warm_start`` and ``tol`` (1e-2, 3e-3, 1e-3) measure side
    by side, and a reference (Lanczos to relative residual 1e-10) is computed
    on the same batch at each measurement.  Runs: the job's MLP (seeds 0 and
    1) and CNN at the default interval (50), and full-batch GD on 256 digits
    (one-hot MSE, every 20 steps) with the tanh MLP at lr 1.0 (edge of
    stability; seeds 0 and 1) and 0.25 (sharpening only) and with the CNN at
    lr 0.5 (edge of stability) and 0.1; ``--every N`` measures every run every
    N steps instead.  Two ratios of Hessian-vector products (HVPs), counting
    every product (warm: the block's products, its expansions and any cold
    fallback), over the measurements after the first (cold for all):
    * intrinsic: each start as the trackers make it (cold: the seeded random
      vector; warm: :func:`analysis.warm_start.warm_top_eigenpair` from the
      warm tracker's previous top-3 Ritz pairs; also, from the same vectors,
      the former warm start -- Rayleigh-Ritz on all three -- and Lanczos
      from the previous top vector alone) run with no stopping rule,
      counting the products until the top Ritz value is first within 1e-3
      (relative) of the reference -- what any stopping rule needs at least;
    * same accuracy with a stopping rule: each start at the loosest ``tol``
      whose every measurement of the run came within 1e-3 of the reference.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from analysis import curvature, data, sharpness, train, warm_start  # noqa: E402

JOB_SPEC = {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}
CNN_SPEC = {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [16, 32], "out": 10}
# (b): the accuracy both starts must reach, the tolerances tried (loosest first), the products each start may
# take without a stopping rule, and the trackers' product cap (above the default 20: no run ends unconverged)
ERROR_TARGET = 1e-3
TOLS = (1e-2, 3e-3, 1e-3)
TRAJECTORY = 40
STOP_MAX_ITERS = 60
STARTS = ("cold", "warm", "three-vector block", "top vector")
SETTINGS = [  # (label, tracker kwargs); the first is the job's default
    ("default: every 50, batch 256, warm, tol 3e-3", {}),
    ("every 50, batch 256, cold, tol 1e-2 (old default)", {"warm_start": False, "tol": 1e-2}),
    ("every 20, batch 256, warm, tol 3e-3", {"every": 20}),
    ("every 20, batch 256, cold, tol 1e-2", {"every": 20, "warm_start": False, "tol": 1e-2}),
    ("every 50, batch 256, trace", {"trace": True}),
]


def job_run(spec, tracker=None):
    X, y = data.load("digits", "train")
    total_steps = 30 * math.ceil(len(X) / 64)
    t0 = time.perf_counter()
    train.train(spec, (X, y), test_data=data.load("digits", "test"), optimizer="sgd", lr=0.05, momentum=0.9,
                batch_size=64, epochs=30, seed=0, eval_every=max(1, total_steps // 100), on_step=tracker)
    return time.perf_counter() - t0


def overhead(spec: dict, repeats: int, settings: list) -> None:
    X, y = data.load("digits", "train")
    best = {"untracked": math.inf, **{label: math.inf for label, _ in settings}}
    hvps, share = {}, {label: math.inf for label, _ in settings}
    for _ in range(repeats):
        best["untracked"] = min(best["untracked"], job_run(spec))
        for label, kwargs in settings:
            tracker = sharpness.SharpnessTracker((X, y), lr=0.05, optimizer="sgd", momentum=0.9, **kwargs)
            wall = job_run(spec, tracker)
            best[label] = min(best[label], wall)
            # within one run: time spent measuring / time spent on everything else (immune to run-to-run noise)
            share[label] = min(share[label], tracker.seconds / (wall - tracker.seconds))
            hvps[label] = (len(tracker.records), tracker.summary()["matvecs"])
    print(f"  untracked training: {best['untracked']:.2f}s (best of {repeats})")
    print(f"  {'tracker setting':34s} {'wall [s]':>9s} {'vs untracked':>13s} {'measuring/training':>19s} {'measurements':>13s} {'HVPs':>6s}")
    for label, _ in settings:
        ratio = best[label] / best["untracked"] - 1
        print(f"  {label:34s} {best[label]:9.2f} {100 * ratio:12.1f}% {100 * share[label]:18.1f}% {hvps[label][0]:13d} {hvps[label][1]:6d}")


def products_to(history: list, reference: float, target: float) -> int | None:
    """Products after which the top Ritz value is first within ``target`` (relative) of ``reference``."""
    return next((k for k, theta, _ in history if abs(theta - reference) <= target * abs(reference)), None)


def warm_vs_cold(name: str, spec: dict, train_data, tracker_data, every: int, seed: int = 0, **train_kwargs) -> dict:
    """Cold and warm starts side by side in one run, scored against a tight reference; returns HVP totals."""
    lr = train_kwargs["lr"]

    def tracker(**kwargs):
        return sharpness.SharpnessTracker(tracker_data, lr=lr, every=every, batch_size=None, seed=seed,
                                          max_iters=STOP_MAX_ITERS, **kwargs)

    trackers = {(label, tol): tracker(tol=tol, warm_start=label == "warm") for label in ("cold", "warm") for tol in TOLS}
    warm_tracker = trackers[("warm", TOLS[0])]
    rows = []

    def measure(step, model, optimizer):
        if step % every:
            return
        op = curvature.HessianOperator(model, None, tracker_data)
        reference = curvature.lanczos(op, 1, tol=1e-10, max_iters=200, seed=12345)
        row = {"reference": float(reference.eigenvalues[0]), "vector": reference.eigenvectors[:, 0].detach()}
        previous = warm_tracker._previous.get("sharpness")
        if previous is not None:
            # each start as the trackers make it, run with no stopping rule: products to reach the error target
            start_seed = seed + len(warm_tracker.records)
            v0 = torch.randn(op.size, generator=torch.Generator().manual_seed(start_seed), dtype=torch.float64)
            histories = {label: [] for label in STARTS}
            sharpness.top_eigenpair(op, v0.to(op.dtype), tol=0.0, max_iters=TRAJECTORY, seed=start_seed, history=histories["cold"])
            warm_start.warm_top_eigenpair(op, previous, tol=0.0, max_iters=TRAJECTORY, history=histories["warm"])
            # the former warm start (Rayleigh-Ritz on all three previous Ritz vectors), and Lanczos from the top one alone
            sharpness.block_top_eigenpair(op, previous["vectors"], tol=0.0, max_iters=TRAJECTORY,
                                          history=histories["three-vector block"])
            sharpness.top_eigenpair(op, previous["vectors"][:, 0].clone(), tol=0.0, max_iters=TRAJECTORY,
                                    history=histories["top vector"])
            row["to_target"] = {label: products_to(h, row["reference"], ERROR_TARGET) or math.inf
                                for label, h in histories.items()}
        op.release()
        rows.append(row)
        for t in trackers.values():
            t(step, model, optimizer)

    train.train(spec, train_data, seed=seed, on_step=measure, **train_kwargs)
    later = rows[1:]  # the first measurement is cold for every tracker
    overlaps = np.array([abs(float(a["vector"] @ b["vector"])) for a, b in zip(rows, later)])
    to_target = {label: sum(r["to_target"][label] for r in later) for label in STARTS}
    print(f"  {name}, seed {seed}, every {every} steps: {len(later)} measurements after the first, sharpness "
          f"{later[0]['reference']:.3g} -> {later[-1]['reference']:.3g}; |<top eigenvector, previous one>| median "
          f"{np.median(overlaps):.2f} (min {overlaps.min():.2f})")
    print(f"    no stopping rule, HVPs until within {ERROR_TARGET:g} of the reference: cold {to_target['cold']} "
          f"({to_target['cold'] / len(later):.1f}/measurement), warm {to_target['warm']} "
          f"({to_target['warm'] / len(later):.1f}); INTRINSIC RATIO warm / cold = {to_target['warm'] / to_target['cold']:.2f} "
          f"(three-vector block: {to_target['three-vector block'] / to_target['cold']:.2f}, previous top vector alone: "
          f"{to_target['top vector'] / to_target['cold']:.2f})")
    stopped = {}
    for (label, tol), t in trackers.items():
        errors = np.array([abs(r["sharpness"] - ref["reference"]) / ref["reference"] for r, ref in zip(t.records[1:], later)])
        hvps = sum(r["matvecs"] for r in t.records[1:])
        stopped[(label, tol)] = (hvps, errors.max())
        print(f"    {label} tracker, tol {tol:g}: {hvps:4d} HVPs ({hvps / len(later):.1f}/measurement), max rel. error "
              f"{errors.max():.1e}, {int((errors > ERROR_TARGET).sum())} measurement(s) off by more than {ERROR_TARGET:g}")
    # each start at the loosest tolerance that met the target at every measurement of this run (the tightest if none did)
    fair = {label: next((tol for tol in TOLS if stopped[(label, tol)][1] <= ERROR_TARGET), TOLS[-1]) for label in ("cold", "warm")}
    hvps = {label: stopped[(label, fair[label])][0] for label in fair}
    print(f"    SAME-ACCURACY RATIO warm (tol {fair['warm']:g}) / cold (tol {fair['cold']:g}) = {hvps['warm'] / hvps['cold']:.2f}")
    return {"intrinsic": (to_target["warm"], to_target["cold"]), "stopped": (hvps["warm"], hvps["cold"]),
            "intrinsic, three-vector block": (to_target["three-vector block"], to_target["cold"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for (a)'s first pass (default: torch's)")
    parser.add_argument("--parts", default="ab", help="which parts to run: a (overhead), b (warm vs cold)")
    parser.add_argument("--every", type=int, nargs="+", default=None,
                        help="(b): measure every N steps in every run instead of each run's own interval")
    args = parser.parse_args()
    default_threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, {default_threads} threads by default")
    for threads in dict.fromkeys([1, default_threads]) if "a" in args.parts else ():
        torch.set_num_threads(threads)
        # the CNN's products cost ~10x the MLP's: only the default interval, cold and warm
        for label, spec, settings in (("MLP 64-64-64-10", JOB_SPEC, SETTINGS), ("CNN 16-32", CNN_SPEC, SETTINGS[:2])):
            print(f"\n(a) overhead of tracking in the training job's default run, {label}, {threads} thread(s)")
            overhead(spec, args.repeats, settings)

    if "b" not in args.parts:
        return
    torch.set_num_threads(1)
    print(f"\n(b) warm- vs cold-started tracking at the same accuracy (relative error <= {ERROR_TARGET:g} against Lanczos "
          f"to 1e-10), 1 thread")
    X, y = data.load("digits", "train")
    job_batch = sharpness.SharpnessTracker((X, y), lr=0.05).batch
    n = sharpness.EOS_DEMO_EXAMPLES
    Xs, Ys = X[:n], F.one_hot(y[:n], 10).float()
    job = dict(optimizer="sgd", momentum=0.9, batch_size=64, epochs=30, eval_every=10_000)
    gd = dict(optimizer="sgd", momentum=0.0, batch_size=n, steps=400, eval_every=400)
    runs = [  # (name, spec, training data, tracker batch, interval, seeds, training kwargs)
        ("job default MLP (SGD lr 0.05, momentum 0.9, batch 64; tracker batch 256)", JOB_SPEC, (X, y), job_batch,
         sharpness.DEFAULT_EVERY, (0, 1), dict(job, lr=0.05)),
        ("job default with the CNN 16-32", CNN_SPEC, (X, y), job_batch, sharpness.DEFAULT_EVERY, (0,), dict(job, lr=0.05)),
        ("full-batch GD, tanh MLP, MSE, lr 1.0 (edge of stability)", sharpness.EOS_DEMO_SPEC, (Xs, Ys), (Xs, Ys), 20, (0, 1),
         dict(gd, lr=1.0)),
        ("full-batch GD, tanh MLP, MSE, lr 0.25 (sharpening only)", sharpness.EOS_DEMO_SPEC, (Xs, Ys), (Xs, Ys), 20, (0,),
         dict(gd, lr=0.25)),
        ("full-batch GD, CNN 16-32, MSE, lr 0.5 (edge of stability)", CNN_SPEC, (Xs, Ys), (Xs, Ys), 20, (0,), dict(gd, lr=0.5)),
        ("full-batch GD, CNN 16-32, MSE, lr 0.1 (sharpening only)", CNN_SPEC, (Xs, Ys), (Xs, Ys), 20, (0,), dict(gd, lr=0.1)),
    ]
    totals = {"intrinsic": [0, 0], "stopped": [0, 0], "intrinsic, three-vector block": [0, 0]}
    for name, spec, train_data, batch, every, seeds, kwargs in runs:
        for interval in args.every or [every]:
            for seed in seeds:
                counts = warm_vs_cold(name, spec, train_data, batch, interval, seed=seed, **kwargs)
                for key, (warm, cold) in counts.items():
                    totals[key][0] += warm
                    totals[key][1] += cold
    print("\n  OVERALL warm / cold HVPs (target <= 0.5): " + ", ".join(f"{key} {w / c:.2f}" for key, (w, c) in totals.items()))


if __name__ == "__main__":
    main()
