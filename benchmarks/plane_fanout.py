"""One 51x51 landscape plane with 1 and with 2 Celery worker processes (the job protocol's fan-out).

    .venv/bin/python benchmarks/plane_fanout.py [--resolution 51 --parts 8 --eval-size 1797 --repeats 1]

Everything runs on this machine: an embedded Redis, real worker processes (each
with the worker's default threads, the core count, or ``--worker-threads``; each in its own
session as separate services would be: Linux's autogroup scheduler gives one
session one share of the CPU however many processes it runs; --same-session shows
that case) and the database named by DATABASE_URL, or a throw-away SQLite file.  The model is the
digits MLP 64-256-256-10 (trained for a few epochs).  Three cases, timed from
submit to the job's final status:

  classic   1 worker, the plane computed by one task (no fan-out)
  fanout-1  1 worker, the plane split into the coarse lattice + --parts row blocks
  fanout-2  2 workers, the same split

fanout-2 / fanout-1 is what the second worker buys (target >= 1.8x); on a shared
machine it can only reach N x with N idle cores.  Every case's surface must equal
the classic one number for number (the script checks it).

--job line times a 1001-point line instead (the coarse curve + --parts segment blocks),
--job density a Hessian spectrum with --probes SLQ probes (a spectrum part + one part per
probe, up to --parts); both are checked against the classic result the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=51)
    parser.add_argument("--parts", type=int, default=8, help="row blocks of the fanned-out plane")
    parser.add_argument("--eval-size", type=int, default=1797)
    parser.add_argument("--repeats", type=int, default=1, help="alternate the cases this many times; best time each")
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="TERRAIN_WORKER_THREADS of each worker (default: the worker's own default, the core count: "
                             "one worker then already uses every core here; 1 stands for one machine per worker)")
    parser.add_argument("--job", choices=("plane", "line", "density"), default="plane")
    parser.add_argument("--probes", type=int, default=16, help="--job density: SLQ probe vectors (density_probes)")
    parser.add_argument("--same-session", action="store_true",
                        help="start every worker in this benchmark's session (by default each gets its own, like a separate service)")
    args = parser.parse_args()

    from benchmarks.local_stack import start_local_stack

    print(f"worker threads: {args.worker_threads or 'the worker default (the core count)'}")
    var, redis, owner = start_local_stack()
    from tests import stack
    from webapp.jobs.models import Job
    from webapp.jobs.services import job_create, job_params_validate

    checkpoint = _digits_checkpoint(owner, var)
    kind, data, compared, points = {
        "plane": ("landscape", {"resolution": args.resolution}, ("a", "b", "loss", "accuracy"), args.resolution**2),
        "line": ("landscape", {"mode": "line", "resolution": 1001}, ("t", "loss", "accuracy"), 1001),
        "density": ("hessian", {"density_probes": args.probes}, ("eigenvalues", "trace", "density"), args.probes),
    }[args.job]
    unit = "probes" if args.job == "density" else "points"
    params = job_params_validate(kind=kind, data={"checkpoint": checkpoint.slug, "eval_size": args.eval_size, "dataset": "digits",
                                                  "split": "all", **data}, user=owner).params
    logs = var / "logs"
    logs.mkdir()
    cases = {"classic": (1, 1), "fanout-1": (1, args.parts), "fanout-2": (2, args.parts)}
    best: dict[str, float] = {}
    reference = None
    for repeat in range(args.repeats):
        for name, (workers, parts) in cases.items():
            env = {} if args.worker_threads is None else {"TERRAIN_WORKER_THREADS": args.worker_threads}
            pool = [stack.Worker(name=f"bench-{name}-{repeat}-{k}", queues="cpu", own_session=not args.same_session,
                                 env=env).start(logs)
                    for k in range(workers)]
            try:
                _warm_up(owner, checkpoint, workers)
                cpu_before = _cpu_seconds(pool)
                started = time.perf_counter()
                job = job_create(kind=kind, params={**params, "parts": parts}, owner=owner)
                while not Job.objects.get(pk=job.pk).is_finished:
                    time.sleep(0.1)
                seconds = time.perf_counter() - started
                cpu = _cpu_seconds(pool) - cpu_before
            finally:
                for worker in pool:
                    worker.stop()
            job.refresh_from_db()
            assert job.status == "succeeded", job.error
            reference = reference or job.result
            same = all(job.result[key] == reference[key] for key in compared)
            coarse = job.result.get("coarse_seconds")
            best[name] = min(best.get(name, float("inf")), seconds)
            print(f"{name:9s} {workers} worker(s), {parts} part(s): {seconds:6.1f}s = {points / seconds:6.1f} {unit}/s; "
                  f"coarse result after {coarse or float('nan'):.1f}s; same numbers as classic: {same}; worker CPU {cpu:.1f}s "
                  f"= {cpu / seconds:.2f} cores while it ran; load average {os.getloadavg()[0]:.1f}",
                  flush=True)
    print(f"2 workers / 1 worker (fan-out both): {best['fanout-1'] / best['fanout-2']:.2f}x  (target >= 1.8x)")
    print(f"2 workers fan-out / 1 worker classic: {best['classic'] / best['fanout-2']:.2f}x")
    print(f"fan-out overhead on 1 worker: {best['fanout-1'] / best['classic']:.2f}x the classic time")
    print("On a shared machine a second worker only helps if the scheduler gives it a core: compare the 'cores' column.")
    redis.stop()


def _warm_up(owner, checkpoint, workers: int) -> None:
    """A tiny fanned-out plane, so every worker's pool process has finished starting before the clock runs."""
    from webapp.jobs.models import Job
    from webapp.jobs.services import job_create, job_params_validate


    params = job_params_validate(kind="landscape", data={"checkpoint": checkpoint.slug, "resolution": 9, "eval_size": 50},
                                 user=owner).params
    job = job_create(kind="landscape", params={**params, "parts": 2 * workers}, owner=owner)
    while not Job.objects.get(pk=job.pk).is_finished:
        time.sleep(0.1)


def _cpu_seconds(pool) -> float:
    """CPU time (user + system) of the worker processes and their pool children so far."""
    import psutil

    total = 0.0
    for worker in pool:
        main = psutil.Process(worker.process.pid)
        for process in [main, *main.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _digits_checkpoint(owner, var: Path):
    from analysis import checkpoints, data, train
    from webapp.catalog.services import checkpoint_create_from_file, experiment_create

    spec = {"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10}
    result = train.train(spec, data.load("digits", "train"), lr=0.05, epochs=5, seed=0)
    path = var / "digits-mlp.safetensors"
    checkpoints.save(path, result.model, spec, meta={"dataset": "digits"})
    experiment = experiment_create(title="plane fan-out benchmark", owner=owner)
    return checkpoint_create_from_file(experiment=experiment, name="digits-mlp-256-256", path=path, spec=spec, dataset="digits",
                                       num_parameters=sum(p.numel() for p in result.model.parameters()))


if __name__ == "__main__":
    main()
