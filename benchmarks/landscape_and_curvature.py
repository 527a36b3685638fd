"""Benchmark: Terrain's analysis library against loss-landscapes and PyHessian.

Run on demand (it is not part of the test suite)::

    .venv/bin/python benchmarks/landscape_and_curvature.py [--threads N] [--resolution 51]

It pip-installs the peers (``loss-landscapes==3.0.6``, ``pyhessian==0.1``,
with ``--no-deps`` so torch/numpy stay as they are) into ``var/benchmark-peers``
(never into the shared virtualenv) if they are missing, then measures, on the same model (digits MLP
64-256-256-10 trained 30 epochs, seed 0) and all 1797 digits samples:

(a) a 51x51 random filter-normalised plane: our points/s vs loss-landscapes'
    ``random_plane`` points/s; that our points equal direct evaluations at
    their coordinates while theirs are shifted on alternate rows (their
    zig-zag walk steps before the first evaluation of every even row); the
    fraction of dense-GEMM throughput achieved (forward-pass FLOPs / measured
    GEMM FLOP/s); time to the first full coarse surface as a fraction of the
    total.
(b) top-5 Hessian eigenvalues to 1e-3 relative: our Lanczos vs PyHessian's
    ``hessian(...).eigenvalues(top_n=5)`` at its defaults (power iteration
    with deflation): Hessian-vector products (PyHessian's counted by wrapping
    its ``hessian_vector_product``) and wall time, with both results checked
    against a tight reference (our Lanczos at tol 1e-10).
(c) trace at an equal budget of 60 products over 20 seeds on a model small
    enough for the exact trace (digits MLP 64-16-10, 1,210 parameters):
    Hutch++ error / Hutchinson error (and PyHessian's Hutchinson ``trace``).
(d) peak memory of each measurement: every measurement runs in its own
    spawned process; a thread samples resident memory (``/proc/self/statm``)
    every 2 ms and the peak above the level at the start of the measurement
    is reported (tracemalloc cannot see torch's allocations).

Other work may share the machine: (a) and (b) alternate ours and the peer's
``--repeats`` times (default 3) and keep each one's best run; ``--threads``
sets torch's thread count for every process (default: torch's default);
``--parts`` picks a subset of a/b/c.

PyHessian 0.1 and loss-landscapes 3.0.6 run unmodified on torch 2.13 /
numpy 2 here; the only runtime patch is the product counter.  Nothing in
site-packages is edited.
"""

from __future__ import annotations

import os
import argparse
import copy
import importlib.util
import math
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PEERS = {"loss_landscapes": "loss-landscapes==3.0.6", "pyhessian": "pyhessian==0.1"}
SPEC = {"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10}
SMALL_SPEC = {"kind": "mlp", "in": 64, "hidden": [16], "out": 10}


PEER_DIR = ROOT / "var" / "benchmark-peers"  # the peers live here, never in the shared virtualenv


def ensure_peers() -> None:
    """Install the peers into PEER_DIR (``--no-deps``: torch and numpy stay the venv's) and put it on the path;
    spawned measurement processes inherit the path."""
    if str(PEER_DIR) not in sys.path:
        sys.path.insert(0, str(PEER_DIR))
    missing = [pkg for mod, pkg in PEERS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        print(f"installing peers into {PEER_DIR}: {' '.join(missing)}", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(PEER_DIR),
                               *missing])
        importlib.invalidate_caches()


# --------------------------------------------------------------------------- child-process helpers


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms by a thread
    (torch allocations are invisible to tracemalloc; ru_maxrss would include setup)."""

    def __enter__(self):
        import threading

        self.base = _current_rss_mb()
        self.peak = self.base
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, _current_rss_mb())
                self._stop.wait(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_mb())
        self.increase = self.peak - self.base
        self.max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _setup(threads: int, path: str):
    import torch

    torch.set_num_threads(threads)
    from analysis import checkpoints, data

    model, spec, _ = checkpoints.load(path)
    X, y = data.load("digits", "all")
    return torch, model, X, y


def _child(fn, args, queue):
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - report anything to the parent
        import traceback

        queue.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def run_isolated(fn, *args):
    """Run ``fn(*args)`` in a fresh spawned process (so peak RSS is its own)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    status, payload = q.get()
    p.join()
    if status != "ok":
        raise RuntimeError(payload)
    return payload


# --------------------------------------------------------------------------- (a) planes


def forward_flops(n: int, sizes: list[int]) -> float:
    return 2.0 * n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def task_gemm_rate(threads: int, path: str) -> dict:
    torch, model, X, y = _setup(threads, path)
    A = torch.randn(X.shape[0], 256)
    B = torch.randn(256, 256)
    for _ in range(5):
        A @ B
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        reps = 0
        while time.perf_counter() - t0 < 0.4:
            A @ B
            reps += 1
        best = max(best, 2 * A.shape[0] * 256 * 256 * reps / (time.perf_counter() - t0))
    # and the plain forward pass of the model, unbatched, for reference
    lf = torch.nn.functional.cross_entropy
    with torch.no_grad():
        lf(model(X), y).item()
        t0 = time.perf_counter()
        reps = 0
        while time.perf_counter() - t0 < 2.0:
            lf(model(X), y).item()
            reps += 1
        fwd = (time.perf_counter() - t0) / reps
    return {"gemm_flops": best, "plain_forward_seconds": fwd}


def task_plane_ours(threads: int, path: str, resolution: int) -> dict:
    torch, model, X, y = _setup(threads, path)
    from analysis import landscape

    before = {k: v.clone() for k, v in model.state_dict().items()}
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        # as a worker runs it: points split between the threads, torch single-threaded in each
        surf = landscape.plane(model, (X, y), axes="random", resolution=resolution, span=1.0, seed=0,
                               threads=threads if threads > 1 else None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    unchanged = all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    # correctness: several points, on and off the centre, against a freshly built model at the coordinates
    checks = []
    n = resolution
    for i, j in [(0, 0), (n - 1, n - 1), (n // 2, n // 2), (1, n - 2), (n // 3, 2 * n // 3), (n - 2, 1)]:
        fresh = copy.deepcopy(model)
        with torch.no_grad():
            for name, p in fresh.named_parameters():
                p.copy_(dict(model.named_parameters())[name] + float(surf.a[i]) * surf.d1[name] + float(surf.b[j]) * surf.d2[name])
            direct = torch.nn.functional.cross_entropy(fresh(X), y).item()
        checks.append({"i": i, "j": j, "grid": float(surf.loss[i, j]), "direct": direct})
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "points": resolution**2,
        "coarse_seconds": surf.coarse_seconds,
        "total_seconds": surf.seconds,
        "checks": checks,
        "model_unchanged": unchanged,
        "peak_rss_mb": mem.max_rss,
        "rss_increase_mb": mem.increase,
    }


def task_plane_loss_landscapes(threads: int, path: str, resolution: int) -> dict:
    torch, model, X, y = _setup(threads, path)
    import loss_landscapes
    import loss_landscapes.metrics as llm
    from loss_landscapes.model_interface.model_parameters import orthogonal_to, rand_u_like
    from loss_landscapes.model_interface.model_wrapper import wrap_model

    metric = llm.Loss(torch.nn.CrossEntropyLoss(), X, y)
    steps, distance = resolution, 1.0
    torch.manual_seed(123)
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        Z = loss_landscapes.random_plane(model, metric, distance=distance, steps=steps, normalization="filter", deepcopy_model=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # Rebuild their directions with the same seed and their own functions, then evaluate the
    # coordinates their docstring promises: start + i*dir_one + j*dir_two, start = theta - steps/2 (d1 + d2).
    torch.manual_seed(123)
    ref = copy.deepcopy(model)
    start_point = wrap_model(ref).get_module_parameters()
    theta = [p.detach().clone() for p in start_point.parameters]
    d1 = rand_u_like(start_point)
    d2 = orthogonal_to(d1)
    d1.filter_normalize_(start_point)
    d2.filter_normalize_(start_point)
    d1.mul_(((start_point.model_norm() / distance) / steps) / d1.model_norm())
    d2.mul_(((start_point.model_norm() / distance) / steps) / d2.model_norm())

    def direct(i: float, j: float) -> float:
        m = copy.deepcopy(model)
        with torch.no_grad():
            for p, t, u, v in zip(m.parameters(), theta, d1.parameters, d2.parameters):
                p.copy_(t + (i - steps / 2) * u + (j - steps / 2) * v)
            return torch.nn.functional.cross_entropy(m(X), y).item()

    checks = []
    even = 2 * (steps // 6)
    for i, j in [(even, steps // 2), (even + 1, steps // 2), (even + 4, steps // 3), (even + 5, steps // 3)]:
        if i < steps and j + 1 < steps:
            checks.append(
                {
                    "i": i,
                    "j": j,
                    "grid": float(Z[i, j]),
                    "direct_at_claimed": direct(i, j),
                    "direct_at_j_plus_1": direct(i, j + 1),
                }
            )
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "points": steps**2,
        "checks": checks,
        "peak_rss_mb": mem.max_rss,
        "rss_increase_mb": mem.increase,
    }


# --------------------------------------------------------------------------- (b) eigenvalues


def task_reference_eigenvalues(threads: int, path: str) -> dict:
    torch, model, X, y = _setup(threads, path)
    from analysis import curvature

    op = curvature.HessianOperator(model, None, (X, y))
    res = curvature.lanczos(op, 5, tol=1e-10, max_iters=300, seed=7)
    return {"eigenvalues": res.eigenvalues.tolist(), "converged": res.converged, "num_matvecs": res.num_matvecs}


def task_eigen_ours(threads: int, path: str) -> dict:
    torch, model, X, y = _setup(threads, path)
    from analysis import curvature

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        op = curvature.HessianOperator(model, None, (X, y))
        res = curvature.lanczos(op, 5, tol=1e-3, seed=0)
        wall = time.perf_counter() - t0
    return {
        "eigenvalues": res.eigenvalues.tolist(),
        "num_matvecs": res.num_matvecs,
        "seconds": wall,
        "peak_rss_mb": mem.max_rss,
        "rss_increase_mb": mem.increase,
    }


def counted_pyhessian():
    """PyHessian's module with its Hessian-vector product wrapped by a counter: (module, [count])."""
    import warnings

    import pyhessian  # noqa: F401

    ph = sys.modules["pyhessian.hessian"]  # the package re-exports the class under the module's name
    count = [0]
    original = ph.hessian_vector_product

    def counting(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    ph.hessian_vector_product = counting  # runtime patch only: count products
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    return ph, count


def task_eigen_pyhessian(threads: int, path: str) -> dict:
    torch, model, X, y = _setup(threads, path)
    ph, count = counted_pyhessian()
    torch.manual_seed(0)
    work = copy.deepcopy(model)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        h = ph.hessian(work, torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
        eigenvalues, _ = h.eigenvalues(top_n=5)
        wall = time.perf_counter() - t0
    return {
        "eigenvalues": [float(e) for e in eigenvalues],
        "num_matvecs": count[0],
        "seconds": wall,
        "peak_rss_mb": mem.max_rss,
        "rss_increase_mb": mem.increase,
    }


# --------------------------------------------------------------------------- (c) trace


def task_trace(threads: int, small_path: str, budget: int, seeds: int) -> dict:
    import numpy as np

    torch, model, X, y = _setup(threads, small_path)
    import warnings

    from analysis import curvature

    op = curvature.HessianOperator(model, None, (X, y))
    exact = float(torch.trace(curvature.dense_matrix(op)))
    errs = {"hutchinson": [], "hutch++": [], "pyhessian": []}
    times = {"hutchinson": 0.0, "hutch++": 0.0, "pyhessian": 0.0}
    for seed in range(seeds):
        t0 = time.perf_counter()
        errs["hutchinson"].append(abs(curvature.hutchinson(op, budget, seed=seed).estimate - exact))
        times["hutchinson"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        errs["hutch++"].append(abs(curvature.hutchpp(op, budget, seed=seed).estimate - exact))
        times["hutch++"] += time.perf_counter() - t0
    import pyhessian  # noqa: F401

    ph = sys.modules["pyhessian.hessian"]
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    h = ph.hessian(copy.deepcopy(model), torch.nn.CrossEntropyLoss(), data=(X, y), cuda=False)
    for seed in range(seeds):
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        samples = h.trace(maxIter=budget, tol=0.0)  # tol=0: exactly `budget` Rademacher products
        times["pyhessian"] += time.perf_counter() - t0
        errs["pyhessian"].append(abs(float(np.mean(samples)) - exact))
    return {
        "exact": exact,
        "num_parameters": op.size,
        "mean_abs_error": {k: float(np.mean(v)) for k, v in errs.items()},
        "rms_error": {k: float(np.sqrt(np.mean(np.square(v)))) for k, v in errs.items()},
        "seconds": times,
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default for this machine)")
    parser.add_argument("--resolution", type=int, default=51)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--trace-seeds", type=int, default=20)
    parser.add_argument("--trace-budget", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3, help="alternating repetitions of (a), (b) and each row of (e); the fastest run is kept")
    parser.add_argument("--parts", default="abcef", help="which parts to run (subset of 'abcefg'; (d) reports on those run)")
    parser.add_argument("--eigen-samples", type=int, default=512, help="samples (sequences) for the Hessian in (f)")
    parser.add_argument("--res", default="mlp=41,cnn=41,resnet=41,gpt2=41",
                        help="plane resolution per model in (e); the default is the landscape form's 41x41, what users get")
    parser.add_argument("--device", default="cpu", help="device for (e): cpu, or cuda / cuda:N on a GPU host (one setting, "
                        "both sides resident on the device)")
    args = parser.parse_args()

    ensure_peers()
    import numpy as np
    import torch

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    print(f"# Terrain analysis benchmark  (torch {torch.__version__}, numpy {np.__version__}, threads={threads}, "
          f"cpus={os.cpu_count()}, load average {os.getloadavg()[0]:.2f})")
    tmp = Path(tempfile.mkdtemp(prefix="terrain-bench-"))
    if set(args.parts) & set("abc"):
        path, small_path, n = train_digits_models(args, tmp)
    res = args.resolution
    if "a" in args.parts:
        part_a(args, threads, path, n, res)
    if "b" in args.parts:
        part_b(args, threads, path)
    if "c" in args.parts:
        part_c(args, threads, small_path)
    if set(args.parts) & set("efg"):
        import plane_architectures as arch

        paths = arch.prepare_models(tmp, args.epochs)
        if "e" in args.parts:
            resolutions = {k: int(v) for k, v in (kv.split("=") for kv in args.res.split(","))}
            arch.part_planes(run_isolated, paths, resolutions, threads, args.repeats, args.device)
        if "f" in args.parts:
            arch.part_eigen(run_isolated, paths, threads, args.eigen_samples)
        if "g" in args.parts:
            arch.part_coarse(run_isolated, paths, threads)


def train_digits_models(args, tmp):
    """The digits MLPs of parts (a)-(c), trained and saved; (path, small_path, number of samples)."""
    from analysis import checkpoints, data, train

    tr, te = data.load("digits", "train"), data.load("digits", "test")
    t0 = time.perf_counter()
    big = train.train(SPEC, tr, test_data=te, epochs=args.epochs, lr=0.05, seed=0)
    print(f"model: digits MLP 64-256-256-10 ({sum(p.numel() for p in big.model.parameters()):,} params), "
          f"{args.epochs} epochs in {time.perf_counter() - t0:.1f}s, test accuracy {big.history[-1]['test_accuracy']:.4f}")
    small = train.train(SMALL_SPEC, tr, test_data=te, epochs=10, lr=0.05, seed=0)
    path = str(checkpoints.save(tmp / "big.safetensors", big.model, SPEC))
    small_path = str(checkpoints.save(tmp / "small.safetensors", small.model, SMALL_SPEC))
    return path, small_path, data.load("digits", "all")[0].shape[0]


def part_a(args, threads, path, n, res) -> None:
    print(f"\n## (a) {res}x{res} random filter-normalised plane, {n} samples")
    # Other work shares this machine: alternate the two, several times, and keep each one's best run.
    gemm = run_isolated(task_gemm_rate, threads, path)
    ours_runs, theirs_runs = [], []
    for _ in range(args.repeats):
        ours_runs.append(run_isolated(task_plane_ours, threads, path, res))
        theirs_runs.append(run_isolated(task_plane_loss_landscapes, threads, path, res))
    ours = min(ours_runs, key=lambda r: r["seconds"])
    theirs = min(theirs_runs, key=lambda r: r["seconds"])
    print(f"(best of {args.repeats} alternating runs; wall seconds terrain {[round(r['seconds'], 2) for r in ours_runs]}, "
          f"loss-landscapes {[round(r['seconds'], 2) for r in theirs_runs]})")
    flops = forward_flops(n, [64, 256, 256, 10])
    ours_pps = ours["points"] / ours["seconds"]
    theirs_pps = theirs["points"] / theirs["seconds"]
    print(f"{'':34s}{'terrain':>14s}{'loss-landscapes':>18s}")
    print(f"{'wall time [s]':34s}{ours['seconds']:14.2f}{theirs['seconds']:18.2f}")
    print(f"{'CPU time [s]':34s}{ours['cpu_seconds']:14.2f}{theirs['cpu_seconds']:18.2f}")
    print(f"{'points/s (wall)':34s}{ours_pps:14.1f}{theirs_pps:18.1f}")
    print(f"{'fraction of dense GEMM FLOP/s':34s}{ours_pps * flops / gemm['gemm_flops']:14.2f}"
          f"{theirs_pps * flops / gemm['gemm_flops']:18.2f}")
    print(f"{'peak RSS increase [MB]':34s}{ours['rss_increase_mb']:14.1f}{theirs['rss_increase_mb']:18.1f}")
    print(f"RATIO points/s terrain / loss-landscapes = {ours_pps / theirs_pps:.2f}x (wall), "
          f"{(ours['points'] / ours['cpu_seconds']) / (theirs['points'] / theirs['cpu_seconds']):.2f}x (CPU time)")
    print(f"dense GEMM (1797x256 @ 256x256): {gemm['gemm_flops'] / 1e9:.1f} GFLOP/s; forward pass = {flops / 1e9:.3f} GFLOP/point; "
          f"plain unbatched forward {gemm['plain_forward_seconds'] * 1e3:.2f} ms/point")
    print("  (the fraction counts a full forward pass per point; terrain shares the first layer's products per plane")
    print("   and the second layer's along each row, so it can exceed 1: fewer FLOPs than one forward pass per point)")
    print(f"time to first full coarse surface: {ours['coarse_seconds']:.3f}s of {ours['total_seconds']:.2f}s "
          f"= {ours['coarse_seconds'] / ours['total_seconds']:.1%} of total")
    print(f"caller's model unchanged after terrain plane: {ours['model_unchanged']}")
    print("terrain grid vs direct evaluation at theta + a*d1 + b*d2:")
    for c in ours["checks"]:
        print(f"  (i={c['i']:2d}, j={c['j']:2d}) grid {c['grid']:.6f}  direct {c['direct']:.6f}  "
              f"rel.diff {abs(c['grid'] - c['direct']) / abs(c['direct']):.1e}")
    print("loss-landscapes grid vs direct evaluation at its claimed start + i*d1 + j*d2 (same seed, its own direction code):")
    for c in theirs["checks"]:
        rel = abs(c["grid"] - c["direct_at_claimed"]) / abs(c["direct_at_claimed"])
        rel1 = abs(c["grid"] - c["direct_at_j_plus_1"]) / abs(c["direct_at_j_plus_1"])
        print(f"  (i={c['i']:2d}, j={c['j']:2d}) grid {c['grid']:.6f}  direct(i,j) {c['direct_at_claimed']:.6f} "
              f"[rel.diff {rel:.1e}]  direct(i,j+1) {c['direct_at_j_plus_1']:.6f} [rel.diff {rel1:.1e}]")

    print(f"(d) peak memory, plane: terrain {ours['rss_increase_mb']:.1f} MB, loss-landscapes {theirs['rss_increase_mb']:.1f} MB "
          f"(RSS above each isolated process's level at the start of the measurement)")


def part_b(args, threads, path) -> None:
    import numpy as np

    print("\n## (b) top-5 Hessian eigenvalues (target 1e-3 relative), full batch of 1797 samples")
    ref = run_isolated(task_reference_eigenvalues, threads, path)
    eo_runs, ep_runs = [], []
    for _ in range(args.repeats):
        eo_runs.append(run_isolated(task_eigen_ours, threads, path))
        ep_runs.append(run_isolated(task_eigen_pyhessian, threads, path))
    eo = min(eo_runs, key=lambda r: r["seconds"])
    ep = min(ep_runs, key=lambda r: r["seconds"])
    r = np.array(ref["eigenvalues"])
    err_o = np.abs(np.array(eo["eigenvalues"]) - r) / np.abs(r)
    err_p = np.abs(np.sort(np.array(ep["eigenvalues"]))[::-1] - r) / np.abs(r)
    print(f"reference (Lanczos tol 1e-10, {ref['num_matvecs']} products): {np.array2string(r, precision=5)}")
    print(f"{'':34s}{'terrain':>14s}{'PyHessian':>18s}")
    print(f"{'Hessian-vector products':34s}{eo['num_matvecs']:14d}{ep['num_matvecs']:18d}")
    print(f"{'wall time [s]':34s}{eo['seconds']:14.2f}{ep['seconds']:18.2f}")
    print(f"{'max relative error of top-5':34s}{err_o.max():14.1e}{err_p.max():18.1e}")
    print(f"{'peak RSS increase [MB]':34s}{eo['rss_increase_mb']:14.1f}{ep['rss_increase_mb']:18.1f}")
    print(f"terrain   : {np.array2string(np.array(eo['eigenvalues']), precision=5)}")
    print(f"PyHessian : {np.array2string(np.array(ep['eigenvalues']), precision=5)}")
    print(f"RATIO products terrain / PyHessian = {eo['num_matvecs'] / ep['num_matvecs']:.2f}x, "
          f"wall time = {eo['seconds'] / ep['seconds']:.2f}x")

    print(f"(d) peak memory, top-5: terrain {eo['rss_increase_mb']:.1f} MB, PyHessian {ep['rss_increase_mb']:.1f} MB")


def part_c(args, threads, small_path) -> None:
    print(f"\n## (c) trace, {args.trace_budget} products, {args.trace_seeds} seeds, digits MLP 64-16-10")
    tt = run_isolated(task_trace, threads, small_path, args.trace_budget, args.trace_seeds)
    print(f"exact trace ({tt['num_parameters']} parameters, from the dense Hessian): {tt['exact']:.5f}")
    print(f"{'':34s}{'Hutch++':>14s}{'Hutchinson':>14s}{'PyHessian':>14s}")
    mae, rms = tt["mean_abs_error"], tt["rms_error"]
    print(f"{'mean |error|':34s}{mae['hutch++']:14.4f}{mae['hutchinson']:14.4f}{mae['pyhessian']:14.4f}")
    print(f"{'rms error':34s}{rms['hutch++']:14.4f}{rms['hutchinson']:14.4f}{rms['pyhessian']:14.4f}")
    print(f"{'relative mean |error|':34s}{mae['hutch++'] / tt['exact']:14.2%}{mae['hutchinson'] / tt['exact']:14.2%}"
          f"{mae['pyhessian'] / tt['exact']:14.2%}")
    s = tt["seconds"]
    print(f"{'wall time, all seeds [s]':34s}{s['hutch++']:14.2f}{s['hutchinson']:14.2f}{s['pyhessian']:14.2f}")
    print(f"RATIO error Hutch++ / Hutchinson = {mae['hutch++'] / mae['hutchinson']:.2f}x (mean |error|), "
          f"{rms['hutch++'] / rms['hutchinson']:.2f}x (rms)")


if __name__ == "__main__":
    main()
