"""A rough, up-front cost estimate of a sweep (before anything is queued).

``estimate_cost(spec)`` counts the training steps and multiply-accumulates
(MACs) of every run and turns them into seconds with a simple model fitted to
single-threaded runs on a shared 2-core CPU (the machine the presets were
timed on):

    seconds_per_run ~= steps * STEP_OVERHEAD + (train MACs + eval MACs) / MACS_PER_SECOND

``STEP_OVERHEAD`` (Python, optimizer and data indexing per step) dominates
small models with small batches; the MAC term dominates full-batch steps.
It is an order-of-magnitude guide for the UI ("about 6 minutes"), not a
promise: a busy machine is 2-3x slower, a GPU much faster.
"""

from __future__ import annotations

from .. import zoo
from . import tasks as _tasks
from .sweep import SweepSpec, run_configs

__all__ = ["estimate_cost", "macs_per_example", "STEP_OVERHEAD", "MACS_PER_SECOND"]

STEP_OVERHEAD = 0.5e-3  # seconds per optimizer step, besides the arithmetic
MACS_PER_SECOND = 10e9  # single thread, shared CPU


def macs_per_example(spec: dict) -> int:
    """Multiply-accumulates of one forward pass of one example (weights only; attention scores ignored)."""
    s = zoo.validate_spec(spec)
    if s["kind"] == "transformer":
        d, m, T = s["d_model"], s["d_mlp"], s["seq_len"]
        per_block = 4 * d * d + 2 * d * m
        return T * s["layers"] * per_block + d * s["p"]
    return zoo.count_parameters(s)


def estimate_cost(spec: SweepSpec) -> dict:
    """``{"runs", "total_steps", "gmacs", "seconds", "max_run_seconds"}`` for a validated sweep.

    Training costs 3x a forward pass (forward + backward) per example per
    step; each evaluation is one forward pass over the train and test sets.
    Between-seed metrics (a few forward passes per pair) are ignored.
    """
    total_steps = 0
    total_macs = 0.0
    total_seconds = 0.0
    worst = 0.0
    for c in run_configs(spec):
        hp = c.hyperparams
        n_train = _tasks.num_train_examples(c.task, c.task_options, hp["data_fraction"])
        n_test = _test_size(c.task, c.task_options, hp["data_fraction"])
        batch = n_train if hp.get("batch_size") is None else min(int(hp["batch_size"]), n_train)
        macs = macs_per_example(_tasks.model_spec(c.task, c.task_options, hp["width"]))
        evals = c.steps // c.eval_every + 2
        run_macs = 3.0 * c.steps * batch * macs + evals * (n_train + n_test) * macs
        seconds = c.steps * STEP_OVERHEAD + run_macs / MACS_PER_SECOND
        total_steps += c.steps
        total_macs += run_macs
        total_seconds += seconds
        worst = max(worst, seconds)
    return {
        "runs": spec.num_runs,
        "total_steps": int(total_steps),
        "gmacs": total_macs / 1e9,
        "seconds": total_seconds,
        "max_run_seconds": worst,
    }


def _test_size(task: str, options: dict, data_fraction: float) -> int:
    full = {**_tasks.TASKS[task].options, **options}
    if task.startswith("modular-addition"):
        return full["p"] ** 2 - _tasks.num_train_examples(task, options, data_fraction)
    return 359  # digits: fixed test split
