"""Benchmark: what sharpness tracking costs during training, and what the warm start saves.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/sharpness_tracking.py [--repeats 3] [--threads N] [--parts ab]

(a) Overhead.  The training job's default run (digits, MLP 64-64-64-10, SGD
    lr 0.05 momentum 0.9, batch 64, 30 epochs = 690 steps, evaluated every
    6 steps as the job does), and the same run with a small CNN (channels
    16-32), trained without and with a :class:`analysis.sharpness.SharpnessTracker`
    at several settings, the first row being the job's defaults (every 50
    steps, a fixed batch of 256 examples, relative residual 1e-2, cold
    starts, no trace), the second the same with ``warm_start=True`` (the CNN,
    whose products cost ~10x the MLP's, only these two).  Runs
    alternate ``--repeats`` times and each keeps its best wall time; overhead =
    tracked / untracked - 1, and (steadier on a shared machine) within each
    tracked run the time spent measuring over the time spent on everything
    else (best over repeats).  Measured at torch's default thread count and
    at one thread (what the tests use).
(b) Warm vs cold.  In one training run, two trackers with the same settings
    but for ``warm_start`` measure side by side, and a reference (Lanczos to
    relative residual 1e-10) is computed on the same batch at each
    measurement: the job's MLP and CNN runs at the default interval (50)
    and full-batch GD at the edge of stability (the test's tanh MLP, 256
    digits, one-hot MSE, lr 1.0, every 20 steps).  Every Hessian-vector
    product (HVP) either tracker makes is counted (warm: the block's
    products, its expansions and any cold fallback); the table reports HVPs
    and the largest relative error of each against the reference.
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

from analysis import curvature, data, sharpness, train  # noqa: E402

JOB_SPEC = {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}
CNN_SPEC = {"kind": "cnn", "in_channels": 1, "image_size": 8, "channels": [16, 32], "out": 10}
SETTINGS = [  # (label, tracker kwargs); the first is the job's default
    ("default: every 50, batch 256", {}),
    ("every 50, batch 256, warm start", {"warm_start": True}),
    ("every 20, batch 256", {"every": 20}),
    ("every 20, batch 256, warm start", {"every": 20, "warm_start": True}),
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


def warm_vs_cold(name: str, spec: dict, train_data, tracker_data, every: int, **train_kwargs) -> tuple[int, int]:
    """Cold and warm trackers side by side in one run, against a tight reference; returns (warm, cold) HVPs."""
    trackers = {warm: sharpness.SharpnessTracker(tracker_data, lr=train_kwargs["lr"], every=every, batch_size=None,
                                                 warm_start=warm) for warm in (False, True)}
    references = []

    def measure(step, model, optimizer):
        if step % every:
            return
        for tracker in trackers.values():
            tracker(step, model, optimizer)
        op = curvature.HessianOperator(model, None, tracker_data)
        references.append(curvature.lanczos(op, 1, tol=1e-10, max_iters=200, seed=12345).eigenvalues[0])

    train.train(spec, train_data, seed=0, on_step=measure, **train_kwargs)
    # the first measurement is cold for both
    hvps = {warm: sum(r["matvecs"] for r in t.records[1:]) for warm, t in trackers.items()}
    errors = {warm: max(abs(r["sharpness"] - ref) / ref for r, ref in zip(t.records[1:], references[1:]))
              for warm, t in trackers.items()}
    per = np.array([r["matvecs"] for r in trackers[True].records[1:]])
    count = len(per)
    print(f"  {name}, every {every} steps: {count} measurements after the first, sharpness {references[1]:.3g} -> {references[-1]:.3g}")
    for warm, label in ((False, "cold"), (True, "warm")):
        print(f"    {label}: {hvps[warm]:4d} HVPs ({hvps[warm] / count:.1f}/measurement), max rel. error {errors[warm]:.1e}")
    print(f"    RATIO warm / cold HVPs = {hvps[True] / hvps[False]:.2f} (warm per measurement: median {np.median(per):.0f}, max {per.max()})")
    return hvps[True], hvps[False]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for (a)'s first pass (default: torch's)")
    parser.add_argument("--parts", default="ab", help="which parts to run: a (overhead), b (warm vs cold)")
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
    print(f"\n(b) warm- vs cold-started tracking, same stopping rule (relative residual {sharpness.DEFAULT_TOL:g}), 1 thread")
    X, y = data.load("digits", "train")
    job_batch = sharpness.SharpnessTracker((X, y), lr=0.05).batch
    n = sharpness.EOS_DEMO_EXAMPLES
    Xs, Ys = X[:n], F.one_hot(y[:n], 10).float()
    job = dict(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64, epochs=30, eval_every=10_000)
    warm, cold = 0, 0
    for counts in (
        warm_vs_cold("job default MLP (SGD lr 0.05, momentum 0.9, batch 64; tracker batch 256)", JOB_SPEC, (X, y), job_batch,
                     sharpness.DEFAULT_EVERY, **job),
        warm_vs_cold("job default with the CNN 16-32", CNN_SPEC, (X, y), job_batch, sharpness.DEFAULT_EVERY, **job),
        warm_vs_cold("full-batch GD at the edge of stability (tanh MLP, MSE, lr 1.0)", sharpness.EOS_DEMO_SPEC, (Xs, Ys), (Xs, Ys),
                     20, optimizer="sgd", lr=1.0, momentum=0.0, batch_size=n, steps=400, eval_every=400),
    ):
        warm, cold = warm + counts[0], cold + counts[1]
    print(f"\n  OVERALL RATIO warm / cold HVPs = {warm / cold:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
