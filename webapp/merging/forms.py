"""Parameters of a merge job: which relatives, which method, the knob's sweep, the tasks."""

from __future__ import annotations

from django import forms

from webapp.landscapes import evaluation_data, evaluation_sets
from webapp.landscapes.forms import MAX_EVAL_SIZE
from webapp.merging import selectors
from webapp.training.forms import JobOptionsMixin

MAX_MODELS = 8
MAX_SWEEP_STEPS = 41
# Weights held by all the inputs together: keeps the merge and its sweep to seconds or minutes on a CPU.
MAX_TOTAL_PARAMETERS = 50_000_000


def _method_choices():
    from analysis.merging import METHODS

    return [(name, f"{m.label} ({m.citation})") for name, m in METHODS.items()]


class MergeForm(JobOptionsMixin):
    source_experiment = forms.CharField(
        required=False, max_length=120, label="Family (experiment)",
        help_text="Slug of the experiment whose checkpoints to offer; empty: every checkpoint you can see.",
    )
    models = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, label="Models to merge",
                                       help_text=f"Two to {MAX_MODELS} checkpoints of one architecture.")
    base = forms.ChoiceField(required=False, label="Base model",
                             help_text="Their common ancestor (task arithmetic, TIES, DARE and orthogonal merging need it).")
    method = forms.ChoiceField(initial="task_arithmetic")
    sweep_steps = forms.IntegerField(initial=11, min_value=2, max_value=MAX_SWEEP_STEPS,
                                     help_text="Values of the method's main knob (lambda, density or alpha) to score.")
    sweep_from = forms.FloatField(required=False, help_text="Empty: the knob's usual range.")
    sweep_to = forms.FloatField(required=False)
    save_at = forms.FloatField(required=False, label="Save the merge at",
                               help_text="Knob value of the merged model stored in the catalog; empty: the best on the mean over tasks.")
    lam = forms.FloatField(initial=1.0, min_value=0.0, max_value=5.0, label="TIES: lambda")
    p = forms.FloatField(initial=0.5, min_value=0.0, max_value=0.99, label="DARE: drop probability")
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**31 - 1, help_text="DARE's masks; weight matching's layer order.")
    tasks = forms.CharField(
        required=False, max_length=200, label="Tasks (digit classes)",
        help_text='One evaluation set per task: digits classes, tasks separated by ";", e.g. "0,1,2,3,4; 5,6,7,8,9". '
                  "Empty: the checkpoints' own data.",
    )
    split = forms.ChoiceField(choices=evaluation_data.SPLITS, initial="test")
    eval_size = forms.IntegerField(initial=1000, min_value=1, max_value=MAX_EVAL_SIZE, label="Samples per task")
    name = forms.CharField(required=False, max_length=200, help_text="Name of the merged checkpoint (default: from the method).")

    field_order = ["source_experiment", "models", "base", "method", "sweep_steps", "sweep_from", "sweep_to", "save_at",
                   "lam", "p", "seed", "tasks", "split", "eval_size", "name", "visibility", "experiment"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        source = (self.data.get("source_experiment") if self.is_bound else self.initial.get("source_experiment")) or ""
        self.candidates = {c.slug: c for c in selectors.merge_candidates(user=self.user, experiment_slug=source.strip())}
        choices = [(slug, f"{c.name} · {selectors.architecture_label(c.spec)} · {c.experiment.title}")
                   for slug, c in self.candidates.items()]
        self.fields["models"].choices = choices
        self.fields["base"].choices = [("", "(none)")] + choices
        self.fields["method"].choices = _method_choices()
        models = self.initial.get("models")
        if isinstance(models, str):  # "Run again with changes" and links pass a comma-separated list
            self.initial["models"] = [s for s in models.split(",") if s]
        self.fields["experiment"].help_text = "Slug of one of your experiments to store the merge in; empty: the models' experiment if it is yours, else your sandbox."

    def clean_tasks(self):
        try:
            return evaluation_sets.parse_class_lists(self.cleaned_data.get("tasks", ""))
        except evaluation_sets.EvaluationSetError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        from analysis import merging

        cleaned = super().clean()
        if self.errors:
            return cleaned
        method = merging.get_method(cleaned["method"])
        models = [self.candidates[s] for s in cleaned["models"]]
        base = self.candidates.get(cleaned.get("base") or "")
        if not 2 <= len(models) + (base is not None) or len(models) > MAX_MODELS:
            self.add_error("models", f"choose between 2 and {MAX_MODELS} models")
        if base is not None and base in models:
            self.add_error("base", "the base cannot also be one of the models to merge")
        if method.needs_base and base is None:
            self.add_error("base", f"{method.label} needs the models' base")
        if not models:
            return cleaned
        spec = models[0].spec
        for c in models[1:] + ([base] if base else []):
            if c.spec != spec:
                self.add_error("base" if c is base else "models", f"{c.name!r} has a different architecture from {models[0].name!r}")
        if method.needs_permutation_spec and spec.get("kind") not in ("mlp", "cnn"):
            self.add_error("method", "weight matching supports mlp and cnn checkpoints")
        if sum(c.num_parameters for c in models + ([base] if base else [])) > MAX_TOTAL_PARAMETERS:
            self.add_error("models", f"the inputs hold over {MAX_TOTAL_PARAMETERS:,} weights together")
        self._clean_sweep(cleaned, method.knob)
        if not self.errors:
            self._check_data_fits(cleaned, spec)
        self.merge_models, self.merge_base = models, base
        return cleaned

    def _clean_sweep(self, cleaned, knob):
        lo = knob.low if cleaned.get("sweep_from") is None else cleaned["sweep_from"]
        hi = knob.high if cleaned.get("sweep_to") is None else cleaned["sweep_to"]
        for field, value in (("sweep_from", lo), ("sweep_to", hi), ("save_at", cleaned.get("save_at"))):
            if value is not None and not knob.low <= value <= knob.high:
                self.add_error(field, f"{knob.name} must be between {knob.low} and {knob.high}")
        if lo >= hi:
            self.add_error("sweep_to", "must be larger than the start of the sweep")
        cleaned["sweep_from"], cleaned["sweep_to"] = lo, hi

    def _check_data_fits(self, cleaned, spec):
        from analysis import data, zoo

        names = ["digits"] if cleaned["tasks"] else evaluation_sets.own_datasets([self.candidates[s] for s in cleaned["models"]])
        for name in names:
            try:
                zoo.check_compatible(spec, evaluation_data.describe(name, getattr(self.user, "pk", None)))
            except (data.DataError, zoo.SpecError) as exc:
                self.add_error("tasks", f"the models do not fit the data {name!r}: {exc}")

    def to_params(self) -> dict:
        c = self.cleaned_data
        return {
            "models": [m.slug for m in self.merge_models],
            "base": self.merge_base.slug if self.merge_base else "",
            "method": c["method"],
            "sweep_steps": c["sweep_steps"],
            "sweep_from": c["sweep_from"],
            "sweep_to": c["sweep_to"],
            "save_at": c.get("save_at"),
            "lam": c["lam"],
            "p": c["p"],
            "seed": c["seed"] or 0,
            "tasks": evaluation_sets.format_class_lists(c["tasks"]),
            "split": c["split"],
            "eval_size": c["eval_size"],
            "name": (c.get("name") or "").strip(),
            "source_experiment": (c.get("source_experiment") or "").strip(),
        }
