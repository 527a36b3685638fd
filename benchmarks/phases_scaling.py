"""Sweep throughput with 1 and with 2 Celery workers on the same sweep (cells per minute).

    .venv/bin/python benchmarks/phases_scaling.py [--cells-x 6 --cells-y 4 --seeds 2 --budget 1000 --task digits-mlp]

Runs everything on this machine: an embedded Redis, real worker processes (one
torch thread each) and the database named by DATABASE_URL, or a throw-away SQLite
file without one. The same sweep is run twice, first with one worker, then with
two; the ratio is what more workers buy. On a machine with N free cores, N workers
should approach N x. Use PostgreSQL for a real measurement (as in production):
SQLite takes one writer at a time, so two workers queue on its lock.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/terrain_bench .venv/bin/python benchmarks/phases_scaling.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells-x", type=int, default=6)
    parser.add_argument("--cells-y", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--task", default="digits-mlp", choices=["digits-mlp", "modular-addition-mlp"])
    args = parser.parse_args()

    from benchmarks.local_stack import start_local_stack

    _, redis, owner = start_local_stack()
    from webapp.jobs.models import Job
    from webapp.jobs.services import job_params_validate, job_submit

    spec = {
        "task": {"name": "digits-mlp"} if args.task == "digits-mlp" else {"name": "modular-addition-mlp", "p": 23},
        "x": {"name": "weight_decay", "values": [round(0.25 * k, 2) for k in range(args.cells_x)]},
        "y": {"name": "lr", "log": True, "start": 3e-3, "stop": 3e-2, "num": args.cells_y},
        "seeds": args.seeds, "budget": args.budget, "eval_points": 40,
        "fixed": {"width": 64, "batch_size": 32, "optimizer": "adamw"} if args.task == "digits-mlp"
        else {"width": 128, "data_fraction": 0.5, "optimizer": "adamw"},
        "metrics": ["mode_connectivity", "cka", "l2_distance"],
    }
    cells = args.cells_x * args.cells_y
    rates = {}
    for workers in (1, 2):
        procs = [
            subprocess.Popen([sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "cpu", "--concurrency", "1",
                              "-n", f"bench{workers}-{k}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                             cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for k in range(workers)
        ]
        time.sleep(8)  # workers import torch and warm up before the clock starts
        validated = job_params_validate(kind="sweep", data={"spec": spec}, user=owner)
        started = time.perf_counter()
        job = job_submit(validated=validated, owner=owner)
        while not Job.objects.get(pk=job.pk).is_finished:
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        for proc in procs:
            proc.terminate()
            proc.wait()
        job.refresh_from_db()
        from collections import Counter

        from webapp.jobs.models import JobPart
        from webapp.phases.models import SweepRun

        per_worker = Counter(JobPart.objects.filter(job=job, finaliser=False).values_list("worker", flat=True))
        busy = [(r.started_at, r.finished_at) for r in SweepRun.objects.filter(job=job)]
        train_seconds = sum((end - start).total_seconds() for start, end in busy)
        print(f"   runs per worker process: {dict(per_worker)}; training time summed over runs {train_seconds:.1f}s", flush=True)
        rates[workers] = cells / seconds * 60
        print(f"{workers} worker(s): {cells} cells x {args.seeds} seeds in {seconds:.1f}s = {rates[workers]:.2f} cells/min ({job.status})", flush=True)
    print(f"speed-up with 2 workers: {rates[2] / rates[1]:.2f}x (target >= 1.8x; cores here: {os.cpu_count()})")
    redis.stop()


if __name__ == "__main__":
    main()
