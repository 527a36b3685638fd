"""Command line for Terrain's analysis library.

Usage::

    python -m analysis train       --spec SPEC --dataset NAME [...] --out result.json [--checkpoint m.safetensors]
    python -m analysis landscape   --checkpoint PATH --dataset NAME [--kind plane|line] [...] --out l.json
    python -m analysis landscape   --checkpoint base.safetensors --axes three_models --models a.safetensors b.safetensors
                                   [--markers merged.safetensors] --dataset NAME --out plane.json
    python -m analysis hessian     --checkpoint PATH --dataset NAME [--top-k 5 --trace --density] --out h.json
    python -m analysis interpolate --a a.safetensors --b b.safetensors --dataset NAME [--steps 21] --out i.json
    python -m analysis align       --a a.safetensors --b b.safetensors --dataset NAME [--save-aligned b2.safetensors] --out w.json
    python -m analysis merge       --method ties --base b.safetensors --models m1.safetensors m2.safetensors --out merged.safetensors
                                   [--param density=0.3 ...] [--dataset digits --report r.json]

Every subcommand has ``--help``.  Progress bars go to stderr; the JSON result
goes to ``--out`` (``-`` for stdout).  Common options: ``--dataset NAME``,
``--dataset-option key=value`` (repeatable, value parsed as JSON when
possible, e.g. ``--dataset-option p=97``), ``--split train|test|all``,
``--max-samples N`` (first N samples of the split), ``--spec JSON|@file``
(needed for ``.pt`` state dicts).  Exit status is 2 for bad input (message on
stderr), 0 on success.

A checkpoint (``--checkpoint``, ``--a``, ``--b``, ``--end``) is any model source
(:mod:`analysis.sources`): a Terrain ``.safetensors``, a Hugging Face folder
(``config.json`` + ``model.safetensors``), a LoRA adapter folder (``--base``
names its base folder unless the adapter's config holds an absolute local
path; only LoRA checkpoints get it), an ``.onnx`` file (lines and planes only)
or a ``.zip`` of a folder (extracted into a temporary folder removed when the
command ends).  ``--head`` and ``--num-labels`` choose the head of Hugging Face
and LoRA checkpoints.  Two models compared (``--a``/``--b``, ``--end``) must
have the same tensors.  Instead of
``--dataset``, ``--data PATH`` gives the model's own data: token ids
(``input_ids``, optional ``attention_mask`` and ``labels``) or images (``X``,
``y``) in ``.npz``/``.safetensors``, or a ``.txt`` file tokenised with the
model folder's ``tokenizer.json`` (``--seq-len``); it is checked against the
model (vocabulary, positions, label range) before anything runs.

JSON outputs (every output also has ``"command"`` and ``"version"``):

``train``
    ``{"spec", "dataset", "options", "final": {history row}, "history":
    [{"step", "epoch", "train_loss", "train_accuracy", "test_loss",
    "test_accuracy"}], "snapshot_steps", "total_steps", "seconds",
    "checkpoint": path|null, "trajectory": path|null}``.
``landscape`` (``--kind plane``)
    ``{"kind": "plane", "a": [..], "b": [..], "loss": [[..]], "accuracy":
    [[..]]|null, "computed": [[bool]], "indexing": "loss[i][j] is at (a[i],
    b[j])", "axes", "directions": {"kind", "seed", "norms", "eigenvalues"?,
    "explained_variance_ratio"?, ...}, "trajectory": [[a, b], ..]|null,
    "markers": [{"name", "a", "b", "off_plane", "relative_off_plane", "loss",
    "accuracy"}]|null (three_models: A, B, C and each --markers file),
    "trajectory_steps", "trajectory_loss", "centre_loss",
    "centre_accuracy", "num_points", "seconds", "coarse_seconds"}``.
``landscape`` (``--kind line``)
    ``{"kind": "line", "mode": "interpolation"|"direction", "t": [..],
    "loss": [..], "accuracy": [..]|null, "directions": {..}, "seconds"}``.
``hessian``
    ``{"num_parameters", "loss", "eigenvalues": {"values": [..] (descending),
    "residuals", "converged", "num_matvecs"}, "trace": {"estimate",
    "stderr", "num_matvecs", "method": "hutch++"}|null, "density": {"grid",
    "density", "sigma", "num_matvecs"}|null, "num_matvecs", "seconds"}``
    (``analysis.curvature_results.HessianSpectrum``, as the hessian job's result).
``interpolate``
    ``{"t", "loss", "accuracy", "barrier_height", "accuracy_barrier",
    "seconds"}``.
``align``
    ``{"naive": {interpolate output}, "aligned": {interpolate output},
    "barrier_naive", "barrier_aligned", "iterations", "permutations":
    {"P0": [..], ..}, "max_output_difference", "aligned_checkpoint":
    path|null}``.

``merge`` (``--report``, default stdout; the merged model goes to ``--out``)
    ``{"method", "params", "checkpoint": path, "parents": [paths], "base":
    path|null, "evaluation": {"loss", "accuracy"}|null}``.

Non-finite numbers are written as ``null``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .cli_commands import (
    CLIError,
    cmd_align,
    cmd_hessian,
    cmd_interpolate,
    cmd_landscape,
    cmd_merge,
    cmd_train,
    json_value,
)

__all__ = ["main", "build_parser"]


def _write(out: str, payload: dict, command: str) -> None:
    from . import __version__
    from .json_safe import json_safe

    payload = json_safe({"command": command, "version": __version__, **payload})
    text = json.dumps(payload, indent=None, separators=(",", ":"))
    if out == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


# --------------------------------------------------------------------------- parser


def _add_data_args(p: argparse.ArgumentParser, default_split: str = "all") -> None:
    p.add_argument("--dataset", help="dataset name (digits, moons, teacher-student, modular-addition, file)")
    p.add_argument("--data", help="the model's own data: token ids or images (.npz/.safetensors) or text (.txt)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per line of a .txt --data (default 64)")
    p.add_argument("--head", choices=["causal-lm", "masked-lm", "sequence-classification", "image-classification"],
                   help="Hugging Face head (default: the one in config.json's architectures)")
    p.add_argument("--num-labels", type=int, default=None, help="classes of a classification head")
    p.add_argument("--base", help="LoRA adapters: the base model's Hugging Face folder")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="dataset option (repeatable)")
    p.add_argument("--split", default=default_split, choices=["train", "test", "all"], help=f"data split (default {default_split})")
    p.add_argument("--max-samples", type=int, default=None, help="use only the first N samples of the split")


def _span(text: str):
    v = json_value(text)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return v
    raise argparse.ArgumentTypeError("span must be a number or a JSON list")


def build_parser() -> argparse.ArgumentParser:
    json_doc = __doc__[__doc__.index("JSON outputs") :].replace("``", "")
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Terrain analysis: training, loss landscapes, Hessian spectra, mode connectivity.",
        epilog=json_doc + "\nSee analysis/README.md and `python -m analysis COMMAND --help`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a zoo model", description="Train a zoo model (seeded) and write metrics JSON.")
    p.add_argument("--spec", required=True, help='architecture spec as JSON or @file, e.g. \'{"kind":"mlp","in":64,"hidden":[256],"out":10}\'')
    p.add_argument("--dataset", required=True)
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "adamw"])
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=64)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N steps (default: once per epoch)")
    p.add_argument("--snapshot-every", type=int, default=None, help="keep a snapshot every N steps (default: first and last; about 20 with --trajectory)")
    p.add_argument("--label-noise", type=float, default=0.0)
    p.add_argument("--checkpoint", help="write the trained model to this .safetensors file")
    p.add_argument("--trajectory", help="write the snapshots to this .safetensors trajectory file")
    p.add_argument("--out", required=True, help="result JSON path ('-' for stdout)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("landscape", help="1-D line or 2-D plane of the loss", description="Loss landscape around a checkpoint.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--spec", help="spec JSON or @file (needed for .pt state dicts)")
    _add_data_args(p)
    p.add_argument("--kind", default="plane", choices=["plane", "line"])
    p.add_argument("--axes", default="random", choices=["random", "hessian", "pca", "three_models"], help="plane axes (default random)")
    p.add_argument("--models", nargs=2, metavar=("B", "C"), help="three_models: the plane's other corners, at (1, 0) and (0, 1)")
    p.add_argument("--markers", nargs="+", help="three_models: more checkpoints (e.g. merges) to place on the plane")
    p.add_argument("--trajectory", help="trajectory .safetensors (needed for --axes pca; projected on any plane)")
    p.add_argument("--end", help="line: second checkpoint (interpolate from --checkpoint to --end)")
    p.add_argument("--resolution", type=int, default=51, help="points per axis (default 51)")
    p.add_argument("--span", type=_span, default=None, help="half-width, or [[a0,a1],[b0,b1]] (plane) / [t0,t1] (line)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--include-bias", action="store_true", help="also perturb biases and normalisation parameters")
    p.add_argument("--batchnorm", default="keep", choices=["keep", "recompute"])
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_landscape)

    p = sub.add_parser("hessian", help="Hessian spectrum: top-k eigenvalues, trace, density", description="Hessian of the mean loss of a checkpoint.")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--spec", help="spec JSON or @file (needed for .pt state dicts)")
    _add_data_args(p)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--tol", type=float, default=1e-4, help="relative eigenvalue tolerance (default 1e-4)")
    p.add_argument("--trace", action="store_true", help="estimate the trace with Hutch++")
    p.add_argument("--trace-matvecs", type=int, default=60)
    p.add_argument("--density", action="store_true", help="spectral density by stochastic Lanczos quadrature")
    p.add_argument("--probes", type=int, default=4)
    p.add_argument("--iters", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=None, help="evaluate the Hessian in chunks of this many samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_hessian)

    p = sub.add_parser("interpolate", help="loss on the segment between two checkpoints", description="Linear interpolation and barrier height.")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--spec", help="spec JSON or @file (needed for .pt state dicts)")
    _add_data_args(p)
    p.add_argument("--steps", type=int, default=21)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("align", help="weight matching (Git Re-Basin) and barriers before/after", description="Permute --b's hidden units to match --a.")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--spec", help="spec JSON or @file (needed for .pt state dicts)")
    _add_data_args(p)
    p.add_argument("--steps", type=int, default=21)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-aligned", help="write the permuted --b to this .safetensors file")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_align)

    from .merging import METHODS

    p = sub.add_parser("merge", help="merge checkpoints (average, task arithmetic, TIES, DARE, aligned, orthogonal)",
                       description="Merge checkpoints of one architecture into a new safetensors checkpoint.")
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--base", help="the common base model (needed by task_arithmetic, ties, dare, orthogonal)")
    p.add_argument("--models", required=True, nargs="+", help="the models to merge")
    p.add_argument("--spec", help="spec JSON or @file (needed for .pt state dicts)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="method parameter, e.g. lam=0.6, density=0.3, p=0.5, alpha=0.5, seed=1 (repeatable)")
    p.add_argument("--dataset", help="evaluate the merged model on this dataset")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--split", default="test", choices=["train", "test", "all"])
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--out", required=True, help="the merged .safetensors checkpoint (spec and merge recipe in its metadata)")
    p.add_argument("--report", default="-", help="result JSON path (default '-': stdout)")
    p.set_defaults(func=cmd_merge)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .checkpoints import CheckpointError, SpecNeeded
    from .data import DataError
    from .zoo import SpecError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="terrain-cli-") as scratch:  # zips extracted here, gone at the end
            args.scratch = scratch
            payload = args.func(args)
    except SpecNeeded as exc:
        print(f"error: {exc.reason}: give its architecture spec with --spec", file=sys.stderr)
        return 2
    except (CLIError, CheckpointError, DataError, SpecError, ValueError, FileNotFoundError, NotImplementedError) as exc:
        # SourceError (refused models and data) is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    destination = args.report if args.command == "merge" else args.out
    _write(destination, payload, args.command)
    if destination != "-":
        print(f"wrote {destination}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
