"""Sweep definitions: a grid over two hyperparameters, several seeds per cell.

A sweep is given as a JSON-able dict and checked by the pydantic models of
:mod:`analysis.phases.params` (:func:`~analysis.phases.params.validate_sweep`),
which return a frozen :class:`SweepSpec` or raise a ``SweepError`` whose
``loc`` names the offending field (``("x", "values", 2)``, ``("budget",)``,
``("rules", "taxonomy", "cka_threshold")`` ...)::

    {
      "task": "modular-addition-mlp",            # or {"name": ..., "p": 31, "depth": 1}
      "x": {"name": "weight_decay", "values": [0, 0.3, 1, 3, 10]},
      "y": {"name": "lr", "log": true, "start": 1e-3, "stop": 3e-2, "num": 4},
      "seeds": 2,                                # a count (seeds 0..n-1) or a list of seeds
      "budget": 3000,                            # steps per run; or {"epochs": 20}
      "fixed": {"width": 128, "data_fraction": 0.6},   # other hyperparameters
      "metrics": ["mode_connectivity", "cka", "l2_distance"],   # between-seed / extra metrics
      "rules": {"grokking": {"gap_fraction": 0.01}, "taxonomy": {"loss_threshold": 0.1}},
      "eval_points": 200,                        # evaluations per run
      "data_seed": 0,                            # data split / subset / label noise seed
      "mc_alignment": "weight_matching"          # or "none": mc on the raw straight path
    }

Axis ranges: ``{"name", "values": [...]}`` or ``{"name", "start", "stop",
"num", "log": bool}`` (log: geometric spacing, both ends > 0).  Integer axes
(``batch_size``, ``width``) are rounded; values must be distinct.

Cells are indexed ``(i, j)``: ``i`` along x, ``j`` along y.  Runs are listed
cell by cell (x outer, y inner), seeds innermost, so a cell's seeds finish
together and the heatmap fills in as the sweep runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import tasks as _tasks
from .rules import GrokkingRule, TaxonomyRule

__all__ = [
    "AxisInfo",
    "AXES",
    "Axis",
    "SweepSpec",
    "Cell",
    "RunConfig",
    "LIMITS",
    "METRICS",
    "sweep_cells",
    "run_configs",
]


LIMITS = {
    "max_axis_values": 12,  # per axis: at most 12 x 12 cells
    "max_seeds": 5,
    "max_runs": 400,  # cells x seeds
    "max_budget_steps": 20_000,  # per run
    "max_parameters": 2_000_000,  # per model
    "min_eval_points": 10,
    "max_eval_points": 1000,
}

#: Extra metrics a sweep may ask for.  Curves, final metrics and steps-to-90%
#: are always recorded.
METRICS = ("mode_connectivity", "cka", "l2_distance", "hessian", "sharpness")
DEFAULT_METRICS = ("mode_connectivity", "cka", "l2_distance")


@dataclass(frozen=True)
class AxisInfo:
    name: str
    title: str
    integer: bool
    lo: float
    hi: float
    lo_inclusive: bool = True
    kind: str = ""  # "temperature" / "load" / "regularisation" (Yang et al.'s vocabulary), for the UI


AXES: dict[str, AxisInfo] = {
    "lr": AxisInfo("lr", "Learning rate", False, 0.0, 10.0, lo_inclusive=False, kind="temperature"),
    "weight_decay": AxisInfo("weight_decay", "Weight decay", False, 0.0, 100.0, kind="regularisation"),
    "batch_size": AxisInfo("batch_size", "Batch size", True, 1, 8192, kind="temperature"),
    "width": AxisInfo("width", "Width", True, 1, 2048, kind="load"),
    "data_fraction": AxisInfo("data_fraction", "Data fraction", False, 0.0, 1.0, lo_inclusive=False, kind="load"),
    "label_noise": AxisInfo("label_noise", "Label noise", False, 0.0, 0.9, kind="load"),
}


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple  # floats, or ints for integer axes
    scale: str = "linear"  # "linear" or "log": how a UI should draw the axis

    @property
    def title(self) -> str:
        return AXES[self.name].title

    def to_dict(self) -> dict:
        return {"name": self.name, "values": list(self.values), "scale": self.scale}


@dataclass(frozen=True)
class Cell:
    i: int  # index along x
    j: int  # index along y
    x: Any
    y: Any

    @property
    def key(self) -> str:
        return f"{self.i}-{self.j}"


@dataclass(frozen=True)
class RunConfig:
    """Everything :func:`analysis.phases.train_run` needs for one (cell, seed)."""

    i: int
    j: int
    seed: int
    hyperparams: dict  # lr, weight_decay, batch_size (None = full batch), width, data_fraction, label_noise, optimizer, momentum, steps
    task: str = "modular-addition-mlp"
    task_options: dict = field(default_factory=dict)
    eval_every: int = 1
    data_seed: int = 0
    hessian: bool = False
    axes: tuple = ()  # (x axis name, y axis name) of the sweep, when the run belongs to one
    sharpness: bool = False  # track the top Hessian eigenvalue during training (analysis.sharpness)

    @property
    def key(self) -> str:
        return f"{self.i}-{self.j}-{self.seed}"

    @property
    def cell_key(self) -> str:
        return f"{self.i}-{self.j}"

    @property
    def steps(self) -> int:
        return int(self.hyperparams["steps"])

    def to_dict(self) -> dict:
        return {
            "i": self.i,
            "j": self.j,
            "seed": self.seed,
            "hyperparams": dict(self.hyperparams),
            "task": self.task,
            "task_options": dict(self.task_options),
            "eval_every": self.eval_every,
            "data_seed": self.data_seed,
            "hessian": self.hessian,
            "axes": list(self.axes),
            "sharpness": self.sharpness,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunConfig":
        return cls(
            i=int(d["i"]),
            j=int(d["j"]),
            seed=int(d["seed"]),
            hyperparams=dict(d["hyperparams"]),
            task=d["task"],
            task_options=dict(d.get("task_options", {})),
            eval_every=int(d.get("eval_every", 1)),
            data_seed=int(d.get("data_seed", 0)),
            hessian=bool(d.get("hessian", False)),
            axes=tuple(d.get("axes", ())),
            sharpness=bool(d.get("sharpness", False)),
        )


@dataclass(frozen=True)
class SweepSpec:
    task: str
    x: Axis
    y: Axis
    seeds: tuple[int, ...]
    budget: int
    budget_unit: str = "steps"  # "steps" or "epochs"
    task_options: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    grokking: GrokkingRule = field(default_factory=GrokkingRule)
    taxonomy: TaxonomyRule = field(default_factory=TaxonomyRule)
    eval_points: int = 200
    data_seed: int = 0
    name: str = ""
    mc_alignment: str = "weight_matching"  # or "none"; see comparison.compare_runs

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.x.values), len(self.y.values)

    @property
    def num_cells(self) -> int:
        return len(self.x.values) * len(self.y.values)

    @property
    def num_runs(self) -> int:
        return self.num_cells * len(self.seeds)

    def to_dict(self) -> dict:
        """A dict that ``validate_sweep`` accepts and turns back into an equal spec."""
        return {
            "name": self.name,
            "task": {"name": self.task, **self.task_options},
            "x": self.x.to_dict(),
            "y": self.y.to_dict(),
            "seeds": list(self.seeds),
            "budget": {self.budget_unit: self.budget},
            "fixed": dict(self.fixed),
            "metrics": list(self.metrics),
            "rules": {"grokking": self.grokking.params(), "taxonomy": self.taxonomy.params()},
            "eval_points": self.eval_points,
            "data_seed": self.data_seed,
            "mc_alignment": self.mc_alignment,
        }


def sweep_cells(spec: SweepSpec) -> list[Cell]:
    """The grid cells, ``i`` along x (outer) and ``j`` along y (inner)."""
    return [Cell(i, j, x, y) for i, x in enumerate(spec.x.values) for j, y in enumerate(spec.y.values)]


def run_configs(spec: SweepSpec) -> list[RunConfig]:
    """One :class:`RunConfig` per (cell, seed), cell by cell (see :func:`sweep_cells`), seeds innermost.

    Hyperparameters: the task's defaults, overridden by ``fixed``, overridden
    by the cell's x and y values; ``steps`` is the budget (converted from
    epochs with that run's training-set size and batch size if needed).
    """
    t = _tasks.TASKS[spec.task]
    out = []
    for cell in sweep_cells(spec):
        hp = {**t.defaults, **spec.fixed, spec.x.name: cell.x, spec.y.name: cell.y}
        if spec.budget_unit == "steps":
            steps = spec.budget
        else:
            n = _tasks.num_train_examples(spec.task, spec.task_options, hp["data_fraction"])
            steps = _tasks.steps_for_epochs(spec.budget, n, hp["batch_size"])
        hp["steps"] = int(steps)
        eval_every = max(1, math.ceil(steps / spec.eval_points))
        for seed in spec.seeds:
            out.append(
                RunConfig(
                    i=cell.i,
                    j=cell.j,
                    seed=seed,
                    hyperparams=dict(hp),
                    task=spec.task,
                    task_options=dict(spec.task_options),
                    eval_every=eval_every,
                    data_seed=spec.data_seed,
                    hessian="hessian" in spec.metrics,
                    axes=(spec.x.name, spec.y.name),
                    sharpness="sharpness" in spec.metrics,
                )
            )
    return out
