"""The command line's subcommands (``python -m analysis``): each reads its inputs and returns its JSON result.

Inputs are read here (datasets, any model source, specs given as JSON or @file);
the parser, the output and the exit status are :mod:`analysis.__main__`'s.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["CLIError", "cmd_train", "cmd_landscape", "cmd_hessian", "cmd_interpolate", "cmd_align", "cmd_merge"]


class CLIError(Exception):
    pass


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _dataset_options(pairs: list[str] | None) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CLIError(f"--dataset-option must be key=value, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = json_value(v)
    return out


def _spec_arg(text: str | None) -> dict | None:
    if text is None:
        return None
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"--spec is not valid JSON: {exc}") from None
    return spec


def _load_data(args, model=None) -> tuple:
    from . import data

    if getattr(args, "data", None):
        X, y = _load_model_data(args, model)
    elif not args.dataset:
        raise CLIError("give --dataset NAME or --data PATH")
    else:
        X, y = data.load(args.dataset, args.split, **_dataset_options(args.dataset_option))
    if getattr(args, "max_samples", None):
        X, y = X[: args.max_samples], y[: args.max_samples]
    if not getattr(args, "data", None) and model is not None:
        _check_dataset_fits(args.dataset, model, X, y)
    return X, y


def _check_dataset_fits(name: str, model, X, y) -> None:
    """A built-in dataset given to a user's model (e.g. digits' float features to a GPT-2) is refused before anything runs."""
    from .sources import SourceError, data as source_data

    if model.provenance.get("source", "builtin") == "builtin":
        return  # Terrain's own checkpoints: not a user model's data contract
    try:
        source_data.check_against(model, X, y, field="dataset")
    except SourceError as exc:
        raise CLIError(f"--dataset {name} does not fit this model: {exc}; give the model's own data with --data PATH") from None


def _load_model_data(args, model) -> tuple:
    from .sources import SourceError, data as source_data

    path = Path(args.data)
    head = model.provenance.get("head", "classification")
    if path.suffix == ".txt":
        folder = Path(model.provenance.get("base") or model.provenance.get("path", ""))
        if not (folder / "tokenizer.json").is_file():
            raise CLIError(f"{path.name}: plain text needs the model folder's tokenizer.json (not found in {folder})")
        X, y = source_data.tokenize_text(path, folder / "tokenizer.json", seq_len=args.seq_len, head=head)
    elif model.input_kind == "tokens":
        X, y = source_data.load_tokens(path, head=head)
    else:
        X, y = source_data.load_images(path)
    try:
        source_data.check_against(model, X, y)
    except SourceError as exc:
        hint = f" (the text was cut into --seq-len {args.seq_len} tokens)" if path.suffix == ".txt" else ""
        raise CLIError(f"--data {path.name}: {exc}{hint}") from None
    return X, y


def _load_checkpoint(path: str, spec: dict | None, args):
    """Any model source as a LoadedModel (see analysis.sources); each gets only the options it takes.

    A ``.zip`` is extracted into the run's scratch folder (``args.scratch``, removed when the command ends),
    never beside the user's file.
    """
    from .sources import detect, load_model

    folder = _unzipped(path, args)
    kind = detect(folder)
    options = {}
    if kind in ("huggingface", "lora"):
        options = {k: v for k, v in (("head", args.head), ("num_labels", args.num_labels)) if v is not None}
    if kind == "lora" and args.base:
        options["base"] = _unzipped(args.base, args)
    return load_model(folder, spec=spec, **options)


def _unzipped(path: str, args) -> str | Path:
    from .sources import archive, detect

    if detect(path) != "zip":
        return path
    return archive.extract_model_zip(path, args.scratch)  # a new folder inside it per zip


def _same_architecture(first: str, a, second: str, b) -> None:
    """Refuse two models whose tensors differ, naming both (a line between them has no meaning)."""
    from .state_checks import architecture_difference

    why = architecture_difference(a.module.state_dict(), b.module.state_dict())
    if why:
        raise CLIError(f"{second} has a different architecture from {first} ({why}): give two models of one architecture")


def _bar(total, desc):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)


# --------------------------------------------------------------------------- commands


def cmd_train(args) -> dict:
    from . import checkpoints, data, train, zoo

    spec = _spec_arg(args.spec)
    if spec is None:
        raise CLIError("train needs --spec")
    opts = _dataset_options(args.dataset_option)
    zoo.check_compatible(spec, data.describe(args.dataset, **opts))
    train_data = data.load(args.dataset, "train", **opts)
    test_data = data.load(args.dataset, "test", **opts)
    bar = _bar(None, "train")

    def progress(event):
        bar.total = event["total_steps"]
        bar.n = event["step"]
        bar.set_postfix(loss=f"{event['train_loss']:.4g}")
        bar.refresh()

    try:
        result = train.train(
            spec,
            train_data,
            test_data=test_data if len(test_data[0]) else None,
            optimizer=args.optimizer,
            lr=args.lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            batch_size=args.batch_size,
            epochs=args.epochs,
            steps=args.steps,
            seed=args.seed,
            eval_every=args.eval_every,
            snapshot_every=_snapshot_every(args, len(train_data[0])),
            label_noise=args.label_noise,
            on_progress=progress,
        )
    finally:
        bar.close()
    meta = {
        "dataset": args.dataset,
        "dataset_options": opts,
        "seed": args.seed,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "final": result.final_metrics,
    }
    if args.checkpoint:
        checkpoints.save(args.checkpoint, result.model, result.spec, meta)
    if args.trajectory:
        checkpoints.save_trajectory(args.trajectory, result.states, result.steps, result.spec, meta)
    return {
        "spec": result.spec,
        "dataset": args.dataset,
        "options": opts,
        "final": result.final_metrics,
        "history": result.history,
        "snapshot_steps": result.steps,
        "total_steps": result.total_steps,
        "seconds": result.seconds,
        "checkpoint": args.checkpoint,
        "trajectory": args.trajectory,
    }


TRAJECTORY_SNAPSHOTS = 20  # what --trajectory keeps without --snapshot-every: enough states for a PCA plane


def _snapshot_every(args, n: int) -> int | None:
    """--snapshot-every, or with --trajectory alone about TRAJECTORY_SNAPSHOTS evenly spaced snapshots
    (first and last only would leave the documented `landscape --axes pca --trajectory` two states)."""
    if args.snapshot_every is not None or not args.trajectory:
        return args.snapshot_every
    steps_per_epoch = math.ceil(n / max(1, min(args.batch_size, n))) if n else 0
    total = args.steps if args.steps is not None else (10 if args.epochs is None else args.epochs) * steps_per_epoch
    return max(1, math.ceil(total / TRAJECTORY_SNAPSHOTS))


def cmd_landscape(args) -> dict:
    from . import checkpoints, landscape

    ck = _load_checkpoint(args.checkpoint, _spec_arg(args.spec), args)
    X, y = _load_data(args, ck)
    if args.kind == "line":
        if args.axes == "three_models" or (args.end and args.axes != "random"):
            raise CLIError(f"--axes {args.axes}: a line runs along random, hessian or pca axes (the first axis), or to --end "
                           "along the straight path; three-model axes are for --kind plane")
        end = _load_checkpoint(args.end, _spec_arg(args.spec), args) if args.end else None
        if end is not None:
            _same_architecture(f"--checkpoint {args.checkpoint}", ck, f"--end {args.end}", end)
            end = end.module
        bar = _bar(args.resolution, "line")

        def progress(event):
            bar.n = event["done"]
            bar.refresh()

        try:
            res = landscape.line(
                ck,
                (X, y),
                end=end,
                axes=args.axes,
                trajectory=checkpoints.load_trajectory(args.trajectory) if args.trajectory else None,
                steps=args.resolution,
                span=args.span,
                seed=args.seed,
                include_bias=args.include_bias,
                on_progress=progress,
            )
        finally:
            bar.close()
        return res.to_dict()
    trajectory = checkpoints.load_trajectory(args.trajectory) if args.trajectory else None
    corners, markers = None, None
    if args.axes == "three_models":
        if not args.models or len(args.models) != 2:
            raise CLIError("--axes three_models needs --models B C (the checkpoint is the origin A)")
        corners = tuple(_load_checkpoint(path, _spec_arg(args.spec), args).state() for path in args.models)
        markers = {Path(path).stem: _load_checkpoint(path, _spec_arg(args.spec), args).state() for path in args.markers or []}
    bar = _bar(args.resolution**2, f"plane ({args.axes})")

    def progress(event):
        if event["type"] == "points":
            bar.n = event["done"]
            bar.set_postfix(level=event["level"])
            bar.refresh()

    try:
        res = landscape.plane(
            ck,
            (X, y),
            axes=args.axes,
            resolution=args.resolution,
            span=args.span,
            seed=args.seed,
            include_bias=args.include_bias,
            batchnorm=args.batchnorm,
            trajectory=trajectory,
            models=corners,
            markers=markers,
            on_progress=progress,
        )
    finally:
        bar.close()
    return {"kind": "plane", **res.to_dict()}


def cmd_hessian(args) -> dict:
    from . import curvature

    ck = _load_checkpoint(args.checkpoint, _spec_arg(args.spec), args)
    X, y = _load_data(args, ck)
    stages = 1 + int(args.trace) + int(args.density)
    bar = _bar(stages, "hessian")

    def progress(event):
        if event.get("done"):
            bar.update(1)
        bar.set_postfix(stage=event["stage"])

    try:
        res = curvature.analyze(
            ck,
            (X, y),
            top_k=args.top_k,
            trace=args.trace,
            trace_matvecs=args.trace_matvecs,
            density=args.density,
            density_probes=args.probes,
            density_iters=args.iters,
            tol=args.tol,
            seed=args.seed,
            batch_size=args.batch_size,
            on_progress=progress,
        )
    finally:
        bar.close()
    return res


def cmd_interpolate(args) -> dict:
    from . import connectivity

    spec = _spec_arg(args.spec)
    a = _load_checkpoint(args.a, spec, args)
    b = _load_checkpoint(args.b, spec, args)
    _same_architecture(f"--a {args.a}", a, f"--b {args.b}", b)
    b = b.module
    X, y = _load_data(args, a)
    bar = _bar(args.steps, "interpolate")

    def progress(event):
        bar.n = event["done"]
        bar.refresh()

    try:
        res = connectivity.interpolate(a, b, (X, y), args.steps, on_progress=progress)
    finally:
        bar.close()
    return res.to_dict()


def cmd_align(args) -> dict:
    from . import checkpoints, connectivity

    spec = _spec_arg(args.spec)
    cka = _load_checkpoint(args.a, spec, args)
    ckb = _load_checkpoint(args.b, spec, args)
    _same_architecture(f"--a {args.a}", cka, f"--b {args.b}", ckb)
    X, y = _load_data(args, cka)
    bar = _bar(3, "align")

    def progress(event):
        if event.get("done"):
            bar.update(1)
        bar.set_postfix(stage=event["stage"])

    try:
        res = connectivity.align_and_compare(cka, ckb, (X, y), steps=args.steps, seed=args.seed, spec=ckb.provenance.get("spec"), on_progress=progress)
    finally:
        bar.close()
    res["aligned_checkpoint"] = None
    if args.save_aligned:
        if ckb.provenance["source"] != "builtin":
            raise CLIError("--save-aligned writes Terrain checkpoints; it needs built-in models")
        spec_b = ckb.provenance["spec"]
        al = connectivity.weight_matching(cka.module, ckb.module, spec=spec_b, seed=args.seed)
        checkpoints.save(args.save_aligned, al.model, spec_b, {**ckb.provenance.get("meta", {}), "aligned_to": str(args.a)})
        res["aligned_checkpoint"] = args.save_aligned
    return res


def cmd_merge(args) -> dict:
    from . import checkpoints, merging, metrics

    spec = _spec_arg(args.spec)
    method = merging.get_method(args.method)
    if method.needs_base and not args.base:
        raise CLIError(f"--method {args.method} needs --base")
    # Terrain checkpoints (the merged file is one too); merging other sources is analysis.merging's Python API.
    loaded = [checkpoints.load(path, spec=spec) for path in args.models]
    base = checkpoints.load(args.base, spec=spec) if args.base else None
    for path, checkpoint in zip([*args.models, args.base], [*loaded, base]):
        if checkpoint is not None and checkpoint.spec != loaded[0].spec:
            raise CLIError(f"{path} has a different architecture from {args.models[0]}")
    params = _dataset_options(args.param)
    state = merging.merge(args.method, base=base.state if base else None, models=[c.state for c in loaded],
                          spec=loaded[0].spec, **params)
    meta = {"merge": {"method": args.method, "params": params, "parents": list(args.models), "base": args.base}}
    checkpoints.save(args.out, state, loaded[0].spec, meta)
    evaluation = None
    if args.dataset:
        model = checkpoints.load(args.out).model
        loss, accuracy = metrics.evaluate(model, *_load_data(args))
        evaluation = {"loss": loss, "accuracy": accuracy}
    return {"method": args.method, "params": params, "checkpoint": args.out, "parents": list(args.models),
            "base": args.base, "evaluation": evaluation}
