"""Parameters of lineage recovery from weights (the `lineage_recovery` kind): a synthetic zoo, or an experiment's checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from webapp.jobs.params import Checks, JobParams, ui

MAX_RECOVERY_MODELS = 200
# Flattened float64 weights of every model are held at once (plus a Gram matrix).
MAX_RECOVERY_VALUES = 25_000_000
# analysis.lineage.zoo_recipes.RECIPES' names (not imported: that loads torch; a test holds them equal).
Recipe = Literal["", "adam_short", "adam_converged", "sgd_momentum", "noisy_labels", "quantized_leaves", "merges",
                 "lora_adapters", "cnn", "deep_chains", "mixed_everything"]
SOURCES = {"synthetic": "a synthetic zoo, trained now (its true lineage is known)",
           "experiment": "the checkpoints of a catalog experiment"}
CLASSIC_ZOO = "the classic zoo (families, children and grandchildren below)"


class RecoveryParams(JobParams):
    """Recover lineage from weights: a synthetic zoo trained on request, or an experiment's checkpoints."""

    source: Literal["synthetic", "experiment"] = Field("synthetic", json_schema_extra=ui(labels=SOURCES))
    source_experiment: str = Field(
        "", max_length=120, title="Experiment to recover",
        description="Slug of an experiment you can see; its checkpoints of the most common architecture are used. "
                    "Their parent links, if any, are the truth the result is scored against.")
    recipe: Recipe = Field(
        "", title="Zoo: recipe", json_schema_extra=ui(labels={"": CLASSIC_ZOO}),
        description="A recipe from the zoo generator: optimisers, converged roots, quantised leaves, merges, LoRA "
                    "adapters, a CNN. The family-size fields below apply to the classic zoo only.")
    n_families: int = Field(3, ge=1, le=6, title="Zoo: families")
    children_per_root: int = Field(4, ge=1, le=6, title="Zoo: children per root")
    grandchildren_per_child: int = Field(2, ge=0, le=3, title="Zoo: grandchildren per child")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    direction_weight: float = Field(
        0.25, ge=0.0, le=2.0,
        description="Weight of the weight-kurtosis direction cue beside sibling geometry (1 = one pair of siblings).")

    @classmethod
    def form_setup(cls, form) -> None:
        from analysis.lineage.zoo_recipes import RECIPES  # torch: imported when the form is used, not at startup

        form.fields["experiment"].help_text = "Slug of one of your experiments to file this job under (optional)."
        form.fields["recipe"].choices = [("", CLASSIC_ZOO)] + [(name, f"{name}: {r.description}") for name, r in RECIPES.items()]

    def check(self, ctx: Checks) -> None:
        ctx.params = {"source": self.source, "seed": self.seed, "direction_weight": self.direction_weight}
        if self.source == "synthetic":
            ctx.params.update(n_families=self.n_families, children_per_root=self.children_per_root,
                              grandchildren_per_child=self.grandchildren_per_child)
            if self.recipe:
                ctx.params["recipe"] = self.recipe
            return
        # The set is fixed when the job is submitted: later uploads do not change a result.
        from webapp.catalog.selectors import checkpoints_of_experiment, experiment_get_visible

        slug = self.source_experiment
        experiment = experiment_get_visible(slug=slug, user=ctx.user) if slug else None
        if experiment is None:
            ctx.error("source_experiment", f"no experiment {slug!r} that you can see" if slug else
                      "name the experiment whose checkpoints to recover")
            return
        checkpoints = list(checkpoints_of_experiment(experiment=experiment, user=ctx.user).order_by("created_at", "pk"))
        specs: dict[str, list] = {}
        for c in checkpoints:
            specs.setdefault(repr(sorted(c.spec.items())) if isinstance(c.spec, dict) else repr(c.spec), []).append(c)
        same = max(specs.values(), key=len) if specs else []
        if len(same) < 3:
            ctx.error("source_experiment", f"needs at least 3 checkpoints of one architecture (found {len(same)})")
        elif len(same) > MAX_RECOVERY_MODELS:
            ctx.error("source_experiment", f"at most {MAX_RECOVERY_MODELS} checkpoints (found {len(same)})")
        elif sum(c.num_parameters for c in same) > MAX_RECOVERY_VALUES:
            ctx.error("source_experiment", f"the checkpoints hold over {MAX_RECOVERY_VALUES:,} weights in all; "
                      "too many to compare pairwise here")
        ctx.params.update(source_experiment=experiment.slug, checkpoints=[c.slug for c in same],
                          left_out=len(checkpoints) - len(same))
