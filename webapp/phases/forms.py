"""The sweep form: axes, seeds, budget, metrics and phase-rule thresholds, or a preset."""

from __future__ import annotations

import json
import re

from django import forms

from webapp.bounded_json import JsonRejected, parse_json
from webapp.training.forms import JobOptionsMixin

AXIS_CHOICES = [
    ("lr", "learning rate"), ("weight_decay", "weight decay"), ("batch_size", "batch size"),
    ("width", "width"), ("data_fraction", "data fraction"), ("label_noise", "label noise"),
]
TASK_CHOICES = [
    ("modular-addition-mlp", "modular addition, MLP"),
    ("modular-addition-transformer", "modular addition, transformer"),
    ("digits-mlp", "digits, MLP"),
]
METRIC_CHOICES = [
    ("mode_connectivity", "mode connectivity between seeds"), ("cka", "CKA of logits between seeds"),
    ("l2_distance", "L2 distance between seeds"), ("hessian", "Hessian top eigenvalue and trace"),
    ("sharpness", "sharpness during training: progressive sharpening, edge of stability"),
]
PRESET_CHOICES = [("", "custom (the fields below)"), ("grokking", "Grokking: weight decay x learning rate"),
                  ("load-temperature", "Load x temperature: width x batch size on digits")]
_RANGE = re.compile(r"^\s*(log|lin)\s*[: ]\s*([^\s:]+)\s*[: ]\s*([^\s:]+)\s*[: ]\s*(\d+)\s*$", re.I)
# Which form field an analysis.phases.SweepError message belongs to, by its leading field path.
_ERROR_FIELDS = [("x.", "x_values"), ("x", "x_axis"), ("y.", "y_values"), ("y", "y_axis"), ("seeds", "seeds"),
                 ("budget", "budget"), ("task", "task"), ("fixed", "fixed"), ("metrics", "metrics"),
                 ("rules.grokking", "gap_fraction"), ("rules.taxonomy.loss", "loss_threshold"),
                 ("rules.taxonomy.mc", "mc_tolerance"), ("rules.taxonomy.cka", "cka_threshold"), ("eval_points", "eval_points")]


def parse_axis_values(name: str, text: str) -> dict:
    """"0, 0.3, 1" (a list) or "log 1e-3 1 5" / "lin 0 1 5" (a range) -> an analysis axis dict."""
    match = _RANGE.match(text or "")
    if match:
        kind, start, stop, num = match.groups()
        try:
            return {"name": name, "log": kind.lower() == "log", "start": float(start), "stop": float(stop), "num": int(num)}
        except ValueError:
            raise forms.ValidationError("range bounds must be numbers, e.g. log 1e-3 1 5") from None
    try:
        values = [float(v) for v in re.split(r"[,\s]+", (text or "").strip()) if v]
    except ValueError:
        raise forms.ValidationError('give numbers separated by commas ("0, 0.3, 1") or a range ("log 1e-3 1 5")') from None
    if not values:
        raise forms.ValidationError("give at least one value")
    return {"name": name, "values": values}


class SweepForm(JobOptionsMixin):
    preset = forms.ChoiceField(choices=PRESET_CHOICES, required=False, help_text="A preset fills in the whole sweep.")
    title = forms.CharField(required=False, max_length=120)
    task = forms.ChoiceField(choices=TASK_CHOICES, initial="modular-addition-mlp")
    task_options = forms.CharField(required=False, initial='{"p": 23}', help_text='JSON, e.g. {"p": 23} for modular addition.')
    x_axis = forms.ChoiceField(choices=AXIS_CHOICES, initial="weight_decay", label="x axis")
    x_values = forms.CharField(initial="0, 1, 3", label="x values", help_text='"0, 0.3, 1" or "log 1e-3 1 5" or "lin 0 1 5"')
    y_axis = forms.ChoiceField(choices=AXIS_CHOICES, initial="lr", label="y axis")
    y_values = forms.CharField(initial="0.003, 0.01", label="y values")
    seeds = forms.IntegerField(initial=2, min_value=1, max_value=5, help_text="Models per cell (at most 5).")
    budget = forms.IntegerField(initial=600, min_value=1, max_value=20_000, help_text="Steps per model (at most 20,000).")
    fixed = forms.CharField(required=False, initial='{"width": 64, "data_fraction": 0.5, "optimizer": "adamw"}',
                            help_text="JSON: the other hyperparameters.")
    metrics = forms.MultipleChoiceField(choices=METRIC_CHOICES, required=False, initial=["mode_connectivity", "cka", "l2_distance"],
                                        widget=forms.CheckboxSelectMultiple)
    gap_fraction = forms.FloatField(initial=0.01, min_value=0.0, max_value=1.0, label="Grokking gap threshold",
                                    help_text="Fraction of the budget between reaching 90% train and 90% test accuracy.")
    loss_threshold = forms.FloatField(initial=0.1, min_value=0.0, label="Taxonomy: low train loss below")
    mc_tolerance = forms.FloatField(initial=0.02, min_value=0.0, label="Taxonomy: |mc| counted as zero up to")
    cka_threshold = forms.FloatField(initial=0.9, min_value=0.0, max_value=1.0, label="Taxonomy: high CKA from")
    eval_points = forms.IntegerField(initial=100, min_value=10, max_value=1000, help_text="Evaluations per model.")
    spec_json = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Or the whole sweep as JSON",
                                help_text="Overrides every field above (the JSON API takes this form too).")

    def clean_task_options(self):
        return self._json("task_options")

    def clean_fixed(self):
        return self._json("fixed")

    def _json(self, field):
        text = (self.cleaned_data.get(field) or "").strip()
        if not text:
            return {}
        try:
            return parse_json(text, field=field, expect=dict)
        except JsonRejected as exc:
            raise forms.ValidationError(exc.message) from None

    def raw_spec(self) -> dict:
        c = self.cleaned_data
        if isinstance(self.data.get("spec"), dict):  # the JSON API may send the spec as an object
            return self.data["spec"]
        if (c.get("spec_json") or "").strip():
            try:
                return parse_json(c["spec_json"], field="spec_json", expect=dict)
            except JsonRejected as exc:
                raise forms.ValidationError({"spec_json": exc.message}) from None
        if c.get("preset"):
            from analysis.phases import PRESETS

            return json.loads(json.dumps(PRESETS[c["preset"]]))
        x = _axis(c, "x")
        y = _axis(c, "y")
        return {
            "name": c.get("title") or "",
            "task": {"name": c["task"], **c["task_options"]},
            "x": x, "y": y, "seeds": c["seeds"], "budget": c["budget"], "fixed": c["fixed"],
            "metrics": list(c.get("metrics") or []),
            "rules": {"grokking": {"gap_fraction": c["gap_fraction"]},
                      "taxonomy": {"loss_threshold": c["loss_threshold"], "mc_tolerance": c["mc_tolerance"], "cka_threshold": c["cka_threshold"]}},
            "eval_points": c["eval_points"],
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        from analysis.phases import SweepError, validate_sweep

        try:
            raw = self.raw_spec()
            self.spec = validate_sweep(raw)
        except forms.ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise
            self.add_error("x_values", exc)
        except SweepError as exc:
            self.add_error(_field_for(str(exc), bool((cleaned.get("spec_json") or "").strip())), str(exc))
        return cleaned

    def to_params(self) -> dict:
        return {"spec": self.spec.to_dict(), "preset": self.cleaned_data.get("preset") or ""}


def _axis(cleaned: dict, which: str) -> dict:
    """The x or y axis, its errors under its own values field."""
    try:
        return parse_axis_values(cleaned[f"{which}_axis"], cleaned[f"{which}_values"])
    except forms.ValidationError as exc:
        raise forms.ValidationError({f"{which}_values": exc.messages}) from None


def _field_for(message: str, from_json: bool) -> str:
    if from_json:
        return "spec_json"
    for prefix, field in _ERROR_FIELDS:
        if message.startswith(prefix):
            return field
    return "spec_json"
