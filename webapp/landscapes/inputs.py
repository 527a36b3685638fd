"""What an analysis job of one checkpoint evaluates, resolved and checked before anything is stored.

The checkpoints come from the catalog (visible to the user) or from an upload, which stays
pending (validated, nothing stored) until job_submit stores it with the job in one
transaction, so a rejected request leaves nothing behind; the same holds for an uploaded
data set.  A logged run gives the trajectory (and, with no checkpoint named, its latest
one).  Then the data is checked to fit every checkpoint: a built-in model by its spec,
a user's own model by loading it and running the data's first batch through it.
Problems go to the parameter they are about (`ctx.error(field, message)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webapp.catalog.selectors import architecture_label, checkpoint_get_visible
from webapp.catalog.uploads import PendingCheckpoint, PendingDataset, UploadRejected, folder_files_as_zip
from webapp.jobs.params import Checks
from webapp.landscapes import evaluation_data


@dataclass
class AnalysisInputs:
    checkpoints: dict[str, Any] = field(default_factory=dict)  # field -> Checkpoint (or a pending upload)
    run: Any = None
    dataset: str = ""  # resolved: never "the checkpoint's own data"
    description: dict = field(default_factory=dict)  # of the data: sizes, seq_len, multiply-adds per sample

    @property
    def checkpoint(self):
        return self.checkpoints["checkpoint"]

    def eval_points(self, params) -> int:
        split = params.split
        available = self.description["num_train" if split == "train" else "num_test" if split == "test" else "num_samples"]
        return min(params.eval_size, available)

    def work_per_point(self, params) -> float:
        """Multiply-adds of one evaluation of the loss: samples x (counted FLOPs of one forward / 2,
        or tokens x parameters where they cannot be counted)."""
        per_sample = self.description.get("macs_per_sample") or self.description.get("seq_len", 1) * self.checkpoint.num_parameters
        return self.eval_points(params) * per_sample

    def run_trajectory_size(self) -> int:
        from webapp.runs.selectors import run_trajectory_checkpoints

        return len(run_trajectory_checkpoints(run=self.run, spec=self.checkpoint.spec)) if self.run else 0

    def common_params(self, params) -> dict:
        return {"checkpoint": self.checkpoint.slug, "dataset": self.dataset, "split": params.split,
                "eval_size": params.eval_size, "run": self.run.slug if self.run else ""}


def _user_ok(user) -> bool:
    return user is not None and user.is_authenticated


def visible_checkpoint(slug: str, name: str, ctx: Checks):
    checkpoint = checkpoint_get_visible(slug=slug, user=ctx.user)
    if checkpoint is None:
        ctx.error(name, f"no checkpoint {slug!r} that you can see")
    return checkpoint


def _pending(upload, ctx: Checks):
    ctx.pending_uploads.append(upload)
    return upload


def resolve_inputs(params, ctx: Checks, checkpoint_fields: tuple[str, ...]) -> AnalysisInputs | None:
    """The job's checkpoints, run and data; None when something is wrong (then ctx holds why)."""
    found = AnalysisInputs()
    if params.dataset not in dict(evaluation_data.dataset_choices(ctx.user)):
        ctx.error("dataset", f"{params.dataset!r} is not one of the data sets you can choose")
        return None
    slugs = {name: (getattr(params, name) or "").strip() for name in checkpoint_fields}
    if params.run.strip():
        _resolve_run(params, ctx, found, slugs)
        if ctx.errors:
            return None
    for name, slug in slugs.items():
        if slug:
            found.checkpoints[name] = visible_checkpoint(slug, name, ctx)
    if ctx.errors:
        return None
    if not _resolve_upload(params, ctx, found) or ctx.errors:
        return None
    if "checkpoint" not in found.checkpoints:
        ctx.error("checkpoint", "choose a catalog checkpoint or upload one")
        return None
    _check_same_architecture(ctx, found)  # before the data: a foreign model would otherwise be blamed on the data set
    if ctx.errors:
        return None
    pending_data = None
    found.dataset = params.dataset
    if params.dataset_file is not None:
        if not _user_ok(ctx.user):
            ctx.error("dataset_file", "log in to upload")
            return None
        try:
            pending_data = _pending(PendingDataset(params.dataset_file), ctx)
        except UploadRejected as exc:
            ctx.error("dataset_file", f"upload rejected: {exc}")
            return None
        found.dataset = evaluation_data.UPLOAD_PREFIX + pending_data.slug
    found.dataset = evaluation_data.resolve(found.dataset, found.checkpoint)
    _check_data_fits(params, ctx, found, pending_data)
    return None if ctx.errors else found


def _check_same_architecture(ctx: Checks, found: AnalysisInputs) -> None:
    """Every other checkpoint of the job (end, corners, other endpoint) shares the checkpoint's architecture."""
    origin = found.checkpoint
    for name, other in found.checkpoints.items():
        if name != "checkpoint" and (other.spec != origin.spec or other.num_parameters != origin.num_parameters):
            ctx.error(name, f"{other.name!r} ({architecture_label(other.spec)}) has a different architecture from the checkpoint "
                            f"{origin.name!r} ({architecture_label(origin.spec)}); it must have the same one")


def _resolve_run(params, ctx: Checks, found: AnalysisInputs, slugs: dict) -> None:
    from webapp.runs.selectors import run_get_visible, run_latest_checkpoint

    slug = params.run.strip()
    found.run = run_get_visible(slug=slug, user=ctx.user)
    if found.run is None:
        ctx.error("run", f"no run {slug!r} that you can see")
        return
    latest = run_latest_checkpoint(run=found.run)
    if latest is None:
        ctx.error("run", "this run has no Terrain checkpoint yet (log one with run.log_checkpoint)")
    elif not slugs.get("checkpoint") and params.checkpoint_file is None:
        slugs["checkpoint"] = latest.slug


def _resolve_upload(params, ctx: Checks, found: AnalysisInputs) -> bool:
    """An uploaded checkpoint (a file, or a model folder's files) as a pending upload; False when refused."""
    upload = params.checkpoint_file
    if upload is None and params.model_files:
        try:
            upload = folder_files_as_zip(params.model_files)
        except UploadRejected as exc:
            ctx.error("model_files", f"upload rejected: {exc}")
            return False
    if upload is None:
        return True
    if not _user_ok(ctx.user):
        ctx.error("checkpoint_file", "log in to upload")
        return False
    base_slug = params.base_checkpoint.strip()
    base = visible_checkpoint(base_slug, "base_checkpoint", ctx) if base_slug else None
    if ctx.errors:
        return False
    try:
        found.checkpoints["checkpoint"] = _pending(
            PendingCheckpoint(upload, params.spec_json, base=base, head=params.head, num_labels=params.num_labels), ctx)
    except UploadRejected as exc:
        ctx.error(getattr(exc, "field", None) or "checkpoint_file", f"upload rejected: {exc}")
        return False
    return True


def _check_data_fits(params, ctx: Checks, found: AnalysisInputs, pending=None) -> None:
    from analysis import data, zoo

    if any(c.source != "builtin" for c in found.checkpoints.values()):
        _check_model_data(params, ctx, found, pending)
        return
    try:
        if pending is not None and found.dataset == evaluation_data.UPLOAD_PREFIX + pending.slug:
            description = pending.description
        else:
            description = evaluation_data.describe(found.dataset, getattr(ctx.user, "pk", None))
    except data.DataError as exc:
        ctx.error("dataset", str(exc))
        return
    found.description = description
    for checkpoint in found.checkpoints.values():
        try:
            zoo.check_compatible(checkpoint.spec, description)
        except zoo.SpecError as exc:
            ctx.error("dataset", f"does not fit checkpoint {checkpoint.name!r}: {exc}")


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


def _check_model_data(params, ctx: Checks, found: AnalysisInputs, pending=None) -> None:
    """A user's own model: load it and the data, and check ids, positions and labels before queueing."""
    import tempfile
    from pathlib import Path

    from django.conf import settings

    from analysis import data
    from analysis.sources import SourceError
    from analysis.sources import data as source_data

    from webapp.catalog.model_files import load_checkpoint

    owner_id = getattr(ctx.user, "pk", None)
    try:
        if pending is not None and found.dataset == evaluation_data.UPLOAD_PREFIX + pending.slug:  # not stored yet
            X, y = evaluation_data.subsample(*evaluation_data.load_upload_file(pending.path, info=pending.info, split=params.split),
                                             params.eval_size)
        else:
            X, y = evaluation_data.evaluation_data(dataset=found.dataset, split=params.split, size=params.eval_size, owner_id=owner_id)
    except (data.DataError, SourceError) as exc:
        ctx.error("dataset", str(exc))
        return
    seq_len = int(X.shape[1]) if not X.is_floating_point() and X.dim() == 2 else 1
    if seq_len > settings.TERRAIN_MAX_SEQUENCE_LENGTH:
        ctx.error("dataset", f"sequences of {seq_len} tokens exceed this server's limit of {settings.TERRAIN_MAX_SEQUENCE_LENGTH} "
                             "(TERRAIN_MAX_SEQUENCE_LENGTH)")
        return
    macs = None
    for name, checkpoint in found.checkpoints.items():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                model = load_checkpoint(checkpoint, Path(tmp))
                source_data.check_against(model, X, y)
            except SourceError as exc:
                ctx.error("dataset" if exc.field == "data" else name, f"does not fit {checkpoint.name!r}: {exc}")
                continue
            if name == "checkpoint":
                macs = _macs_per_sample(model, X[:1])
    found.description = {"num_samples": len(X), "num_train": len(X), "num_test": len(X), "seq_len": seq_len, "macs_per_sample": macs}
