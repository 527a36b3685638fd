"""Parameters of the landscape, Hessian and connectivity kinds, declared once (form, API, schema, CLI follow),
with the limits that keep a job to minutes; the catalog and data checks are in webapp.landscapes.inputs."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from django.conf import settings
from pydantic import BeforeValidator, Field

from webapp.catalog.uploads import SPEC_FIELD_TITLE, UploadRejected, parse_spec_json
from webapp.jobs.params import Checks, JobParams, Upload, Uploads, ui
from webapp.landscapes import evaluation_data
from webapp.landscapes.inputs import AnalysisInputs, resolve_inputs
from webapp.landscapes.three_model_params import ThreeModelPlaneFields, check_three_models, three_model_params

MAX_PLANE_RESOLUTION = 101
MAX_LINE_STEPS = 1001
MAX_EVAL_SIZE = 20_000
# Multiply-adds of one job, about (points x samples x parameters): keeps a job to minutes on a CPU.
MAX_WORK = settings.TERRAIN_MAX_JOB_MULTIPLY_ADDS
MAX_HESSIAN_PARAMETERS = settings.TERRAIN_MAX_HESSIAN_PARAMETERS
# Weights of a logged run's whole trajectory loaded for PCA axes (4 GiB of float32, the trajectory-file limit).
MAX_TRAJECTORY_VALUES = 2**30
MATCHABLE_MODEL_TYPES = {"gpt2", "bert", "roberta", "distilbert", "llama", "gpt_neox", "resnet"}  # analysis.sources.permutations
HEADS = {"": "as in config.json", "causal-lm": "causal LM", "masked-lm": "masked LM",
         "sequence-classification": "sequence classification", "image-classification": "image classification"}
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


def _spec_json(value: Any) -> Any:
    """The architecture spec of a .pt upload: JSON text (the form) or an object (the JSON API)."""
    if not isinstance(value, str):
        return value
    try:
        return parse_spec_json(value)
    except UploadRejected as exc:
        raise ValueError(str(exc)) from None


class AnalysisParams(JobParams):
    """What every analysis of one checkpoint takes: the checkpoint (catalog or upload) and the data."""

    dataset: str = Field(evaluation_data.CHECKPOINT_DATA, max_length=120, json_schema_extra=ui(widget="select"),
                         description="A built-in data set, the checkpoint's own, or one you uploaded (upload:<slug>).")
    dataset_file: Upload = Field(None, description="Or upload (X, y) as .npz or .safetensors.")
    split: Literal[tuple(value for value, _ in evaluation_data.SPLITS)] = "train"
    eval_size: int = Field(2000, ge=1, le=MAX_EVAL_SIZE, title="Evaluation-set size",
                           description=f"Samples evaluated per point (at most {MAX_EVAL_SIZE:,}).")
    checkpoint: str = Field("", max_length=32, description="Slug of a catalog checkpoint.")
    checkpoint_file: Upload = Field(
        None, description="Or upload one: a Terrain .safetensors (or weights-only .pt with its spec), a Hugging Face or LoRA "
                          "folder as .zip (config.json + model.safetensors), or an .onnx graph (lines and planes only).")
    model_files: Uploads = Field(None, title="Or the folder's files",
                                 description="Select config.json + model.safetensors (or adapter_config.json + "
                                             "adapter_model.safetensors) together.")
    base_checkpoint: str = Field("", max_length=32, title="LoRA base",
                                 description="For a LoRA adapter upload: slug of its base (a Hugging Face checkpoint).")
    head: Literal[tuple(HEADS)] = Field("", json_schema_extra=ui(labels=HEADS), description="Hugging Face uploads: the head to analyse.")
    num_labels: int | None = Field(None, ge=2, le=100_000, description="Classes of a classification head you attach.")
    spec_json: Annotated[dict | None, BeforeValidator(_spec_json, json_schema_input_type=str | dict | None)] = Field(
        None, title=SPEC_FIELD_TITLE, json_schema_extra=ui(widget="textarea", rows=2),
        description='Needed for a .pt upload, e.g. {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}.')
    run: str = Field("", max_length=32, description="Slug of a logged run: its checkpoints form the trajectory; with no "
                                                    "checkpoint given, its latest is used.")

    @classmethod
    def form_setup(cls, form) -> None:
        form.fields["dataset"].choices = evaluation_data.dataset_choices(form.user)

    def check(self, ctx: Checks) -> None:
        self.check_choices(ctx)
        if ctx.errors:
            return
        inputs = resolve_inputs(self, ctx, self.checkpoint_fields())
        if inputs is None:
            return
        kind_params = self.check_kind(ctx, inputs)
        if not ctx.errors:
            ctx.params.clear()
            ctx.params.update({**inputs.common_params(self), **kind_params})

    def checkpoint_fields(self) -> tuple[str, ...]:
        """The fields naming a checkpoint that this job uses (the others are ignored)."""
        return ("checkpoint",)

    def check_choices(self, ctx: Checks) -> None:
        """Checks of the chosen options alone, before any checkpoint or data is looked at."""

    def check_kind(self, ctx: Checks, inputs: AnalysisInputs) -> dict:
        """The kind's own checks (errors into ctx); returns its parameters besides the common ones."""
        return {}


class LandscapeParams(ThreeModelPlaneFields, AnalysisParams):
    mode: Literal["plane", "line"] = Field("plane", json_schema_extra=ui(labels={"plane": "2-D plane", "line": "1-D line"}))
    axes: Literal["random", "hessian", "pca", "three_models"] = Field("random", json_schema_extra=ui(labels={
        "random": "random, filter-normalised", "hessian": "top Hessian eigenvectors (a line: the top one)",
        "pca": "PCA of the training trajectory (a line: its first component)",
        "three_models": "the plane through three models (checkpoint, B, C)"}))
    end_checkpoint: str = Field("", max_length=32, description="Line mode: interpolate to this checkpoint (empty: along the chosen axis: random, the top Hessian eigenvector or the first PCA component).")
    resolution: int = Field(41, ge=3, le=MAX_LINE_STEPS,
                            description=f"Points per axis (plane: at most {MAX_PLANE_RESOLUTION}; line: at most {MAX_LINE_STEPS}).")
    span: float = Field(0.0, ge=0.0, le=100.0, description="Half-width of each axis; 0 = automatic (1 for random and Hessian "
                                                           "axes, 1.25x the trajectory's extent for PCA).")
    include_bias: bool = Field(False, description="Random axes: also move biases and normalisation parameters.")
    batchnorm: Literal["keep", "recompute"] = Field("keep", json_schema_extra=ui(labels={
        "keep": "keep the centre's running statistics", "recompute": "re-estimate at every point"}))
    seed: Seed = 0

    form_order: ClassVar[tuple[str, ...]] = (
        "dataset", "dataset_file", "split", "eval_size", "checkpoint", "checkpoint_file", "model_files", "base_checkpoint",
        "head", "num_labels", "spec_json", "visibility", "experiment", "run", "checkpoint_b", "checkpoint_c", "markers", "tasks")

    def checkpoint_fields(self) -> tuple[str, ...]:
        if self.mode == "line":
            return ("checkpoint", "end_checkpoint")
        return ("checkpoint", "checkpoint_b", "checkpoint_c") if self.axes == "three_models" else ("checkpoint",)

    def check_choices(self, ctx: Checks) -> None:
        if self.mode == "line" and self.axes == "three_models":
            ctx.error("axes", "the plane through three models is 2-D: choose mode plane, or a line's random, Hessian or PCA "
                              "axis (a line to one other model: give its end checkpoint)")
        elif self.mode == "line" and self.axes != "random" and self.end_checkpoint.strip():
            ctx.error("axes", f"a line to an end checkpoint follows the straight path between the two models; clear the end "
                              f"checkpoint for a line along the {self.axes.upper() if self.axes == 'pca' else 'Hessian'} axis")

    def check_kind(self, ctx: Checks, inputs: AnalysisInputs) -> dict:
        if self.axes == "hessian" and inputs.checkpoint.source == "onnx":
            ctx.error("axes", "Hessian axes need gradients and an ONNX graph is forward-only: choose random axes, "
                              "or upload the model as a Hugging Face folder (.zip)")
            return {}
        if self.mode == "plane" and self.resolution > MAX_PLANE_RESOLUTION:
            ctx.error("resolution", f"a plane has at most {MAX_PLANE_RESOLUTION}x{MAX_PLANE_RESOLUTION} points "
                                    f"(asked {self.resolution}x{self.resolution})")
            return {}
        if self.axes == "pca":
            self._check_trajectory(ctx, inputs)
        end = inputs.checkpoints.get("end_checkpoint")  # its architecture is checked with the inputs
        three_models = self.mode == "plane" and self.axes == "three_models"
        markers = check_three_models(self, ctx, inputs) if three_models else []
        if ctx.errors:
            return {}
        points = self.resolution * self.resolution if self.mode == "plane" else self.resolution
        points *= max(1, self.task_count()) if self.axes == "three_models" else 1
        work = points * inputs.work_per_point(self)
        if work > MAX_WORK:
            ctx.error("resolution", f"this job would do about {work:.1e} multiply-adds, over the limit of {MAX_WORK:.0e}: lower the "
                                    "resolution or the evaluation-set size (the worker's TERRAIN_MAX_JOB_MULTIPLY_ADDS raises the limit)")
        return {
            "mode": self.mode, "axes": self.axes, "end_checkpoint": end.slug if end else "", "resolution": self.resolution,
            "span": self.span, "include_bias": self.include_bias, "batchnorm": self.batchnorm, "seed": self.seed,
            "work": work,  # estimated multiply-adds: whether the job is worth splitting (fanout_blocks)
            **(three_model_params(self, inputs, markers) if three_models else {}),
        }

    def _check_trajectory(self, ctx: Checks, inputs: AnalysisInputs) -> None:
        states = inputs.run_trajectory_size()
        if inputs.run is not None and states < 3:
            ctx.error("axes", "PCA axes need at least 3 logged checkpoints of this architecture in the run")
        elif inputs.run is not None and states * inputs.checkpoint.num_parameters > MAX_TRAJECTORY_VALUES:
            ctx.error("run", f"this run's {states} checkpoints hold over {MAX_TRAJECTORY_VALUES:.0e} weights in all, "
                             "too many to load for PCA axes")
        elif inputs.run is None and not inputs.checkpoint.trajectory_file:
            ctx.error("axes", "this checkpoint has no training trajectory; give a logged run, or choose random or hessian axes")


class HessianParams(AnalysisParams):
    top_k: int = Field(5, ge=1, le=20)
    trace: bool = True
    trace_matvecs: int = Field(60, ge=3, le=600, description="Hessian-vector products for Hutch++.")
    density: bool = True
    density_probes: int = Field(4, ge=1, le=16)
    density_iters: int = Field(60, ge=10, le=200)
    seed: Seed = 0

    def check_kind(self, ctx: Checks, inputs: AnalysisInputs) -> dict:
        checkpoint = inputs.checkpoint
        if checkpoint.source == "onnx":
            ctx.error("checkpoint", "an ONNX graph is forward-only (lines and planes); for a Hessian upload a Hugging Face folder (.zip)")
        elif checkpoint.num_parameters > MAX_HESSIAN_PARAMETERS:
            ctx.error("checkpoint", f"Hessian jobs take models of at most {MAX_HESSIAN_PARAMETERS:,} parameters "
                                    "(TERRAIN_MAX_HESSIAN_PARAMETERS raises it)")
        chosen = self.model_dump(include={"top_k", "trace", "trace_matvecs", "density", "density_probes", "density_iters", "seed"})
        # estimated multiply-adds of the density, the part that fans out: a Hessian-vector product costs
        # about four forward passes (webapp.landscapes.fanout_blocks decides by it)
        probes = self.density_probes * self.density_iters if self.density else 0
        return {**chosen, "work": 4 * probes * inputs.work_per_point(self)}


class ConnectivityParams(AnalysisParams):
    checkpoint_b: str = Field(min_length=1, max_length=32, description="The other endpoint (same architecture).")
    steps: int = Field(25, ge=3, le=201, description="Points along the segment, endpoints included.")

    def checkpoint_fields(self) -> tuple[str, ...]:
        return ("checkpoint", "checkpoint_b")

    def check_kind(self, ctx: Checks, inputs: AnalysisInputs) -> dict:
        a, b = inputs.checkpoint, inputs.checkpoints["checkpoint_b"]  # of one architecture (checked with the inputs)
        if a.source == "builtin" and a.spec.get("kind") not in ("mlp", "cnn"):
            ctx.error("checkpoint", "weight matching supports mlp and cnn checkpoints")
        elif a.source != "builtin" and a.model_info.get("model_type") not in MATCHABLE_MODEL_TYPES:
            ctx.error("checkpoint", f"weight matching supports built-in mlp/cnn and {', '.join(sorted(MATCHABLE_MODEL_TYPES))} models")
        return {"checkpoint_b": b.slug, "steps": self.steps}
