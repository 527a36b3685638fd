"""A sweep definition as pydantic models: the one declaration of what a sweep may ask for.

:class:`SweepParams` holds every rule of a sweep definition (the JSON shown in
:mod:`analysis.phases.sweep`): types, choices, limits and defaults per field,
and the rules across fields (the axes differ, at most ``max_runs`` runs, the
parameters of each model, an epoch budget converted per run).  A broken rule
is a pydantic ``ValidationError`` whose ``loc`` names the field
(``("x", "values", 2)``, ``("budget", "epochs")``, ``("rules", "grokking",
"gap_fraction")``); :func:`validate_sweep` raises it as a :class:`SweepError`
that keeps those locations, so nobody has to read the message to place it.

Short forms are accepted and normalised: ``"task": "digits-mlp"`` for
``{"name": "digits-mlp"}``, ``"seeds": 3`` for ``[0, 1, 2]``, ``"budget": 500``
for ``{"steps": 500}``, an axis range ``{"start", "stop", "num", "log"}`` for its
values, and ``null`` for a default.  Numbers are strict: ``true`` or ``"3"`` is
not a number; a whole float (``3.0``) is an integer.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, StrictBool, TypeAdapter
from pydantic import ValidationError, create_model, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .. import train as _train
from .. import zoo
from . import tasks as _tasks
from .rules import GROKKING_PHASES, TAXONOMY_TABLE, GrokkingRule, TaxonomyRule
from .sweep import AXES, DEFAULT_METRICS, LIMITS, METRICS, Axis, AxisInfo, SweepSpec, run_configs

__all__ = [
    "SweepError",
    "SweepParams",
    "AxisParams",
    "TaskParams",
    "BudgetParams",
    "FixedParams",
    "RulesParams",
    "field_path",
    "fail_at",
    "validate_sweep",
]

_MAX_SEED = 2**31 - 1
_CONFIG = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- errors


def field_path(loc: tuple) -> str:
    """``("x", "values", 2)`` -> ``"x.values[2]"``; the whole definition is ``"sweep"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "sweep"


class SweepError(ValueError):
    """A sweep definition is malformed or too large.

    ``errors`` lists every problem as ``{"loc": (...), "msg": ...}``; ``loc`` and
    ``field`` are the first one's (``field`` is :func:`field_path` of ``loc``)."""

    def __init__(self, errors: list[dict]):
        self.errors = [{"loc": tuple(e["loc"]), "msg": e["msg"]} for e in errors]
        super().__init__("; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in self.errors))

    @property
    def loc(self) -> tuple:
        return self.errors[0]["loc"]

    @property
    def field(self) -> str:
        return field_path(self.loc)


def fail_at(*problems: tuple[tuple, str, Any]) -> None:
    """Raise ``(loc, message, input)`` problems as one ValidationError (from a validator: an enclosing
    model prefixes its own loc)."""
    raise ValidationError.from_exception_data(
        "sweep",
        [
            InitErrorDetails(type=PydanticCustomError("sweep", "{message}", {"message": msg}), loc=loc, input=value)
            for loc, msg, value in problems
        ],
    )


def _validate_at(adapter: TypeAdapter, value: Any, loc: tuple) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        fail_at(*((loc + tuple(e["loc"]), e["msg"], value) for e in exc.errors()))


# --------------------------------------------------------------------------- field types


def _whole_float_to_int(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _round_number(v: Any) -> Any:
    """Integer axes take any finite number, rounded (a log range over widths gives 22.6 -> 23)."""
    return int(round(v)) if isinstance(v, float) and math.isfinite(v) else v


def _none_as(default: Any):
    return BeforeValidator(lambda v: default() if v is None else v)


def int_in(lo: int, hi: int) -> Any:
    """An integer in ``[lo, hi]``; a whole float counts (bounds before the validator: they reach the JSON schema)."""
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_whole_float_to_int)]


def axis_value_type(info: AxisInfo, *, as_float: bool = False, positive: bool = False) -> Any:
    """The type of one value of the hyperparameter ``info`` (its bounds; integer axes rounded).

    ``as_float``: a range end of an integer axis; ``positive``: an end of a log range."""
    lo_key = "ge" if info.lo_inclusive and not positive else "gt"
    if info.integer and not as_float:
        return Annotated[int, Field(**{lo_key: int(info.lo)}, le=int(info.hi)), BeforeValidator(_round_number)]
    return Annotated[float, Field(**{lo_key: float(info.lo)}, le=float(info.hi))]


@functools.lru_cache(maxsize=None)
def _adapter(name: str, as_float: bool = False, positive: bool = False) -> TypeAdapter:
    return TypeAdapter(axis_value_type(AXES[name], as_float=as_float, positive=positive), config=_CONFIG)


# --------------------------------------------------------------------------- parts


class AxisParams(BaseModel):
    """One axis: ``{"name", "values": [...]}`` or ``{"name", "start", "stop", "num", "log"}``."""

    model_config = _CONFIG

    name: Literal[tuple(AXES)]
    values: list[float] | None = Field(None, min_length=1, max_length=LIMITS["max_axis_values"])
    start: float | None = None
    stop: float | None = None
    num: int_in(1, LIMITS["max_axis_values"]) | None = None
    log: StrictBool = Field(False, description="geometric spacing (a range), drawn on a log scale")
    scale: Literal["linear", "log"] | None = Field(None, description="how to draw the axis; default from log")
    _axis: Axis = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self) -> "AxisParams":
        given = self.model_fields_set
        range_keys = [k for k in ("start", "stop", "num") if k in given]
        if self.values is not None and range_keys:
            fail_at(((), "gives both values and a range (start/stop/num); give one", None))
        if self.values is not None:
            values = [_validate_at(_adapter(self.name), v, ("values", k)) for k, v in enumerate(self.values)]
            where = ("values",)
        else:
            missing = [k for k in ("start", "stop", "num") if getattr(self, k) is None]
            if missing:
                fail_at(*(((k,), "is required for a range (or give values)", None) for k in missing))
            ends = _adapter(self.name, as_float=True, positive=self.log)
            start = _validate_at(ends, self.start, ("start",))
            stop = _validate_at(ends, self.stop, ("stop",))
            grid = [start] if self.num == 1 else (np.geomspace if self.log else np.linspace)(start, stop, self.num)
            # 0.30000000000000004 -> 0.3: stable keys and labels
            values = [_validate_at(_adapter(self.name), float(f"{float(v):.12g}"), ("num",)) for v in grid]
            where = ("num",)
        if len(set(values)) != len(values):
            dup = next(v for v in values if values.count(v) > 1)
            fail_at((where, f"values must be distinct, {dup!r} appears twice (integer axes are rounded)", dup))
        self._axis = Axis(name=self.name, values=tuple(values), scale=self.scale or ("log" if self.log else "linear"))
        return self

    @property
    def axis(self) -> Axis:
        return self._axis


def _task_option_fields() -> dict:
    """Every task option with its bounds (an option has the same bounds in every task that has it)."""
    bounds: dict[str, tuple[int, int]] = {}
    for task in _tasks.TASKS.values():
        for key, b in task.option_bounds.items():
            assert bounds.setdefault(key, b) == b, f"task option {key} has two bounds"
    return {key: (int_in(lo, hi) | None, None) for key, (lo, hi) in bounds.items()}


class _TaskBase(BaseModel):
    model_config = _CONFIG
    name: Literal[tuple(_tasks.TASKS)]
    _options: dict = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self) -> "_TaskBase":
        task = _tasks.TASKS[self.name]
        foreign = sorted(k for k in self.model_fields_set - {"name"} if k not in task.options)
        if foreign:
            fail_at(*(((k,), f"is not an option of task {self.name} (options: {', '.join(task.options)})", None) for k in foreign))
        self._options = {k: default if getattr(self, k) is None else getattr(self, k) for k, default in task.options.items()}
        return self

    @property
    def options(self) -> dict:
        return dict(self._options)


TaskParams = create_model("TaskParams", __base__=_TaskBase, __doc__="A task and its options.", **_task_option_fields())

_FIXED_FIELDS = {
    name: (Annotated[axis_value_type(info) | None, BeforeValidator(lambda v: None if v == "full" else v)], None)
    if name == "batch_size"  # None or "full": full batch
    else (axis_value_type(info), None)
    for name, info in AXES.items()
}
_FIXED_FIELDS["optimizer"] = (Literal[tuple(_train.OPTIMIZERS)], None)
_FIXED_FIELDS["momentum"] = (Annotated[float, Field(ge=0.0, le=0.999)], None)
assert set(_FIXED_FIELDS) == set(_tasks.HYPERPARAMETERS)

#: The other hyperparameters; one left out keeps the task's default.
FixedParams = create_model("FixedParams", __config__=_CONFIG, **_FIXED_FIELDS)


class BudgetParams(BaseModel):
    """Per run: ``{"steps": n}`` or ``{"epochs": n}`` (converted to steps per run)."""

    model_config = _CONFIG
    steps: int_in(1, LIMITS["max_budget_steps"]) | None = None
    epochs: int_in(1, LIMITS["max_budget_steps"]) | None = None

    @model_validator(mode="after")
    def _one(self) -> "BudgetParams":
        if (self.steps is None) == (self.epochs is None):
            fail_at(((), "give exactly one of steps or epochs", None))
        return self

    @property
    def unit(self) -> str:
        return "steps" if self.steps is not None else "epochs"


class GrokkingParams(BaseModel):
    model_config = _CONFIG
    accuracy_threshold: float = Field(GrokkingRule.accuracy_threshold, gt=0.0, le=1.0)
    gap_fraction: float = Field(GrokkingRule.gap_fraction, ge=0.0, le=1.0)
    gap_steps: int_in(0, LIMITS["max_budget_steps"]) | None = None
    tie_order: list[Literal[GROKKING_PHASES]] = Field(list(GROKKING_PHASES), description="a permutation of the phases")

    @model_validator(mode="after")
    def _permutation(self) -> "GrokkingParams":
        if sorted(self.tie_order) != sorted(GROKKING_PHASES):
            fail_at((("tie_order",), f"must be a permutation of {list(GROKKING_PHASES)}", self.tie_order))
        return self

    def rule(self) -> GrokkingRule:
        return GrokkingRule(**{**self.model_dump(), "tie_order": tuple(self.tie_order)})


class TaxonomyParams(BaseModel):
    model_config = _CONFIG
    loss_threshold: float = Field(TaxonomyRule.loss_threshold, gt=0.0, le=1e6)
    mc_tolerance: float = Field(TaxonomyRule.mc_tolerance, ge=0.0, le=1.0)
    cka_threshold: float = Field(TaxonomyRule.cka_threshold, ge=0.0, le=1.0)

    def rule(self) -> TaxonomyRule:
        return TaxonomyRule(**self.model_dump(), table=dict(TAXONOMY_TABLE))


class RulesParams(BaseModel):
    model_config = _CONFIG
    grokking: Annotated[GrokkingParams, _none_as(dict)] = Field(default_factory=GrokkingParams)
    taxonomy: Annotated[TaxonomyParams, _none_as(dict)] = Field(default_factory=TaxonomyParams)


def _task_short_form(v: Any) -> Any:
    return {"name": v} if isinstance(v, str) else v


def _budget_short_form(v: Any) -> Any:
    return {"steps": v} if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _seed_count(v: Any) -> Any:
    """A count of seeds ``n`` -> seeds ``0..n-1``."""
    v = _whole_float_to_int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        return v
    if not 1 <= v <= LIMITS["max_seeds"]:
        raise PydanticCustomError("sweep", "must be between 1 and {hi}, got {v}", {"hi": LIMITS["max_seeds"], "v": v})
    return list(range(v))


# --------------------------------------------------------------------------- the sweep


class SweepParams(BaseModel):
    """A sweep definition; :attr:`spec` is the validated :class:`SweepSpec`."""

    model_config = _CONFIG

    name: Annotated[str, _none_as(str), Field(max_length=200)] = ""
    task: Annotated[TaskParams, BeforeValidator(_task_short_form, json_schema_input_type=str | TaskParams)]
    x: AxisParams
    y: AxisParams
    seeds: Annotated[
        list[int_in(0, _MAX_SEED)],
        BeforeValidator(_seed_count, json_schema_input_type=int_in(1, LIMITS["max_seeds"]) | list[int_in(0, _MAX_SEED)]),
        Field(min_length=1, max_length=LIMITS["max_seeds"], validate_default=True,
              description="a count n (seeds 0..n-1) or a list of distinct seeds"),
    ] = 3
    budget: Annotated[BudgetParams, BeforeValidator(_budget_short_form, json_schema_input_type=int_in(1, LIMITS["max_budget_steps"]) | BudgetParams)]
    fixed: Annotated[FixedParams, _none_as(dict)] = Field(default_factory=FixedParams)
    metrics: Annotated[list[Literal[METRICS]], _none_as(lambda: list(DEFAULT_METRICS))] = Field(
        list(DEFAULT_METRICS), description="between-seed and extra metrics (curves and final metrics are always kept)")
    rules: Annotated[RulesParams, _none_as(dict)] = Field(default_factory=RulesParams)
    eval_points: int_in(LIMITS["min_eval_points"], LIMITS["max_eval_points"]) = 200
    data_seed: int_in(0, _MAX_SEED) = 0
    mc_alignment: Literal["weight_matching", "none"] = "weight_matching"
    _spec: SweepSpec = PrivateAttr()

    @model_validator(mode="after")
    def _across_fields(self) -> "SweepParams":
        x, y = self.x.axis, self.y.axis
        if x.name == y.name:
            fail_at((("y", "name"), f"must differ from x.name (both are {x.name!r})", y.name))
        if len(set(self.seeds)) != len(self.seeds):
            fail_at((("seeds",), "must be distinct", self.seeds))
        on_axes = sorted(self.fixed.model_fields_set & {x.name, y.name})
        if on_axes:
            fail_at(*((("fixed", k), "is also a sweep axis; remove it from fixed", k) for k in on_axes))
        runs = len(x.values) * len(y.values) * len(self.seeds)
        if runs > LIMITS["max_runs"]:
            fail_at((("seeds",), f"{len(x.values)} x {len(y.values)} cells x {len(self.seeds)} seeds = {runs} runs, more than "
                   f"the limit of {LIMITS['max_runs']} (use fewer seeds or fewer x/y values)", self.seeds))
        self._spec = SweepSpec(
            task=self.task.name,
            x=x,
            y=y,
            seeds=tuple(self.seeds),
            budget=self.budget.steps if self.budget.unit == "steps" else self.budget.epochs,
            budget_unit=self.budget.unit,
            task_options=self.task.options,
            fixed=self.fixed.model_dump(exclude_unset=True),
            metrics=tuple(m for m in METRICS if m in self.metrics),  # canonical order, no duplicates
            grokking=self.rules.grokking.rule(),
            taxonomy=self.rules.taxonomy.rule(),
            eval_points=self.eval_points,
            data_seed=self.data_seed,
            name=self.name,
            mc_alignment=self.mc_alignment,
        )
        _check_runs(self._spec)
        return self

    @property
    def spec(self) -> SweepSpec:
        return self._spec


def _axis_loc(spec: SweepSpec, hp: str) -> tuple:
    if spec.x.name == hp:
        return ("x", "values")
    if spec.y.name == hp:
        return ("y", "values")
    return ("fixed", hp)


def _check_runs(spec: SweepSpec) -> None:
    """Per-run limits that depend on the combination of hyperparameters."""
    t = _tasks.TASKS[spec.task]

    def swept(hp: str) -> tuple:
        return spec.x.values if spec.x.name == hp else spec.y.values if spec.y.name == hp else (spec.fixed.get(hp, t.defaults[hp]),)

    for w in swept("width"):
        try:
            n = zoo.count_parameters(_tasks.model_spec(spec.task, spec.task_options, w))
        except zoo.SpecError as exc:
            fail_at((_axis_loc(spec, "width"), f"width {w} does not fit task {spec.task!r}: {exc}", w))
        if n > LIMITS["max_parameters"]:
            fail_at((_axis_loc(spec, "width"), f"width {w} gives {n:,} parameters, more than the limit of {LIMITS['max_parameters']:,}", w))
    if spec.budget_unit == "epochs":
        worst = max(c.steps for c in run_configs(spec))
        if worst > LIMITS["max_budget_steps"]:
            fail_at((("budget", "epochs"), f"{spec.budget} epochs is {worst:,} steps for the smallest batch, more than the "
                   f"limit of {LIMITS['max_budget_steps']:,} steps per run", spec.budget))
    if spec.task.startswith("modular-addition"):
        p = spec.task_options["p"]
        for f in swept("data_fraction"):
            if f < 0.01:
                fail_at((_axis_loc(spec, "data_fraction"), f"data fraction {f:g} is below 0.01 (the dataset's minimum)", f))
            if round(f * p * p) >= p * p:
                fail_at((_axis_loc(spec, "data_fraction"), f"data fraction {f:g} leaves no test pairs for p={p}", f))


def validate_sweep(raw: Any) -> SweepSpec:
    """Check a sweep definition and return its :class:`SweepSpec`, or raise :class:`SweepError`.

    Limits (:data:`~analysis.phases.sweep.LIMITS`): at most 12 values per axis,
    5 seeds, 400 runs, 20,000 steps per run (an epoch budget is converted per
    run) and 2M parameters per model; the two axes must differ.
    """
    try:
        return SweepParams.model_validate(raw).spec
    except ValidationError as exc:
        raise SweepError([{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]) from None
