"""Scoring a merged state dict on one evaluation set per task.

A *task* is a name and ``(X, y)``.  The built-in family tasks are subsets of
scikit-learn's digits by class list (:func:`digits_task`), so a family of
fine-tunes on different classes can be scored on each subset and on their
union.  Evaluation takes a template model (any ``nn.Module`` whose
``state_dict`` keys match) or a zoo spec, so it applies to every source.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from analysis import metrics

from .state_dicts import StateDict

__all__ = ["Task", "digits_task", "union_task", "model_with_state", "evaluate_state", "score"]


@dataclass(frozen=True)
class Task:
    name: str
    X: torch.Tensor
    y: torch.Tensor


def digits_task(classes: Sequence[int], split: str = "test", name: str | None = None) -> Task:
    """The digits samples of the given classes (labels kept as they are: a 10-way problem)."""
    from analysis import data

    wanted = sorted({int(c) for c in classes})
    if not wanted or any(not 0 <= c <= 9 for c in wanted):
        raise ValueError(f"digit classes must be a non-empty subset of 0..9, got {list(classes)}")
    X, y = data.load("digits", split)
    keep = torch.isin(y, torch.tensor(wanted))
    return Task(name or "digits " + "".join(map(str, wanted)), X[keep], y[keep])


def union_task(tasks: Sequence[Task], name: str = "union") -> Task:
    return Task(name, torch.cat([t.X for t in tasks]), torch.cat([t.y for t in tasks]))


def model_with_state(state: StateDict, *, spec: dict | None = None, template: nn.Module | None = None) -> nn.Module:
    """A model in eval mode holding ``state`` (built from ``spec``, or a copy of ``template``)."""
    if template is not None:
        model = copy.deepcopy(template)
    elif spec is not None:
        from analysis import zoo

        with torch.random.fork_rng(devices=[]):
            model = zoo.build(spec)
    else:
        raise ValueError("pass spec= or template= to evaluate a state dict")
    model.load_state_dict(dict(state))
    return model.eval()


def evaluate_state(
    state: StateDict, tasks: Sequence[Task], *, spec: dict | None = None, template: nn.Module | None = None
) -> dict[str, dict[str, float | None]]:
    """``{task name: {"loss", "accuracy"}}`` plus ``"mean"`` over the tasks."""
    model = model_with_state(state, spec=spec, template=template)
    out: dict[str, dict[str, float | None]] = {}
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        for task in tasks:
            X = task.X.to(dtype) if task.X.is_floating_point() else task.X
            loss, accuracy = metrics.evaluate(model, X, task.y)
            out[task.name] = {"loss": loss, "accuracy": accuracy}
    accuracies = [v["accuracy"] for v in out.values() if v["accuracy"] is not None]
    out["mean"] = {
        "loss": sum(v["loss"] for v in out.values()) / max(1, len(out)),
        "accuracy": sum(accuracies) / len(accuracies) if accuracies else None,
    }
    return out


def score(results: Mapping[str, Mapping[str, float | None]]) -> float:
    """One number to compare merges: mean accuracy over tasks, or minus the mean loss for regression."""
    mean = results["mean"]
    return float(mean["accuracy"]) if mean["accuracy"] is not None else -float(mean["loss"])
