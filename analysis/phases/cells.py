"""Per-cell aggregation: seeds -> mean/std of every metric, seed spread and phase labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..json_safe import finite_or_none

from .comparison import PairMetrics
from .rules import GrokkingRule, TaxonomyRule

__all__ = ["MetricSummary", "CellResult", "aggregate_cell", "RUN_METRICS", "PAIR_METRIC_NAMES"]

#: per-model metrics summarised across a cell's seeds
RUN_METRICS = (
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "generalization_gap",
    "weight_norm",
    "steps_to_train_90",
    "steps_to_test_90",
    "hessian_top_eigenvalue",
    "hessian_trace",
    "progressive_sharpening",
    "eos_step",
    "frac_above_2_over_eta",
)
#: RUN_METRICS read from a run's sharpness summary (analysis.sharpness.summarize)
SHARPNESS_METRICS = ("progressive_sharpening", "eos_step", "frac_above_2_over_eta")
#: between-seed metrics summarised across a cell's pairs of seeds
PAIR_METRIC_NAMES = ("mc", "cka", "l2_distance", "l2_distance_aligned")


@dataclass
class MetricSummary:
    """Mean/std (population, ddof=0)/min/max over the finite values; ``missing`` counts the others.

    For ``steps_to_*`` a missing value means "never reached within the budget".
    """

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    n: int
    missing: int
    values: list

    @classmethod
    def of(cls, values: Sequence) -> "MetricSummary":
        vals = [finite_or_none(v) for v in values]
        ok = np.array([v for v in vals if v is not None], dtype=np.float64)
        if ok.size == 0:
            return cls(None, None, None, None, 0, len(vals), vals)
        return cls(
            mean=float(ok.mean()),
            std=float(ok.std()),
            min=float(ok.min()),
            max=float(ok.max()),
            n=int(ok.size),
            missing=len(vals) - int(ok.size),
            values=vals,
        )

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "n": self.n,
            "missing": self.missing,
            "values": list(self.values),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "MetricSummary":
        return cls(d["mean"], d["std"], d["min"], d["max"], int(d["n"]), int(d["missing"]), list(d["values"]))


@dataclass
class CellResult:
    """Everything about one cell, as plain data (:meth:`to_dict` is JSON-serialisable).

    ``metrics``: per-model metric -> summary over seeds (order of ``seeds``);
    ``pair_metrics``: mc / cka / l2_distance -> summary over seed pairs;
    ``pairs``: each pair's values; ``spread``: how much the seeds disagree
    (std and max - min of final test accuracy and train loss, and the fraction
    of seeds agreeing with the cell's grokking label); ``phase``: rule name
    -> cell label; ``grokking``/``taxonomy``: the rules' full outputs.
    """

    i: int
    j: int
    x: float | int
    y: float | int
    seeds: list[int]
    metrics: dict[str, MetricSummary]
    pair_metrics: dict[str, MetricSummary]
    pairs: list[dict]
    grokking: dict
    taxonomy: dict
    spread: dict
    phase: dict[str, str | None]
    seconds: float = 0.0
    run_keys: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.i}-{self.j}"

    def to_dict(self) -> dict:
        return {
            "i": self.i,
            "j": self.j,
            "key": self.key,
            "x": self.x,
            "y": self.y,
            "seeds": list(self.seeds),
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "pair_metrics": {k: v.to_dict() for k, v in self.pair_metrics.items()},
            "pairs": [dict(p) for p in self.pairs],
            "grokking": dict(self.grokking),
            "taxonomy": dict(self.taxonomy),
            "spread": dict(self.spread),
            "phase": dict(self.phase),
            "seconds": self.seconds,
            "run_keys": list(self.run_keys),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "CellResult":
        return cls(
            i=int(d["i"]),
            j=int(d["j"]),
            x=d["x"],
            y=d["y"],
            seeds=list(d["seeds"]),
            metrics={k: MetricSummary.from_dict(v) for k, v in d["metrics"].items()},
            pair_metrics={k: MetricSummary.from_dict(v) for k, v in d["pair_metrics"].items()},
            pairs=[dict(p) for p in d["pairs"]],
            grokking=dict(d["grokking"]),
            taxonomy=dict(d["taxonomy"]),
            spread=dict(d["spread"]),
            phase=dict(d["phase"]),
            seconds=float(d.get("seconds", 0.0)),
            run_keys=list(d.get("run_keys", [])),
        )


def _hessian_metric(hessian: dict | None, name: str) -> float | None:
    """A cell's Hessian metric read from the run's spectrum (analysis.curvature_results.HessianSpectrum)."""
    from analysis.curvature_results import HessianSpectrum

    if not hessian:
        return None
    spectrum = HessianSpectrum.model_validate(hessian)
    if name == "hessian_top_eigenvalue":
        return spectrum.top_eigenvalue
    if name == "hessian_trace":
        return spectrum.trace.estimate if spectrum.trace else None
    raise KeyError(f"unknown Hessian metric {name!r}")


def _run_value(run, name: str):
    if name in ("steps_to_train_90", "steps_to_test_90"):
        return getattr(run, name)
    if name.startswith("hessian_"):
        return _hessian_metric(run.hessian, name)
    if name in SHARPNESS_METRICS:
        return (getattr(run, "sharpness", None) or {}).get(name)
    return run.final.get(name)


def aggregate_cell(
    run_results: Sequence,
    pairs: Sequence[PairMetrics | Mapping] | None = None,
    *,
    grokking: GrokkingRule | None = None,
    taxonomy: TaxonomyRule | None = None,
) -> CellResult:
    """Summarise the seeds of one cell and label it.  Pure: no model is evaluated here.

    ``run_results``: the cell's :class:`~analysis.phases.runs.RunResult`
    (one per seed, all with the same ``i, j``).  ``pairs``: between-seed
    metrics from :func:`~analysis.phases.comparison.between_seed_metrics`
    (objects or their ``to_dict()``); without them the taxonomy label can
    only be given where the table does not need mc/CKA.

    * Grokking: each seed is labelled by ``grokking.classify_run``; the cell
      gets the majority label (ties: see :class:`GrokkingRule`); per-seed
      labels, counts and ``tied`` are kept.
    * Taxonomy: ``taxonomy.classify(mean train loss over seeds, mean mc over
      pairs, mean CKA over pairs)``.
    """
    if not run_results:
        raise ValueError("aggregate_cell needs at least one run")
    grokking = grokking or GrokkingRule()
    taxonomy = taxonomy or TaxonomyRule()
    runs = sorted(run_results, key=lambda r: r.config.seed)
    cells = {(r.config.i, r.config.j) for r in runs}
    if len(cells) != 1:
        raise ValueError(f"runs come from different cells: {sorted(cells)}")
    seeds = [r.config.seed for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"duplicate seeds in one cell: {seeds}")
    i, j = cells.pop()
    axes = runs[0].config.axes
    x = runs[0].config.hyperparams.get(axes[0]) if axes else None
    y = runs[0].config.hyperparams.get(axes[1]) if axes else None
    metrics = {name: MetricSummary.of([_run_value(r, name) for r in runs]) for name in RUN_METRICS}

    pair_dicts = [p.to_dict() if isinstance(p, PairMetrics) else dict(p) for p in (pairs or [])]
    pair_metrics = {name: MetricSummary.of([p.get(name) for p in pair_dicts]) for name in PAIR_METRIC_NAMES}

    per_seed = []
    for r in runs:
        g = grokking.classify_run(r)
        per_seed.append({"seed": r.config.seed, **g.to_dict()})
    label, counts, tied = grokking.aggregate(s["label"] for s in per_seed)
    grok = {
        "label": label,
        "counts": counts,
        "tied": tied,
        "agreement": (counts.get(label, 0) / len(per_seed)) if label else None,
        "per_seed": per_seed,
        "rule": grokking.params(),
    }

    # a seed whose final loss is NaN/inf diverged: the cell's training loss then counts as high
    loss = metrics["train_loss"].mean if metrics["train_loss"].missing == 0 else float("inf")
    tax = taxonomy.classify(loss, pair_metrics["mc"].mean, pair_metrics["cka"].mean)
    tax_dict = {**tax.to_dict(), "rule": taxonomy.params(), "num_pairs": len(pair_dicts)}

    spread = {
        "test_accuracy_std": metrics["test_accuracy"].std,
        "test_accuracy_range": _range(metrics["test_accuracy"]),
        "train_loss_std": metrics["train_loss"].std,
        "train_loss_range": _range(metrics["train_loss"]),
        "grokking_agreement": grok["agreement"],
    }
    return CellResult(
        i=i,
        j=j,
        x=x,
        y=y,
        seeds=seeds,
        metrics=metrics,
        pair_metrics=pair_metrics,
        pairs=pair_dicts,
        grokking=grok,
        taxonomy=tax_dict,
        spread=spread,
        phase={"grokking": label, "taxonomy": tax.label},
        seconds=float(sum(getattr(r, "seconds", 0.0) for r in runs)),
        run_keys=[r.config.key for r in runs],
    )


def _range(s: MetricSummary) -> float | None:
    return None if s.max is None else s.max - s.min

