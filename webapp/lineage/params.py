"""Parameters of the lineage job kinds: recovery from weights (a synthetic zoo, or an experiment's checkpoints),
importing a graph (files, pasted CSV, Hub ids) and the kinship of two checkpoints."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator

from webapp.catalog.uploads import UploadRejected
from webapp.jobs.params import Checks, JobParams, Uploads, ui
from webapp.lineage import imports

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


_ID_SPLIT = re.compile(r"[\s,]+")


def _id_lines(value):
    """The JSON API may send Hub ids as a list; the form sends the textarea's text."""
    return "\n".join(str(item) for item in value) if isinstance(value, list) else value


def hub_id_list(text: str) -> list[str]:
    return list(dict.fromkeys(i.strip().rstrip("/") for i in _ID_SPLIT.split(text or "") if i.strip()))


class LineageImportParams(JobParams):
    """Import a graph: edge lists and model cards (checked in the request, kept with the job), pasted CSV, Hub ids."""

    form_order: ClassVar[tuple[str, ...]] = ("name", "edge_files", "edges_text", "card_files", "hub_ids",
                                             "follow_parents", "experiment", "visibility")

    name: str = Field(min_length=1, max_length=200, description="What to call this graph.")
    edge_files: Uploads = Field(
        None, title="Edge lists (CSV or JSON)",
        description="Columns: a child id (id, model_id, current_model, child, ...) and its parent(s) (base_model, parent, "
                    "...; several separated by commas), optionally a relation (finetune, adapter, quantized, merge, "
                    "unknown, or 'source' for a root). Other columns become node attributes (license, language, ...).")
    edges_text: str = Field("", max_length=100_000, title="Or paste CSV",
                            description="Up to 100,000 characters; larger lists as a file.",
                            json_schema_extra=ui(widget="textarea", rows=4, placeholder="id,base_model\n"))
    card_files: Uploads = Field(
        None, title="Model cards (.md)",
        description="README.md files with YAML front matter (base_model, base_model_relation, license, language, "
                    "pipeline_tag ...). Name each <owner>__<model>.md: the file name gives the model id.")
    hub_ids: Annotated[str, BeforeValidator(_id_lines, json_schema_input_type=str | list[str])] = Field(
        "", title="Hub model ids", json_schema_extra=ui(widget="textarea", rows=3, placeholder="meta-llama/Llama-3.1-8B-Instruct"),
        description=f"One per line (at most {imports.MAX_HUB_IDS}): their model info is fetched from the Hugging Face Hub.")
    follow_parents: bool = Field(True, description="Also fetch the parents of those models, up the tree.")

    @field_validator("hub_ids")
    @classmethod
    def _bounded_ids(cls, text: str) -> str:
        ids = hub_id_list(text)
        if len(ids) > imports.MAX_HUB_IDS:
            raise ValueError(f"at most {imports.MAX_HUB_IDS} model ids (got {len(ids)})")
        too_long = [i for i in ids if len(i) > 200]
        if too_long:
            raise ValueError(f"{len(too_long)} model id(s) longer than 200 characters")
        return "\n".join(ids)

    @classmethod
    def form_setup(cls, form) -> None:
        form.fields["experiment"].help_text = "Slug of one of your experiments; empty: a new experiment for this graph."
        form.fields["visibility"].help_text = "Who sees a new experiment (and so this graph)."

    def check(self, ctx: Checks) -> None:
        from webapp.lineage import uploads
        from webapp.lineage.models import GraphSource, LineageUpload

        files = list(self.edge_files or []) + list(self.card_files or [])
        hub_ids = hub_id_list(self.hub_ids)
        if len(files) > imports.MAX_FILES:
            ctx.error(None, f"at most {imports.MAX_FILES} files at once")
        total, limit = sum(f.size or 0 for f in files), 4 * imports.max_upload_bytes()
        if total > limit:
            ctx.error(None, f"{total:,} bytes uploaded; the limit is {limit:,} in all")
        if not files and not self.edges_text and not hub_ids:
            ctx.error(None, "give at least one edge list, model card, pasted CSV or Hub model id")
        if ctx.errors:
            return
        given = [("edge_files", f, LineageUpload.Kind.EDGES) for f in self.edge_files or []]
        given += [("edges_text", uploads.pasted_edges(self.edges_text), LineageUpload.Kind.EDGES)] if self.edges_text else []
        given += [("card_files", f, LineageUpload.Kind.CARD) for f in self.card_files or []]
        for field, uploaded, kind in given:
            try:  # kept by job_submit, in the transaction that queues the job (params_validate closes them on errors)
                ctx.pending_uploads.append(uploads.PendingLineageFile(uploaded, kind))
            except UploadRejected as exc:
                ctx.error(field, str(exc))
        files_params = [{"upload": p.slug, "name": p.original_name, "kind": p.kind} for p in ctx.pending_uploads]
        source = (GraphSource.MIXED if files_params and hub_ids else GraphSource.HUB if hub_ids else GraphSource.UPLOAD)
        ctx.params = {"name": self.name, "files": files_params, "hub_ids": hub_ids,
                      "follow_parents": self.follow_parents, "source": str(source)}


class KinshipParams(JobParams):
    """Two catalog checkpoints (and their base); the cheap checks run in the request, the weights in the worker."""

    form_order: ClassVar[tuple[str, ...]] = ("a", "b", "base", "visibility", "experiment")

    a: str = Field(min_length=1, max_length=32, title="Checkpoint A", description="Slug of a catalog checkpoint.")
    b: str = Field(min_length=1, max_length=32, title="Checkpoint B")
    base: str = Field("", max_length=32, title="Common base", description="Empty: their nearest common ancestor in the catalog.")

    def check(self, ctx: Checks) -> None:
        from webapp.catalog.selectors import checkpoint_get_visible
        from webapp.lineage.kinship import KinshipError, kinship_base

        found = {}
        for key in ("a", "b", "base"):
            slug = getattr(self, key)
            if slug:
                found[key] = checkpoint_get_visible(slug=slug, user=ctx.user)
                if found[key] is None:
                    ctx.error(key, f"no checkpoint {slug!r} that you can see")
        if ctx.errors:
            return
        try:
            base = kinship_base(a=found["a"], b=found["b"], base=found.get("base"))
        except KinshipError as exc:
            ctx.error(exc.field, exc.message)
            return
        ctx.params = {"a": self.a, "b": self.b, "base": base.slug}
