"""Parameters of the landscape, Hessian and connectivity jobs, with their limits."""

from __future__ import annotations

from django import forms
from django.conf import settings

from webapp.catalog.selectors import checkpoint_get_visible
from webapp.catalog.uploads import PendingCheckpoint, PendingDataset, UploadRejected, folder_files_as_zip, parse_spec_json
from webapp.landscapes import evaluation_data
from webapp.landscapes.three_model_form import ThreeModelPlaneMixin
from webapp.training.forms import JobOptionsMixin

MAX_PLANE_RESOLUTION = 101
MAX_LINE_STEPS = 1001
MAX_EVAL_SIZE = 20_000
# Multiply-adds of one job, about (points x samples x parameters): keeps a job to minutes on a CPU.
MAX_WORK = settings.TERRAIN_MAX_JOB_MULTIPLY_ADDS
MAX_HESSIAN_PARAMETERS = settings.TERRAIN_MAX_HESSIAN_PARAMETERS
# Weights of a logged run's whole trajectory loaded for PCA axes (4 GiB of float32, the trajectory-file limit).
MAX_TRAJECTORY_VALUES = 2**30
MATCHABLE_MODEL_TYPES = {"gpt2", "bert", "roberta", "distilbert", "llama", "gpt_neox", "resnet"}  # analysis.sources.permutations


class EvaluationDataMixin(forms.Form):
    dataset = forms.ChoiceField(choices=evaluation_data.BUILTIN_DATASETS, initial=evaluation_data.CHECKPOINT_DATA)
    dataset_file = forms.FileField(required=False, help_text="Or upload (X, y) as .npz or .safetensors.")
    split = forms.ChoiceField(choices=evaluation_data.SPLITS, initial="train")
    eval_size = forms.IntegerField(
        label="Evaluation-set size", initial=2000, min_value=1, max_value=MAX_EVAL_SIZE,
        help_text=f"Samples evaluated per point (at most {MAX_EVAL_SIZE:,}).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = evaluation_data.dataset_choices(self.user)


HEAD_CHOICES = [("", "as in config.json"), ("causal-lm", "causal LM"), ("masked-lm", "masked LM"),
                ("sequence-classification", "sequence classification"), ("image-classification", "image classification")]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (a model folder's files)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


class CheckpointFieldsMixin(forms.Form):
    checkpoint = forms.CharField(required=False, max_length=32, help_text="Slug of a catalog checkpoint.")
    checkpoint_file = forms.FileField(
        required=False,
        help_text="Or upload one: a Terrain .safetensors (or weights-only .pt with its spec), a Hugging Face or LoRA "
                  "folder as .zip (config.json + model.safetensors), or an .onnx graph (lines and planes only).",
    )
    model_files = MultipleFileField(required=False, label="Or the folder's files",
                                    help_text="Select config.json + model.safetensors (or adapter_config.json + adapter_model.safetensors) together.")
    base_checkpoint = forms.CharField(required=False, max_length=32, label="LoRA base",
                                      help_text="For a LoRA adapter upload: slug of its base (a Hugging Face checkpoint).")
    head = forms.ChoiceField(required=False, choices=HEAD_CHOICES, help_text="Hugging Face uploads: the head to analyse.")
    num_labels = forms.IntegerField(required=False, min_value=2, max_value=100_000, help_text="Classes of a classification head you attach.")
    spec_json = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Architecture spec (JSON)",
        help_text='Needed for a .pt upload, e.g. {"kind": "mlp", "in": 64, "hidden": [64, 64], "out": 10}.',
    )

    def clean_spec_json(self):
        try:
            return parse_spec_json(self.cleaned_data.get("spec_json", ""))
        except UploadRejected as exc:
            raise forms.ValidationError(str(exc)) from None

    def _visible_checkpoint(self, slug: str, field: str):
        checkpoint = checkpoint_get_visible(slug=slug, user=self.user)
        if checkpoint is None:
            self.add_error(field, f"no checkpoint {slug!r} that you can see")
        return checkpoint


def _macs_per_sample(model, X1) -> float | None:
    """Multiply-adds of one forward pass on one sample, counted by torch's FLOP counter (None for ONNX)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    if not model.differentiable:
        return None
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.module(X1)
    return counter.get_total_flops() / 2


def _user_ok(user) -> bool:
    return user is not None and user.is_authenticated


class AnalysisJobForm(JobOptionsMixin, CheckpointFieldsMixin, EvaluationDataMixin):
    """Shared clean-up: resolve (or upload) the checkpoint and data, check they fit together.

    Uploads are validated last, and only when every other field is valid; they stay
    pending (nothing stored) until job_submit stores them with the job, in one
    transaction, so a rejected form leaves nothing behind.
    """

    checkpoint_fields: tuple[str, ...] = ("checkpoint",)
    run = forms.CharField(
        required=False, max_length=32,
        help_text="Slug of a logged run: its checkpoints form the trajectory; with no checkpoint given, its latest is used.",
    )

    def clean(self):
        cleaned = super().clean()
        self.pending_uploads = []
        if self.errors:
            return cleaned
        self.checkpoints = {}
        self.run = None
        if (cleaned.get("run") or "").strip():
            self._resolve_run(cleaned)
            if self.errors:
                return cleaned
        for field in self.checkpoint_fields:
            slug = (cleaned.get(field) or "").strip()
            if slug:
                self.checkpoints[field] = self._visible_checkpoint(slug, field)
        if self.errors:
            return cleaned
        upload = cleaned.get("checkpoint_file")
        if upload is None and cleaned.get("model_files"):
            try:
                upload = folder_files_as_zip(cleaned["model_files"])
            except UploadRejected as exc:
                self.add_error("model_files", f"upload rejected: {exc}")
                return cleaned
        if upload is not None:
            if not _user_ok(self.user):
                self.add_error("checkpoint_file", "log in to upload")
                return cleaned
            base_slug = (cleaned.get("base_checkpoint") or "").strip()
            base = self._visible_checkpoint(base_slug, "base_checkpoint") if base_slug else None
            if self.errors:
                return cleaned
            try:
                self.checkpoints["checkpoint"] = self._pending(PendingCheckpoint(
                    upload, cleaned.get("spec_json"), base=base, head=cleaned.get("head") or "", num_labels=cleaned.get("num_labels"),
                ))
            except UploadRejected as exc:
                self.add_error(getattr(exc, "field", None) or "checkpoint_file", f"upload rejected: {exc}")
                return cleaned
        if "checkpoint" not in self.checkpoints:
            self.add_error("checkpoint", "choose a catalog checkpoint or upload one")
        if self.errors:
            return cleaned
        data_upload = cleaned.get("dataset_file")
        if data_upload is not None:
            if not _user_ok(self.user):
                self.add_error("dataset_file", "log in to upload")
                return cleaned
            try:
                self.pending_dataset = self._pending(PendingDataset(data_upload))
            except UploadRejected as exc:
                self.add_error("dataset_file", f"upload rejected: {exc}")
                return cleaned
            cleaned["dataset"] = evaluation_data.UPLOAD_PREFIX + self.pending_dataset.slug
        cleaned["dataset"] = evaluation_data.resolve(cleaned["dataset"], self.checkpoints["checkpoint"])
        self._check_data_fits(cleaned)
        return cleaned

    def _resolve_run(self, cleaned):
        from webapp.runs.selectors import run_get_visible, run_latest_checkpoint

        slug = cleaned["run"].strip()
        self.run = run_get_visible(slug=slug, user=self.user)
        if self.run is None:
            self.add_error("run", f"no run {slug!r} that you can see")
            return
        latest = run_latest_checkpoint(run=self.run)
        if latest is None:
            self.add_error("run", "this run has no Terrain checkpoint yet (log one with run.log_checkpoint)")
        elif not (cleaned.get("checkpoint") or "").strip() and cleaned.get("checkpoint_file") is None:
            cleaned["checkpoint"] = latest.slug

    def run_trajectory_size(self) -> int:
        from webapp.runs.selectors import run_trajectory_checkpoints

        return len(run_trajectory_checkpoints(run=self.run, spec=self.checkpoints["checkpoint"].spec)) if self.run else 0

    def _pending(self, upload):
        self.pending_uploads.append(upload)
        return upload

    def _check_data_fits(self, cleaned):
        from analysis import data, zoo

        pending = getattr(self, "pending_dataset", None)
        if any(c.source != "builtin" for c in self.checkpoints.values()):
            self._check_model_data(cleaned, pending)
            return
        try:
            if pending is not None and cleaned["dataset"] == evaluation_data.UPLOAD_PREFIX + pending.slug:
                description = pending.description
            else:
                description = evaluation_data.describe(cleaned["dataset"], getattr(self.user, "pk", None))
        except data.DataError as exc:
            self.add_error("dataset", str(exc))
            return
        self.data_description = description
        for field, checkpoint in self.checkpoints.items():
            try:
                zoo.check_compatible(checkpoint.spec, description)
            except zoo.SpecError as exc:
                self.add_error("dataset", f"does not fit checkpoint {checkpoint.name!r}: {exc}")

    def _check_model_data(self, cleaned, pending=None):
        """A user's own model: load it and the data, and check ids, positions and labels before queueing."""
        import tempfile
        from pathlib import Path

        from django.conf import settings

        from analysis import data
        from analysis.sources import SourceError
        from analysis.sources import data as source_data

        from webapp.catalog.model_files import load_checkpoint

        try:
            if pending is not None and cleaned["dataset"] == evaluation_data.UPLOAD_PREFIX + pending.slug:  # not stored yet
                X, y = evaluation_data.subsample(*evaluation_data.load_upload_file(pending.path, info=pending.info, split=cleaned["split"]),
                                                 cleaned["eval_size"])
            else:
                X, y = evaluation_data.evaluation_data(dataset=cleaned["dataset"], split=cleaned["split"], size=cleaned["eval_size"],
                                                       owner_id=getattr(self.user, "pk", None))
        except (data.DataError, SourceError) as exc:
            self.add_error("dataset", str(exc))
            return
        seq_len = int(X.shape[1]) if not X.is_floating_point() and X.dim() == 2 else 1
        if seq_len > settings.TERRAIN_MAX_SEQUENCE_LENGTH:
            self.add_error("dataset", f"sequences of {seq_len} tokens exceed this server's limit of {settings.TERRAIN_MAX_SEQUENCE_LENGTH} (TERRAIN_MAX_SEQUENCE_LENGTH)")
            return
        macs = None
        for field, checkpoint in self.checkpoints.items():
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    model = load_checkpoint(checkpoint, Path(tmp))
                    source_data.check_against(model, X, y)
                except SourceError as exc:
                    self.add_error("dataset" if exc.field == "data" else field, f"does not fit {checkpoint.name!r}: {exc}")
                    continue
                if field == "checkpoint":
                    macs = _macs_per_sample(model, X[:1])
        self.data_description = {"num_samples": len(X), "num_train": len(X), "num_test": len(X), "seq_len": seq_len,
                                 "macs_per_sample": macs}

    def work_per_point(self, cleaned) -> float:
        """Multiply-adds of one evaluation of the loss: samples x (counted FLOPs of one forward / 2,
        or tokens x parameters where they cannot be counted)."""
        description = getattr(self, "data_description", {})
        per_sample = description.get("macs_per_sample") or description.get("seq_len", 1) * self.checkpoints["checkpoint"].num_parameters
        return self.eval_points(cleaned) * per_sample

    def eval_points(self, cleaned) -> int:
        available = self.data_description["num_train" if cleaned["split"] == "train" else "num_test" if cleaned["split"] == "test" else "num_samples"]
        return min(cleaned["eval_size"], available)

    def common_params(self) -> dict:
        cleaned = self.cleaned_data
        return {
            "checkpoint": self.checkpoints["checkpoint"].slug,
            "dataset": cleaned["dataset"],
            "split": cleaned["split"],
            "eval_size": cleaned["eval_size"],
            "run": self.run.slug if self.run else "",
        }


class LandscapeForm(ThreeModelPlaneMixin, AnalysisJobForm):
    checkpoint_fields = ("checkpoint", "end_checkpoint", "checkpoint_b", "checkpoint_c")

    mode = forms.ChoiceField(choices=[("plane", "2-D plane"), ("line", "1-D line")], initial="plane")
    axes = forms.ChoiceField(
        choices=[("random", "random, filter-normalised"), ("hessian", "top-2 Hessian eigenvectors"), ("pca", "PCA of the training trajectory"),
                 ("three_models", "the plane through three models (checkpoint, B, C)")],
        initial="random",
    )
    end_checkpoint = forms.CharField(required=False, max_length=32, help_text="Line mode: interpolate to this checkpoint (empty: a random direction).")
    resolution = forms.IntegerField(initial=41, min_value=3, max_value=MAX_LINE_STEPS,
                                    help_text=f"Points per axis (plane: at most {MAX_PLANE_RESOLUTION}; line: at most {MAX_LINE_STEPS}).")
    span = forms.FloatField(initial=0.0, min_value=0.0, max_value=100.0,
                            help_text="Half-width of each axis; 0 = automatic (1 for random and Hessian axes, 1.25x the trajectory's extent for PCA).")
    include_bias = forms.BooleanField(required=False, help_text="Random axes: also move biases and normalisation parameters.")
    batchnorm = forms.ChoiceField(choices=[("keep", "keep the centre's running statistics"), ("recompute", "re-estimate at every point")], initial="keep")
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**31 - 1)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        mode, resolution = cleaned["mode"], cleaned["resolution"]
        if mode == "plane" and resolution > MAX_PLANE_RESOLUTION:
            self.add_error("resolution", f"a plane has at most {MAX_PLANE_RESOLUTION}x{MAX_PLANE_RESOLUTION} points (asked {resolution}x{resolution})")
            return cleaned
        if mode == "plane" and cleaned["axes"] == "pca":
            states = self.run_trajectory_size()
            if self.run is not None and states < 3:
                self.add_error("axes", "PCA axes need at least 3 logged checkpoints of this architecture in the run")
            elif self.run is not None and states * self.checkpoints["checkpoint"].num_parameters > MAX_TRAJECTORY_VALUES:
                self.add_error("run", f"this run's {states} checkpoints hold over {MAX_TRAJECTORY_VALUES:.0e} weights in all, "
                                      "too many to load for PCA axes")
            elif self.run is None and not self.checkpoints["checkpoint"].trajectory_file:
                self.add_error("axes", "this checkpoint has no training trajectory; give a logged run, or choose random or hessian axes")
        end = self.checkpoints.get("end_checkpoint")
        if end is not None and end.spec != self.checkpoints["checkpoint"].spec:
            self.add_error("end_checkpoint", "must have the same architecture as the checkpoint")
        if mode == "plane" and cleaned.get("axes") == "three_models":
            self.clean_three_models(cleaned)
        if self.errors:
            return cleaned
        points = resolution * resolution if mode == "plane" else resolution
        points *= max(1, len(cleaned.get("tasks") or [])) if cleaned.get("axes") == "three_models" else 1
        work = points * self.work_per_point(cleaned)
        if work > MAX_WORK:
            self.add_error("resolution", f"this job would do about {work:.1e} multiply-adds, over the limit of {MAX_WORK:.0e}: lower the resolution or the evaluation-set size (the worker's TERRAIN_MAX_JOB_MULTIPLY_ADDS raises the limit)")
        return cleaned

    def to_params(self) -> dict:
        cleaned = self.cleaned_data
        end = self.checkpoints.get("end_checkpoint")
        return {
            **self.common_params(),
            "mode": cleaned["mode"],
            "axes": cleaned["axes"],
            "end_checkpoint": end.slug if end else "",
            "resolution": cleaned["resolution"],
            "span": cleaned["span"] or 0.0,
            "include_bias": bool(cleaned["include_bias"]),
            "batchnorm": cleaned["batchnorm"],
            "seed": cleaned["seed"] or 0,
            **self.three_model_params(),
        }


class HessianForm(AnalysisJobForm):
    top_k = forms.IntegerField(initial=5, min_value=1, max_value=20)
    trace = forms.BooleanField(required=False, initial=True)
    trace_matvecs = forms.IntegerField(initial=60, min_value=3, max_value=600, help_text="Hessian-vector products for Hutch++.")
    density = forms.BooleanField(required=False, initial=True)
    density_probes = forms.IntegerField(initial=4, min_value=1, max_value=16)
    density_iters = forms.IntegerField(initial=60, min_value=10, max_value=200)
    seed = forms.IntegerField(initial=0, min_value=0, max_value=2**31 - 1)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        checkpoint = self.checkpoints["checkpoint"]
        if checkpoint.source == "onnx":
            self.add_error("checkpoint", "an ONNX graph is forward-only (lines and planes); for a Hessian upload a Hugging Face folder (.zip)")
        elif checkpoint.num_parameters > MAX_HESSIAN_PARAMETERS:
            self.add_error("checkpoint", f"Hessian jobs take models of at most {MAX_HESSIAN_PARAMETERS:,} parameters (TERRAIN_MAX_HESSIAN_PARAMETERS raises it)")
        return cleaned

    def to_params(self) -> dict:
        c = self.cleaned_data
        return {
            **self.common_params(),
            "top_k": c["top_k"],
            "trace": bool(c["trace"]),
            "trace_matvecs": c["trace_matvecs"],
            "density": bool(c["density"]),
            "density_probes": c["density_probes"],
            "density_iters": c["density_iters"],
            "seed": c["seed"] or 0,
        }


class ConnectivityForm(AnalysisJobForm):
    checkpoint_fields = ("checkpoint", "checkpoint_b")

    checkpoint_b = forms.CharField(max_length=32, help_text="The other endpoint (same architecture).")
    steps = forms.IntegerField(initial=25, min_value=3, max_value=201, help_text="Points along the segment, endpoints included.")

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        a, b = self.checkpoints["checkpoint"], self.checkpoints["checkpoint_b"]
        if a.spec != b.spec or a.num_parameters != b.num_parameters:
            self.add_error("checkpoint_b", "must have the same architecture as the first checkpoint")
        elif a.source == "builtin" and a.spec.get("kind") not in ("mlp", "cnn"):
            self.add_error("checkpoint", "weight matching supports mlp and cnn checkpoints")
        elif a.source != "builtin" and a.model_info.get("model_type") not in MATCHABLE_MODEL_TYPES:
            self.add_error("checkpoint", f"weight matching supports built-in mlp/cnn and {', '.join(sorted(MATCHABLE_MODEL_TYPES))} models")
        return cleaned

    def to_params(self) -> dict:
        return {**self.common_params(), "checkpoint_b": self.checkpoints["checkpoint_b"].slug, "steps": self.cleaned_data["steps"]}
