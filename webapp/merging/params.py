"""Parameters of the merge jobs (`merge`, `merge_greedy`): which relatives, which method, the knob's sweep, the tasks."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from webapp.catalog.models import ModelSource
from webapp.catalog.selectors import architecture_label
from webapp.jobs.params import Checks, JobParams, ui
from webapp.landscapes import evaluation_data, evaluation_sets
from webapp.landscapes.params import MAX_EVAL_SIZE
from webapp.merging import selectors

MAX_MODELS = 8
MAX_SWEEP_STEPS = 41
# Weights held by all the inputs together: keeps the merge and its sweep to seconds or minutes on a CPU.
MAX_TOTAL_PARAMETERS = 50_000_000
# analysis.merging.METHODS' names (not imported: that loads torch; a test holds them equal).
Method = Literal["average", "aligned", "task_arithmetic", "ties", "dare", "orthogonal"]
Slug = Annotated[str, Field(max_length=32)]
FOREIGN_MODELS = {
    "onnx": "ONNX graphs cannot be merged (a graph is forward-only: its weights are not a state dict to add); "
            "merge Terrain checkpoints",
    "other": "only Terrain checkpoints (built-in architectures) can be merged here, not uploaded Hugging Face or "
                   "LoRA models",
}
EXPERIMENT_HELP = ("Slug of one of your experiments to store the merge in; empty: the models' experiment if it is yours, "
                   "else your sandbox.")


class FamilyParams(JobParams):
    """Relatives of one architecture and the tasks they are scored on: what both merge kinds share."""

    source_experiment: str = Field("", max_length=120, title="Family (experiment)",
                                   description="Slug of the experiment whose checkpoints to offer; empty: every checkpoint you can see.")
    models: list[Slug] = Field(title="Models to merge", max_length=MAX_MODELS,
                               description=f"Two to {MAX_MODELS} checkpoints of one architecture.")
    base: Slug = Field("", title="Base model", json_schema_extra=ui(widget="select"),
                       description="Their common ancestor (task arithmetic, TIES, DARE and orthogonal merging need it).")
    tasks: str = Field("", max_length=200, title="Tasks (digit classes)",
                       description='One evaluation set per task: digits classes, tasks separated by ";", e.g. '
                                   '"0,1,2,3,4; 5,6,7,8,9". Empty: the checkpoints\' own data.')
    split: Literal["train", "test", "all"] = Field("test", json_schema_extra=ui(labels=dict(evaluation_data.SPLITS)))
    eval_size: int = Field(1000, ge=1, le=MAX_EVAL_SIZE, title="Samples per task")

    min_models: ClassVar[int] = 0  # models in the pool besides the base

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, text: str) -> str:
        try:
            return evaluation_sets.format_class_lists(evaluation_sets.parse_class_lists(text))
        except evaluation_sets.EvaluationSetError as exc:
            raise ValueError(str(exc)) from None

    @classmethod
    def form_setup(cls, form) -> None:
        source = (form.data.get("source_experiment") if form.is_bound else form.initial.get("source_experiment")) or ""
        candidates = selectors.merge_candidates(user=form.user, experiment_slug=str(source).strip())
        choices = [(c.slug, f"{c.name} · {architecture_label(c.spec)} · {c.experiment.title}") for c in candidates]
        form.fields["models"].choices = choices
        form.fields["base"].choices = [("", "(none)")] + choices
        form.fields["experiment"].help_text = EXPERIMENT_HELP
        models = form.initial.get("models")
        if isinstance(models, str):  # "Run again with changes" and links pass a comma-separated list
            form.initial["models"] = [s for s in models.split(",") if s]

    def check_family(self, ctx: Checks, method) -> tuple[list, object] | None:
        """The chosen checkpoints (models, base) once they are visible, related and small enough; None otherwise."""
        candidates = {c.slug: c for c in selectors.merge_candidates(user=ctx.user, experiment_slug=self.source_experiment)}
        unknown = [slug for slug in self.models if slug not in candidates] + [self.base] * bool(self.base and self.base not in candidates)
        for slug in unknown:
            ctx.error("base" if slug == self.base else "models", f"{slug!r} is not one of the checkpoints offered")
        if unknown:
            return None
        models, base = [candidates[s] for s in self.models], candidates.get(self.base)
        if not 2 <= len(models) + (base is not None) or len(models) > MAX_MODELS:
            ctx.error("models", f"choose between 2 and {MAX_MODELS} models")
        if len(models) < self.min_models:
            ctx.error("models", f"a greedy merge needs a pool of at least {self.min_models} models")
        if base is not None and base in models:
            ctx.error("base", "the base cannot also be one of the models to merge")
        if method.needs_base and base is None:
            ctx.error("base", f"{method.label} needs the models' base")
        if not models:
            return None
        foreign = [c for c in models + ([base] if base else []) if c.source != ModelSource.BUILTIN]
        for c in foreign:  # merging adds state dicts of Terrain checkpoints (analysis.checkpoints)
            ctx.error("base" if c is base else "models", f"{c.name!r}: {FOREIGN_MODELS.get(c.source, FOREIGN_MODELS['other'])}")
        if foreign:
            return None
        spec = models[0].spec
        for c in models[1:] + ([base] if base else []):
            if c.spec != spec:
                ctx.error("base" if c is base else "models", f"{c.name!r} has a different architecture from {models[0].name!r}")
        if method.needs_permutation_spec and spec.get("kind") not in ("mlp", "cnn"):
            ctx.error("method", "weight matching supports mlp and cnn checkpoints")
        if sum(c.num_parameters for c in models + ([base] if base else [])) > MAX_TOTAL_PARAMETERS:
            ctx.error("models", f"the inputs hold over {MAX_TOTAL_PARAMETERS:,} weights together")
        return models, base

    def check_data_fits(self, ctx: Checks, models, spec) -> None:
        from analysis import data, zoo

        names = ["digits"] if self.tasks else evaluation_sets.own_datasets(models)
        for name in names:
            try:
                zoo.check_compatible(spec, evaluation_data.describe(name, getattr(ctx.user, "pk", None)))
            except (data.DataError, zoo.SpecError) as exc:
                ctx.error("tasks", f"the models do not fit the data {name!r}: {exc}")


class MergeParams(FamilyParams):
    form_order = ("source_experiment", "models", "base", "method", "sweep_steps", "sweep_from", "sweep_to", "save_at",
                  "lam", "p", "seed", "tasks", "split", "eval_size", "name")

    method: Method = Field("task_arithmetic")
    sweep_steps: int = Field(11, ge=2, le=MAX_SWEEP_STEPS,
                             description="Values of the method's main knob (lambda, density or alpha) to score.")
    sweep_from: float | None = Field(None, description="Empty: the knob's usual range.")
    sweep_to: float | None = None
    save_at: float | None = Field(None, title="Save the merge at",
                                  description="Knob value of the merged model stored in the catalog; empty: the best on the mean over tasks.")
    lam: float = Field(1.0, ge=0.0, le=5.0, title="TIES: lambda")
    p: float = Field(0.5, ge=0.0, le=0.99, title="DARE: drop probability")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="DARE's masks; weight matching's layer order.")
    name: str = Field("", max_length=200, description="Name of the merged checkpoint (default: from the method).")

    @classmethod
    def form_setup(cls, form) -> None:
        from analysis.merging import METHODS

        super().form_setup(form)
        form.fields["method"].choices = [(name, f"{m.label} ({m.citation})") for name, m in METHODS.items()]

    def check(self, ctx: Checks) -> None:
        from analysis import merging

        method = merging.get_method(self.method)
        chosen = self.check_family(ctx, method)
        if chosen is None:
            return
        models, base = chosen
        knob = method.knob
        lo = knob.low if self.sweep_from is None else self.sweep_from
        hi = knob.high if self.sweep_to is None else self.sweep_to
        for name, value in (("sweep_from", lo), ("sweep_to", hi), ("save_at", self.save_at)):
            if value is not None and not knob.low <= value <= knob.high:
                ctx.error(name, f"{knob.name} must be between {knob.low} and {knob.high}")
        if lo >= hi:
            ctx.error("sweep_to", "must be larger than the start of the sweep")
        if not ctx.errors:
            self.check_data_fits(ctx, models, models[0].spec)
        ctx.params.update(sweep_from=lo, sweep_to=hi)


class GreedyMergeParams(FamilyParams):
    """The merge's relatives and tasks; the pool is merged greedily by kinship instead of swept."""

    form_order = ("source_experiment", "models", "base", "lam", "random_runs", "tasks", "split", "eval_size")
    min_models: ClassVar[int] = 3

    models: list[Slug] = Field(title="Pool", max_length=MAX_MODELS,
                               description=f"Three to {MAX_MODELS} relatives (fine-tunes of the base).")
    base: Slug = Field("", title="Base model", json_schema_extra=ui(widget="select"),
                       description="Their common base: kinship compares deltas from it.")
    lam: float = Field(0.5, ge=0.0, le=5.0, title="lambda",
                       description="Task arithmetic scale: each candidate is base + lambda x the sum of its members' deltas.")
    random_runs: int = Field(3, ge=1, le=10, description="Random partner orders to compare with (seeds 0, 1, ...).")

    def check(self, ctx: Checks) -> None:
        from analysis import merging

        chosen = self.check_family(ctx, merging.get_method("task_arithmetic"))
        if chosen is not None and not ctx.errors:
            self.check_data_fits(ctx, chosen[0], chosen[0][0].spec)
