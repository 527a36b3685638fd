"""Benchmark: what sharpness tracking costs during training, and what the warm start saves.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/sharpness_tracking.py [--repeats 3] [--threads N] [--parts ab]

(a) Overhead.  The training job's default run (digits, MLP 64-64-64-10, SGD
    lr 0.05 momentum 0.9, batch 64, 30 epochs = 690 steps, evaluated every
    6 steps as the job does) trained without and with a
    :class:`analysis.sharpness.SharpnessTracker` at several settings, the
    first row being the job's defaults (every 50 steps, a fixed batch of 256
    examples, relative residual 1e-2, no trace).  Runs alternate ``--repeats``
    times and each keeps its best wall time; overhead = tracked / untracked - 1,
    and (steadier on a shared machine) within each tracked run the time spent
    measuring over the time spent on everything else (best over repeats).  Measured at
    torch's default thread count and at one thread (what the tests use).
(b) Warm vs cold Lanczos.  At every 20th step of two runs -- the job's
    default (mini-batch SGD with momentum) and full-batch GD at the edge of
    stability (the test's tanh MLP, 256 digits, one-hot MSE, lr 1.0) -- the
    top eigenvalue on the tracker's batch is computed three ways: a
    reference (cold Lanczos, tol 1e-10), cold Lanczos to the tracker's
    relative residual (1e-2) from a fresh random vector, and warm Lanczos to
    the same residual from the tracker's warm start (the previous
    measurement's top three Ritz vectors summed, plus half a random unit
    vector); at every 20th and every 50th step (the default interval: more
    drift between measurements), and with the bare previous eigenvector.  The same stopping rule bounds
    both errors alike; the table reports Hessian-vector products (HVPs) and
    the largest relative error against the reference.
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
SETTINGS = [  # (label, tracker kwargs); the first is the job's default
    ("default: every 50, batch 256", {}),
    ("every 20, batch 256", {"every": 20}),
    ("every 50, batch 256, trace", {"trace": True}),
]


def job_run(tracker=None):
    X, y = data.load("digits", "train")
    total_steps = 30 * math.ceil(len(X) / 64)
    t0 = time.perf_counter()
    train.train(JOB_SPEC, (X, y), test_data=data.load("digits", "test"), optimizer="sgd", lr=0.05, momentum=0.9,
                batch_size=64, epochs=30, seed=0, eval_every=max(1, total_steps // 100), on_step=tracker)
    return time.perf_counter() - t0


def overhead(repeats: int) -> None:
    X, y = data.load("digits", "train")
    best = {"untracked": math.inf, **{label: math.inf for label, _ in SETTINGS}}
    hvps, share = {}, {label: math.inf for label, _ in SETTINGS}
    for _ in range(repeats):
        best["untracked"] = min(best["untracked"], job_run())
        for label, kwargs in SETTINGS:
            tracker = sharpness.SharpnessTracker((X, y), lr=0.05, optimizer="sgd", momentum=0.9, **kwargs)
            wall = job_run(tracker)
            best[label] = min(best[label], wall)
            # within one run: time spent measuring / time spent on everything else (immune to run-to-run noise)
            share[label] = min(share[label], tracker.seconds / (wall - tracker.seconds))
            hvps[label] = (len(tracker.records), tracker.summary()["matvecs"])
    print(f"  untracked training: {best['untracked']:.2f}s (best of {repeats})")
    print(f"  {'tracker setting':34s} {'wall [s]':>9s} {'vs untracked':>13s} {'measuring/training':>19s} {'measurements':>13s} {'HVPs':>6s}")
    for label, _ in SETTINGS:
        ratio = best[label] / best["untracked"] - 1
        print(f"  {label:34s} {best[label]:9.2f} {100 * ratio:12.1f}% {100 * share[label]:18.1f}% {hvps[label][0]:13d} {hvps[label][1]:6d}")


def warm_vs_cold(name: str, spec: dict, train_data, tracker_data, every: int, mix: float = sharpness.WARM_MIX,
                 keep: int = sharpness.WARM_RITZ_VECTORS, **train_kwargs) -> tuple[int, int]:
    rows = []
    previous = None
    tol, max_iters = sharpness.DEFAULT_TOL, 150

    def measure(step, model, optimizer):
        nonlocal previous
        if step % every:
            return
        op = curvature.HessianOperator(model, None, tracker_data)
        reference = curvature.lanczos(op, 1, tol=1e-10, max_iters=150, seed=12345).eigenvalues[0]
        random_start = torch.randn(op.size, generator=torch.Generator().manual_seed(step), dtype=torch.float64).to(op.dtype)
        cold = sharpness.top_eigenpair(op, random_start, tol=tol, max_iters=max_iters, keep=keep)
        warm = cold if previous is None else sharpness.top_eigenpair(
            op, sharpness.warm_start_vector(previous, step + 1, mix), tol=tol, max_iters=max_iters, keep=keep)
        previous = warm["ritz_vectors"].clone()
        op.release()
        rows.append((step, reference, cold, warm))

    train.train(spec, train_data, seed=0, on_step=measure, **train_kwargs)
    rows = rows[1:]  # step 0 has nothing to warm-start from
    cold_hvps = sum(r[2]["num_matvecs"] for r in rows)
    warm_hvps = sum(r[3]["num_matvecs"] for r in rows)
    cold_err = max(abs(r[2]["eigenvalue"] - r[1]) / abs(r[1]) for r in rows)
    warm_err = max(abs(r[3]["eigenvalue"] - r[1]) / abs(r[1]) for r in rows)
    print(f"  {name}, every {every} steps, warm start from {keep} Ritz vector(s) + {mix:g} random: {len(rows)} measurements, sharpness {rows[0][1]:.3g} -> {rows[-1][1]:.3g}")
    print(f"    cold: {cold_hvps} HVPs ({cold_hvps / len(rows):.1f}/measurement), max rel. error {cold_err:.1e}")
    print(f"    warm: {warm_hvps} HVPs ({warm_hvps / len(rows):.1f}/measurement), max rel. error {warm_err:.1e}")
    print(f"    RATIO warm / cold HVPs = {warm_hvps / cold_hvps:.2f}")
    per_step = np.array([r[3]["num_matvecs"] for r in rows])
    print(f"    warm HVPs per measurement: median {np.median(per_step):.0f}, max {per_step.max()}")
    return warm_hvps, cold_hvps


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
        print(f"\n(a) overhead of tracking in the training job's default run, {threads} thread(s)")
        overhead(args.repeats)

    if "b" not in args.parts:
        return
    torch.set_num_threads(1)
    print(f"\n(b) warm- vs cold-started Lanczos, same stopping rule (relative residual {sharpness.DEFAULT_TOL:g}), 1 thread")
    X, y = data.load("digits", "train")
    job_batch = sharpness.SharpnessTracker((X, y), lr=0.05).batch
    total_steps = 30 * math.ceil(len(X) / 64)
    n = sharpness.EOS_DEMO_EXAMPLES
    Xs, Ys = X[:n], F.one_hot(y[:n], 10).float()
    warm, cold = 0, 0
    # the tracker's warm start at both intervals, then the bare previous eigenvector for comparison
    default = (sharpness.WARM_MIX, sharpness.WARM_RITZ_VECTORS)
    for every, (mix, keep) in ((20, default), (50, default), (20, (0.0, 1))):
        for counts in (
            warm_vs_cold("job default (SGD lr 0.05, momentum 0.9, batch 64; tracker batch 256)", JOB_SPEC, (X, y), job_batch,
                         every, mix, keep, optimizer="sgd", lr=0.05, momentum=0.9, batch_size=64, epochs=30, eval_every=total_steps),
            warm_vs_cold("full-batch GD at the edge of stability (tanh, MSE, lr 1.0)", sharpness.EOS_DEMO_SPEC, (Xs, Ys), (Xs, Ys),
                         every, mix, keep, optimizer="sgd", lr=1.0, momentum=0.0, batch_size=n, steps=400, eval_every=400),
        ):
            if (mix, keep) == default:
                warm, cold = warm + counts[0], cold + counts[1]
    print(f"\n  OVERALL RATIO warm / cold HVPs (tracker's warm start) = {warm / cold:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
