"""Parameters of the sweep kind, declared once: form, API, schema and CLI follow.

The sweep itself is `analysis.phases.SweepParams` (every rule, limit and default of a sweep
definition).  A sweep job is given one of: `spec` (the definition as an object, the JSON API's
way), `spec_json` (the same as text), a `preset`, or the form's flat fields.  The flat fields are
a view of the definition: `_PATHS` says where each one sits in it, and serves both ways: to build
the definition from the fields, and to put each error of the definition (located by its loc)
under the field that holds the value.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, ValidationError, model_validator

from analysis.phases import AXES, METRICS, PRESETS, TASKS
from analysis.phases.params import GrokkingParams, SweepParams, TaxonomyParams, fail_at, field_path
from analysis.phases.sweep import DEFAULT_METRICS, LIMITS, SweepSpec
from webapp.bounded_json import JsonRejected, parse_json
from webapp.jobs.params import Checks, JobParams, ui

PRESET_LABELS = {"": "custom (the fields below)", "grokking": "Grokking: weight decay x learning rate",
                 "load-temperature": "Load x temperature: width x batch size on digits"}
METRIC_LABELS = {
    "mode_connectivity": "mode connectivity between seeds", "cka": "CKA of logits between seeds",
    "l2_distance": "L2 distance between seeds", "hessian": "Hessian top eigenvalue and trace",
    "sharpness": "sharpness during training: progressive sharpening, edge of stability",
}
assert set(PRESET_LABELS) == {"", *PRESETS} and set(METRIC_LABELS) == set(METRICS)
# Shown filled in on the page (the JSON API's default is the task's own: {}).
FORM_INITIAL = {"task_options": '{"p": 23}', "fixed": '{"width": 64, "data_fraction": 0.5, "optimizer": "adamw"}'}
_RANGE = re.compile(r"^\s*(log|lin)\s*[: ]\s*([^\s:]+)\s*[: ]\s*([^\s:]+)\s*[: ]\s*(\d+)\s*$", re.I)


def parse_axis_values(value: Any) -> Any:
    """"0, 0.3, 1" (a list) or "log 1e-3 1 5" / "lin 0 1 5" (a range) -> an axis without its name."""
    if isinstance(value, list):
        return {"values": value}
    if not isinstance(value, str):
        return value
    match = _RANGE.match(value)
    if match:
        kind, start, stop, num = match.groups()
        try:
            return {"log": kind.lower() == "log", "start": float(start), "stop": float(stop), "num": int(num)}
        except ValueError:
            raise ValueError("range bounds must be numbers, e.g. log 1e-3 1 5") from None
    try:
        values = [float(v) for v in re.split(r"[,\s]+", value.strip()) if v]
    except ValueError:
        raise ValueError('give numbers separated by commas ("0, 0.3, 1") or a range ("log 1e-3 1 5")') from None
    if not values:
        raise ValueError("give at least one value")
    return {"values": values}


def _json_object(field: str):
    """A JSON object given as text (the form) or as an object (the JSON API); None stays None."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return parse_json(value, field=field, expect=dict)
        except JsonRejected as exc:
            raise ValueError(exc.message) from None

    return BeforeValidator(parse, json_schema_input_type=str | dict | None)


def _like(model, name: str) -> Any:
    """The type of `model.name` with its bounds: the limits stay declared once, in analysis."""
    info = model.model_fields[name]
    return Annotated[(info.annotation, *info.metadata)]


AxisName = Literal[tuple(AXES)]
AXIS_LABELS = ui(labels={name: info.title for name, info in AXES.items()})
AXIS_HELP = '"0, 0.3, 1" or "log 1e-3 1 5" or "lin 0 1 5"'


class SweepJobParams(JobParams):
    preset: Literal[("", *PRESETS)] = Field("", description="A preset fills in the whole sweep.",
                                             json_schema_extra=ui(labels=PRESET_LABELS))
    title: str = Field("", max_length=120)
    task: Literal[tuple(TASKS)] = Field("modular-addition-mlp", json_schema_extra=ui(labels={k: t.title for k, t in TASKS.items()}))
    task_options: Annotated[dict | None, _json_object("task_options")] = Field(
        None, description='JSON, e.g. {"p": 23} for modular addition.')
    x_axis: AxisName = Field("weight_decay", title="x axis", json_schema_extra=AXIS_LABELS)
    x_values: Annotated[dict, BeforeValidator(parse_axis_values, json_schema_input_type=str | list[float])] = Field(
        "0, 1, 3", validate_default=True, title="x values", description=AXIS_HELP)
    y_axis: AxisName = Field("lr", title="y axis", json_schema_extra=AXIS_LABELS)
    y_values: Annotated[dict, BeforeValidator(parse_axis_values, json_schema_input_type=str | list[float])] = Field(
        "0.003, 0.01", validate_default=True, title="y values", description=AXIS_HELP)
    seeds: int = Field(2, ge=1, le=LIMITS["max_seeds"], description=f"Models per cell (at most {LIMITS['max_seeds']}).")
    budget: int = Field(600, ge=1, le=LIMITS["max_budget_steps"],
                        description=f"Steps per model (at most {LIMITS['max_budget_steps']:,}).")
    fixed: Annotated[dict | None, _json_object("fixed")] = Field(None, description="JSON: the other hyperparameters.")
    metrics: list[Literal[METRICS]] = Field(list(DEFAULT_METRICS), json_schema_extra=ui(labels=METRIC_LABELS, widget="checkboxes"))
    gap_fraction: _like(GrokkingParams, "gap_fraction") = Field(
        GrokkingParams().gap_fraction, title="Grokking gap threshold",
        description="Fraction of the budget between reaching 90% train and 90% test accuracy.")
    loss_threshold: _like(TaxonomyParams, "loss_threshold") = Field(TaxonomyParams().loss_threshold, title="Taxonomy: low train loss below")
    mc_tolerance: _like(TaxonomyParams, "mc_tolerance") = Field(TaxonomyParams().mc_tolerance, title="Taxonomy: |mc| counted as zero up to")
    cka_threshold: _like(TaxonomyParams, "cka_threshold") = Field(TaxonomyParams().cka_threshold, title="Taxonomy: high CKA from")
    eval_points: _like(SweepParams, "eval_points") = Field(100, description="Evaluations per model.")
    spec_json: Annotated[SweepParams | None, _json_object("spec_json")] = Field(
        None, title="Or the whole sweep as JSON", json_schema_extra=ui(widget="textarea", rows=3),
        description="Overrides every field above (the JSON API takes this form too).")
    spec: SweepParams | None = Field(None, description="The whole sweep definition (overrides every other field).")
    _sweep: SweepSpec = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self) -> "SweepJobParams":
        given = self.spec or self.spec_json
        if given is None and self.preset:
            given = SweepParams.model_validate(copy.deepcopy(PRESETS[self.preset]))
        self._sweep = given.spec if given is not None else _from_fields(self)
        return self

    @property
    def sweep(self) -> SweepSpec:
        return self._sweep

    def check(self, ctx: Checks) -> None:
        ctx.params.clear()
        ctx.params.update({"spec": self._sweep.to_dict(), "preset": self.preset})

    @classmethod
    def form_setup(cls, form) -> None:
        form.fields.pop("spec", None)  # an object: the JSON API's; the page has spec_json
        for name, text in FORM_INITIAL.items():
            form.fields[name].initial = text


# Form field -> where its value sits in the sweep definition (analysis.phases.SweepParams).
_PATHS: dict[str, tuple] = {
    "title": ("name",), "task_options": ("task",), "task": ("task", "name"),
    "x_values": ("x",), "x_axis": ("x", "name"), "y_values": ("y",), "y_axis": ("y", "name"),
    "seeds": ("seeds",), "budget": ("budget",), "fixed": ("fixed",), "metrics": ("metrics",),
    "gap_fraction": ("rules", "grokking", "gap_fraction"), "loss_threshold": ("rules", "taxonomy", "loss_threshold"),
    "mc_tolerance": ("rules", "taxonomy", "mc_tolerance"), "cka_threshold": ("rules", "taxonomy", "cka_threshold"),
    "eval_points": ("eval_points",),
}


def _from_fields(params: SweepJobParams) -> SweepSpec:
    """The definition the flat fields describe; its errors are raised under those fields."""
    definition: dict = {}
    for name, path in sorted(_PATHS.items(), key=lambda item: len(item[1])):  # a whole object before its keys
        node = definition
        for key in path[:-1]:
            node = node.setdefault(key, {})
        value = getattr(params, name)
        node[path[-1]] = dict(value or {}) if isinstance(value, dict) or value is None else value
    try:
        return SweepParams.model_validate(definition).spec
    except ValidationError as exc:
        fail_at(*(((_field_of(e["loc"]),), f"{field_path(e['loc'])}: {e['msg']}", e["input"]) for e in exc.errors()))


def _field_of(loc: tuple) -> str:
    held = [(len(path), name) for name, path in _PATHS.items() if loc[: len(path)] == path]
    return max(held)[1] if held else "spec_json"
