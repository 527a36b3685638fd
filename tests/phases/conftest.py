"""Fixtures for the phase-diagram library tests (plain pytest; no Django needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Two shared cores: keep every test single-threaded and predictable.
torch.set_num_threads(1)


def fake_run(seed, steps, train_acc, test_acc, *, budget=None, train_loss=None, i=0, j=0):
    """A stand-in for RunResult with hand-built curves (what the rules and aggregate_cell read)."""
    from analysis.phases import RunConfig

    budget = budget if budget is not None else steps[-1]
    loss = train_loss if train_loss is not None else 0.01
    return SimpleNamespace(
        config=RunConfig(i=i, j=j, seed=seed, hyperparams={"lr": 0.1, "width": 8, "steps": budget}, axes=("lr", "width")),
        steps=list(steps),
        train_accuracy=list(train_acc),
        test_accuracy=list(test_acc),
        total_steps=budget,
        final={"train_loss": loss, "train_accuracy": train_acc[-1], "test_loss": 1.0, "test_accuracy": test_acc[-1]},
        steps_to_train_90=None,
        steps_to_test_90=None,
        hessian=None,
        seconds=0.0,
        state=None,
    )


@pytest.fixture
def make_run():
    return fake_run


TINY_SWEEP = {
    "task": {"name": "modular-addition-mlp", "p": 11, "depth": 1},
    "x": {"name": "weight_decay", "values": [0.0, 1.0]},
    "y": {"name": "lr", "values": [0.01]},
    "seeds": 2,
    "budget": 150,
    "fixed": {"width": 16, "data_fraction": 0.5},
    "eval_points": 30,
}


@pytest.fixture
def tiny_sweep():
    """A fresh copy of a 2 x 1 sweep of tiny modular-addition MLPs (two seeds) to modify."""
    import copy

    return copy.deepcopy(TINY_SWEEP)


@pytest.fixture(scope="module")
def tiny_runs():
    """Both seeds of cell (1, 0) of TINY_SWEEP (weight decay 1), trained once per module (~1 s)."""
    from analysis.phases import run_configs, train_run, validate_sweep

    spec = validate_sweep(TINY_SWEEP)
    configs = [c for c in run_configs(spec) if (c.i, c.j) == (1, 0)]
    return spec, [train_run(c) for c in configs]
