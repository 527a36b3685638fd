"""Sweep definitions: a grid over two hyperparameters, several seeds per cell.

A sweep is given as a JSON-able dict and checked by :func:`validate_sweep`,
which returns a frozen :class:`SweepSpec` or raises :class:`SweepError` whose
message starts with the offending field (``x.values[2]``, ``budget``,
``rules.taxonomy.cka_threshold`` ...)::

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

import numpy as np

from .. import train as _train
from .. import zoo
from . import tasks as _tasks
from .rules import GrokkingRule, TaxonomyRule, TAXONOMY_TABLE

__all__ = [
    "SweepError",
    "AxisInfo",
    "AXES",
    "Axis",
    "SweepSpec",
    "Cell",
    "RunConfig",
    "LIMITS",
    "METRICS",
    "validate_sweep",
    "sweep_cells",
    "run_configs",
]


class SweepError(ValueError):
    """A sweep definition is malformed or too large; the message names the field."""


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
        """A dict that :func:`validate_sweep` accepts and turns back into an equal spec."""
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


# --------------------------------------------------------------------------- validation helpers


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise SweepError(f"{where} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise SweepError(f"{where} must be between {lo} and {hi}, got {v}")
    return v


def _number(v: Any, where: str, lo: float, hi: float, lo_inclusive: bool = True) -> float:
    if not _is_number(v):
        raise SweepError(f"{where} must be a finite number, got {v!r}")
    v = float(v)
    if v > hi or v < lo or (v == lo and not lo_inclusive):
        bound = "between" if lo_inclusive else "greater than"
        rng = f"{lo:g} and {hi:g}" if lo_inclusive else f"{lo:g} and at most {hi:g}"
        raise SweepError(f"{where} must be {bound} {rng}, got {v:g}")
    return v


def _axis_value(info: AxisInfo, v: Any, where: str):
    if info.integer:
        if _is_number(v) and not float(v).is_integer():
            v = int(round(float(v)))
        return _int(v, where, int(info.lo), int(info.hi))
    return _number(v, where, info.lo, info.hi, info.lo_inclusive)


def _check_keys(d: Mapping, allowed: set, where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise SweepError(f"{prefix}{unknown[0]} is not a known field (allowed: {', '.join(sorted(allowed))})")


def _axis(raw: Any, where: str) -> Axis:
    if not isinstance(raw, Mapping):
        raise SweepError(f"{where} must be an object like {{\"name\": \"lr\", \"values\": [...]}}, got {type(raw).__name__}")
    _check_keys(raw, {"name", "values", "log", "start", "stop", "num", "scale"}, where)
    name = raw.get("name")
    if name not in AXES:
        raise SweepError(f"{where}.name must be one of {', '.join(AXES)}, got {name!r}")
    info = AXES[name]
    n_max = LIMITS["max_axis_values"]
    has_values = "values" in raw
    has_range = any(k in raw for k in ("start", "stop", "num"))
    if has_values and has_range:
        raise SweepError(f"{where} gives both values and a range (start/stop/num); give one")
    if has_values:
        vals = raw["values"]
        if not isinstance(vals, (list, tuple)) or not vals:
            raise SweepError(f"{where}.values must be a non-empty list, got {vals!r}")
        if len(vals) > n_max:
            raise SweepError(f"{where}.values has {len(vals)} entries, more than the limit of {n_max}")
        values = [_axis_value(info, v, f"{where}.values[{k}]") for k, v in enumerate(vals)]
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise SweepError(f"{where}.log must be true or false, got {log!r}")
        scale = raw.get("scale")
        if scale is None:
            scale = "log" if log else "linear"
    else:
        for key in ("start", "stop", "num"):
            if key not in raw:
                raise SweepError(f"{where}.{key} is required for a range (or give {where}.values)")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise SweepError(f"{where}.log must be true or false, got {log!r}")
        num = _int(raw["num"], f"{where}.num", 1, n_max)
        lo_incl = info.lo_inclusive and not log
        start = _number(raw["start"], f"{where}.start", info.lo, info.hi, lo_incl)
        stop = _number(raw["stop"], f"{where}.stop", info.lo, info.hi, lo_incl)
        if log and (start <= 0 or stop <= 0):
            raise SweepError(f"{where}.start and {where}.stop must be > 0 for a log range")
        if num == 1:
            grid = np.array([start])
        elif log:
            grid = np.geomspace(start, stop, num)
        else:
            grid = np.linspace(start, stop, num)
        values = []
        for k, v in enumerate(grid):
            v = float(v)
            if not info.integer:
                v = float(f"{v:.12g}")  # 0.30000000000000004 -> 0.3: stable keys and labels
            values.append(_axis_value(info, v, f"{where} value {k}"))
        scale = "log" if log else "linear"
    if scale not in ("linear", "log"):
        raise SweepError(f"{where}.scale must be 'linear' or 'log', got {scale!r}")
    if len(set(values)) != len(values):
        dup = next(v for v in values if values.count(v) > 1)
        raise SweepError(f"{where} values must be distinct, {dup!r} appears twice (integer axes are rounded)")
    return Axis(name=name, values=tuple(values), scale=scale)


def _task(raw: Any) -> tuple[str, dict]:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping):
        raise SweepError(f"task must be a task name or an object with a name, got {type(raw).__name__}")
    name = raw.get("name")
    if name not in _tasks.TASKS:
        raise SweepError(f"task.name must be one of {', '.join(_tasks.TASKS)}, got {name!r}")
    t = _tasks.TASKS[name]
    _check_keys(raw, {"name", *t.options}, "task")
    options = {}
    for key, default in t.options.items():
        lo, hi = t.option_bounds[key]
        options[key] = _int(raw.get(key, default), f"task.{key}", lo, hi)
    return name, options


def _budget(raw: Any) -> tuple[int, str]:
    if isinstance(raw, Mapping):
        _check_keys(raw, {"steps", "epochs"}, "budget")
        if len(raw) != 1:
            raise SweepError("budget must give exactly one of steps or epochs")
        unit, value = next(iter(raw.items()))
    else:
        unit, value = "steps", raw
    if unit == "steps":
        return _int(value, "budget" if not isinstance(raw, Mapping) else "budget.steps", 1, LIMITS["max_budget_steps"]), unit
    return _int(value, "budget.epochs", 1, LIMITS["max_budget_steps"]), unit


def _fixed(raw: Any, task: str, axes: tuple[str, str]) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SweepError(f"fixed must be an object of hyperparameters, got {type(raw).__name__}")
    _check_keys(raw, set(_tasks.HYPERPARAMETERS), "fixed")
    out = {}
    for key, value in raw.items():
        where = f"fixed.{key}"
        if key in axes:
            raise SweepError(f"{where} is also a sweep axis; remove it from fixed")
        if key == "optimizer":
            if value not in _train.OPTIMIZERS:
                raise SweepError(f"{where} must be one of {', '.join(_train.OPTIMIZERS)}, got {value!r}")
            out[key] = value
        elif key == "momentum":
            out[key] = _number(value, where, 0.0, 0.999)
        elif key == "batch_size" and value in (None, "full"):
            out[key] = None
        else:
            out[key] = _axis_value(AXES[key], value, where)
    return out


def _seeds(raw: Any) -> tuple[int, ...]:
    n_max = LIMITS["max_seeds"]
    if isinstance(raw, (list, tuple)):
        if not raw:
            raise SweepError("seeds must not be empty")
        if len(raw) > n_max:
            raise SweepError(f"seeds has {len(raw)} entries, more than the limit of {n_max}")
        seeds = tuple(_int(s, f"seeds[{k}]", 0, 2**31 - 1) for k, s in enumerate(raw))
        if len(set(seeds)) != len(seeds):
            raise SweepError("seeds must be distinct")
        return seeds
    n = _int(raw, "seeds", 1, n_max)
    return tuple(range(n))


def _metrics(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_METRICS
    if not isinstance(raw, (list, tuple)):
        raise SweepError(f"metrics must be a list drawn from {', '.join(METRICS)}, got {raw!r}")
    for k, m in enumerate(raw):
        if m not in METRICS:
            raise SweepError(f"metrics[{k}] must be one of {', '.join(METRICS)}, got {m!r}")
    return tuple(m for m in METRICS if m in raw)  # canonical order, no duplicates


def _rules(raw: Any) -> tuple[GrokkingRule, TaxonomyRule]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SweepError(f"rules must be an object, got {type(raw).__name__}")
    _check_keys(raw, {"grokking", "taxonomy"}, "rules")
    g = raw.get("grokking") or {}
    t = raw.get("taxonomy") or {}
    if not isinstance(g, Mapping):
        raise SweepError("rules.grokking must be an object")
    if not isinstance(t, Mapping):
        raise SweepError("rules.taxonomy must be an object")
    _check_keys(g, {"accuracy_threshold", "gap_fraction", "gap_steps", "tie_order"}, "rules.grokking")
    _check_keys(t, {"loss_threshold", "mc_tolerance", "cka_threshold"}, "rules.taxonomy")
    gk: dict[str, Any] = {}
    if "accuracy_threshold" in g:
        gk["accuracy_threshold"] = _number(g["accuracy_threshold"], "rules.grokking.accuracy_threshold", 0.0, 1.0, False)
    if "gap_fraction" in g:
        gk["gap_fraction"] = _number(g["gap_fraction"], "rules.grokking.gap_fraction", 0.0, 1.0)
    if g.get("gap_steps") is not None:
        gk["gap_steps"] = _int(g["gap_steps"], "rules.grokking.gap_steps", 0, LIMITS["max_budget_steps"])
    if "tie_order" in g:
        order = g["tie_order"]
        default = GrokkingRule().tie_order
        if not isinstance(order, (list, tuple)) or sorted(order) != sorted(default):
            raise SweepError(f"rules.grokking.tie_order must be a permutation of {list(default)}, got {order!r}")
        gk["tie_order"] = tuple(order)
    tk: dict[str, Any] = {}
    if "loss_threshold" in t:
        tk["loss_threshold"] = _number(t["loss_threshold"], "rules.taxonomy.loss_threshold", 0.0, 1e6, False)
    if "mc_tolerance" in t:
        tk["mc_tolerance"] = _number(t["mc_tolerance"], "rules.taxonomy.mc_tolerance", 0.0, 1.0)
    if "cka_threshold" in t:
        tk["cka_threshold"] = _number(t["cka_threshold"], "rules.taxonomy.cka_threshold", 0.0, 1.0)
    return GrokkingRule(**gk), TaxonomyRule(**tk, table=dict(TAXONOMY_TABLE))


# --------------------------------------------------------------------------- public API


def validate_sweep(raw: Any) -> SweepSpec:
    """Check a sweep definition (see the module docstring) and return a :class:`SweepSpec`.

    Raises :class:`SweepError` (a ``ValueError``) whose message starts with
    the offending field.  Limits (:data:`LIMITS`): at most 12 values per axis,
    5 seeds, 400 runs, 20,000 steps per run (an epoch budget is converted per
    run) and 2M parameters per model; the two axes must differ.
    """
    if not isinstance(raw, Mapping):
        raise SweepError(f"sweep must be a JSON object (dict), got {type(raw).__name__}")
    _check_keys(
        raw,
        {"name", "task", "x", "y", "seeds", "budget", "fixed", "metrics", "rules", "eval_points", "data_seed", "mc_alignment"},
        "",
    )
    for key in ("task", "x", "y", "budget"):
        if key not in raw:
            raise SweepError(f"{key} is required")
    name = raw.get("name", "") or ""
    if not isinstance(name, str) or len(name) > 200:
        raise SweepError("name must be a string of at most 200 characters")
    task, task_options = _task(raw["task"])
    x = _axis(raw["x"], "x")
    y = _axis(raw["y"], "y")
    if x.name == y.name:
        raise SweepError(f"y.name must differ from x.name (both are {x.name!r})")
    seeds = _seeds(raw.get("seeds", 3))
    budget, unit = _budget(raw["budget"])
    fixed = _fixed(raw.get("fixed"), task, (x.name, y.name))
    metrics = _metrics(raw.get("metrics"))
    grokking, taxonomy = _rules(raw.get("rules"))
    eval_points = _int(raw.get("eval_points", 200), "eval_points", LIMITS["min_eval_points"], LIMITS["max_eval_points"])
    data_seed = _int(raw.get("data_seed", 0), "data_seed", 0, 2**31 - 1)
    mc_alignment = raw.get("mc_alignment", "weight_matching")
    if mc_alignment not in ("weight_matching", "none"):
        raise SweepError(f"mc_alignment must be 'weight_matching' or 'none', got {mc_alignment!r}")
    runs = len(x.values) * len(y.values) * len(seeds)
    if runs > LIMITS["max_runs"]:
        raise SweepError(
            f"seeds: {len(x.values)} x {len(y.values)} cells x {len(seeds)} seeds = {runs} runs, "
            f"more than the limit of {LIMITS['max_runs']} (use fewer seeds or fewer x/y values)"
        )
    spec = SweepSpec(
        task=task,
        x=x,
        y=y,
        seeds=seeds,
        budget=budget,
        budget_unit=unit,
        task_options=task_options,
        fixed=fixed,
        metrics=metrics,
        grokking=grokking,
        taxonomy=taxonomy,
        eval_points=eval_points,
        data_seed=data_seed,
        name=name,
        mc_alignment=mc_alignment,
    )
    _check_runs(spec)
    return spec


def _axis_field(spec: SweepSpec, hp: str) -> str:
    if spec.x.name == hp:
        return "x.values"
    if spec.y.name == hp:
        return "y.values"
    return f"fixed.{hp}"


def _check_runs(spec: SweepSpec) -> None:
    """Per-run limits that depend on the combination of hyperparameters."""
    t = _tasks.TASKS[spec.task]
    widths = spec.x.values if spec.x.name == "width" else spec.y.values if spec.y.name == "width" else [spec.fixed.get("width", t.defaults["width"])]
    for w in widths:
        try:
            n = zoo.count_parameters(_tasks.model_spec(spec.task, spec.task_options, w))
        except zoo.SpecError as exc:
            raise SweepError(f"{_axis_field(spec, 'width')}: width {w} does not fit task {spec.task!r}: {exc}") from None
        if n > LIMITS["max_parameters"]:
            raise SweepError(
                f"{_axis_field(spec, 'width')}: width {w} gives {n:,} parameters, more than the limit of {LIMITS['max_parameters']:,}"
            )
    if spec.budget_unit == "epochs":
        worst = max(c.steps for c in run_configs(spec))
        if worst > LIMITS["max_budget_steps"]:
            raise SweepError(
                f"budget.epochs: {spec.budget} epochs is {worst:,} steps for the smallest batch, more than the limit of "
                f"{LIMITS['max_budget_steps']:,} steps per run"
            )
    if spec.task.startswith("modular-addition"):
        p = spec.task_options["p"]
        fractions = spec.x.values if spec.x.name == "data_fraction" else spec.y.values if spec.y.name == "data_fraction" else [spec.fixed.get("data_fraction", t.defaults["data_fraction"])]
        for f in fractions:
            if f < 0.01:
                raise SweepError(f"{_axis_field(spec, 'data_fraction')}: data fraction {f:g} is below 0.01 (the dataset's minimum)")
            if round(f * p * p) >= p * p:
                raise SweepError(f"{_axis_field(spec, 'data_fraction')}: data fraction {f:g} leaves no test pairs for p={p}")


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
