"""Phase rules: turn per-model and between-seed metrics into a phase label.

Two rules, each a small frozen dataclass whose thresholds are visible,
editable parameters (``dataclasses.replace(rule, gap_fraction=0.05)``, or
``rules`` in a sweep definition) and whose :meth:`describe` returns the legend
text a UI can show next to the heatmap.

:class:`GrokkingRule`
    Liu, Kitouni, Nolte, Michaud, Tegmark & Williams (2022), "Towards
    Understanding Grokking: An Effective Theory of Representation Learning"
    (NeurIPS), and Liu, Michaud & Tegmark (2023), "Omnigrok: Grokking Beyond
    Algorithmic Data" (ICLR): comprehension / grokking / memorization /
    confusion from the steps at which train and test accuracy first reach 90%.
:class:`TaxonomyRule`
    Yang, Hodgkinson, Theisen, Zou, Gonzalez, Ramchandran & Mahoney (2021),
    "Taxonomizing local versus global structure in neural network loss
    landscapes" (NeurIPS), as used for model zoos by Schürholt et al. (2025),
    "A Model Zoo on Phase Transitions in Neural Networks": phases I, II, III,
    IV-A, IV-B from training loss, mode connectivity ``mc`` and CKA similarity.
    The mapping is one explicit table, :data:`TAXONOMY_TABLE`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

from ..json_safe import finite_or_none

__all__ = [
    "GROKKING_PHASES",
    "GROKKING_TABLE",
    "GrokkingRule",
    "GrokkingLabel",
    "TAXONOMY_PHASES",
    "TAXONOMY_TABLE",
    "TaxonomyRule",
    "TaxonomyLabel",
    "first_step_reaching",
    "majority_label",
]


# --------------------------------------------------------------------------- helpers


def first_step_reaching(steps: Sequence[int], values: Sequence[float | None], threshold: float) -> int | None:
    """First evaluated step whose value is ``>= threshold``; ``None`` if none is."""
    for s, v in zip(steps, values):
        if finite_or_none(v) is not None and v >= threshold:
            return int(s)
    return None


def majority_label(labels: Iterable[str | None], order: Sequence[str]) -> tuple[str | None, dict[str, int], bool]:
    """Most frequent label (``None`` labels are ignored).

    Ties are broken by ``order``: the tied label that comes first in ``order``
    wins (labels not in ``order`` come after, alphabetically).  Returns
    ``(label, counts, tied)`` where ``tied`` says a tie had to be broken.
    """
    counts = Counter(l for l in labels if l is not None)
    if not counts:
        return None, {}, False
    top = max(counts.values())
    best = [l for l, c in counts.items() if c == top]
    rank = {l: k for k, l in enumerate(order)}
    best.sort(key=lambda l: (rank.get(l, len(rank)), l))
    return best[0], dict(counts), len(best) > 1


# --------------------------------------------------------------------------- grokking (Liu et al. 2022)

GROKKING_PHASES = ("comprehension", "grokking", "memorization", "confusion")

#: ``(train reached, test reached, gap >= threshold) -> phase``.  ``gap`` is
#: ``t_test - t_train``; it only matters when both are reached.  A run whose
#: test accuracy reaches the threshold while its train accuracy never does
#: (possible with label noise) is called "confusion": Liu et al. define the
#: phases by whether the model fits the training set first.
GROKKING_TABLE: dict[tuple[bool, bool, bool], str] = {
    (True, True, False): "comprehension",
    (True, True, True): "grokking",
    (True, False, False): "memorization",
    (True, False, True): "memorization",
    (False, False, False): "confusion",
    (False, False, True): "confusion",
    (False, True, False): "confusion",
    (False, True, True): "confusion",
}

_GROKKING_LEGEND = {
    "comprehension": "train and test accuracy both reach the threshold, test within the gap of train: generalises as it fits",
    "grokking": "both reach the threshold, but test only more than the gap after train: delayed generalisation",
    "memorization": "train accuracy reaches the threshold, test accuracy never does within the budget",
    "confusion": "train accuracy never reaches the threshold within the budget",
}


@dataclass(frozen=True)
class GrokkingLabel:
    label: str
    t_train: int  # first evaluated step with train accuracy >= threshold; the budget if never
    t_test: int
    train_reached: bool
    test_reached: bool
    gap: int | None  # t_test - t_train when both are reached
    threshold_steps: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GrokkingRule:
    """Grokking phases of Liu et al. (2022) from learning curves.

    ``t_train`` / ``t_test`` are the first *evaluated* steps at which train /
    test accuracy reach ``accuracy_threshold`` (0.9 in the paper); a curve
    that never reaches it gets ``t = budget``.  With ``gap = t_test -
    t_train`` and ``threshold = gap_steps`` if given, else ``gap_fraction *
    budget`` (1% of the budget by default):

    =============================  =========================  ==============
    train reached                  test reached               phase
    =============================  =========================  ==============
    yes                            yes, ``gap < threshold``   comprehension
    yes                            yes, ``gap >= threshold``  grokking
    yes                            no                         memorization
    no                             no                         confusion
    no                             yes                        confusion
    =============================  =========================  ==============

    (the same mapping, as data: :data:`GROKKING_TABLE`).  The step resolution
    is the evaluation interval of the run, so choose ``eval_every`` well below
    the gap threshold (sweeps evaluate 200 times per run by default, i.e.
    every 0.5% of the budget).

    Per cell, the seeds' labels are aggregated by majority; a tie goes to the
    tied label that comes first in ``tie_order`` (default: the order of
    :data:`GROKKING_PHASES`, i.e. towards the label that generalises
    sooner); the per-seed labels and the counts are kept.
    """

    accuracy_threshold: float = 0.9
    gap_fraction: float = 0.01
    gap_steps: int | None = None
    tie_order: tuple[str, ...] = GROKKING_PHASES

    name = "grokking"
    phases = GROKKING_PHASES
    reference = (
        "Liu, Kitouni, Nolte, Michaud, Tegmark & Williams (2022), Towards Understanding Grokking: "
        "An Effective Theory of Representation Learning, NeurIPS; Liu, Michaud & Tegmark (2023), "
        "Omnigrok: Grokking Beyond Algorithmic Data, ICLR"
    )

    def __post_init__(self):
        if not (0.0 < self.accuracy_threshold <= 1.0):
            raise ValueError(f"accuracy_threshold must be in (0, 1], got {self.accuracy_threshold!r}")
        if not (0.0 <= self.gap_fraction <= 1.0):
            raise ValueError(f"gap_fraction must be in [0, 1], got {self.gap_fraction!r}")
        if self.gap_steps is not None and self.gap_steps < 0:
            raise ValueError(f"gap_steps must be non-negative, got {self.gap_steps!r}")

    def threshold_steps(self, budget: int) -> float:
        return float(self.gap_steps) if self.gap_steps is not None else self.gap_fraction * float(budget)

    def classify(
        self,
        steps: Sequence[int],
        train_accuracy: Sequence[float | None],
        test_accuracy: Sequence[float | None],
        budget: int | None = None,
    ) -> GrokkingLabel:
        """Phase of one run from its curves; ``budget`` defaults to the last evaluated step."""
        if budget is None:
            budget = int(steps[-1]) if len(steps) else 0
        t_tr = first_step_reaching(steps, train_accuracy, self.accuracy_threshold)
        t_te = first_step_reaching(steps, test_accuracy, self.accuracy_threshold)
        thr = self.threshold_steps(budget)
        gap = (t_te - t_tr) if (t_tr is not None and t_te is not None) else None
        slow = gap is not None and gap >= thr
        label = GROKKING_TABLE[(t_tr is not None, t_te is not None, slow)]
        return GrokkingLabel(
            label=label,
            t_train=int(budget) if t_tr is None else t_tr,
            t_test=int(budget) if t_te is None else t_te,
            train_reached=t_tr is not None,
            test_reached=t_te is not None,
            gap=gap,
            threshold_steps=thr,
        )

    def classify_run(self, run) -> GrokkingLabel:
        """Phase of a :class:`~analysis.phases.runs.RunResult` (or anything with the same curve fields)."""
        return self.classify(run.steps, run.train_accuracy, run.test_accuracy, run.total_steps)

    def aggregate(self, labels: Iterable[str | None]) -> tuple[str | None, dict[str, int], bool]:
        return majority_label(labels, self.tie_order)

    def params(self) -> dict:
        return {
            "accuracy_threshold": self.accuracy_threshold,
            "gap_fraction": self.gap_fraction,
            "gap_steps": self.gap_steps,
            "tie_order": list(self.tie_order),
        }

    def describe(self) -> dict:
        """Legend for a UI: the rule, its reference, its parameters and one line per phase."""
        gap = (
            f"{self.gap_steps} steps"
            if self.gap_steps is not None
            else f"{self.gap_fraction:.3g} of the step budget"
        )
        return {
            "name": self.name,
            "title": "Grokking phases",
            "reference": self.reference,
            "summary": (
                f"t_train / t_test: first evaluated step with train / test accuracy >= {self.accuracy_threshold:g} "
                f"(the budget if never). Gap threshold: {gap}. Cells take the majority label of their seeds; "
                f"ties go to the first of {', '.join(self.tie_order)}."
            ),
            "parameters": self.params(),
            "phases": [{"label": p, "text": _GROKKING_LEGEND[p]} for p in GROKKING_PHASES],
        }


# --------------------------------------------------------------------------- taxonomy (Yang et al. 2021)

TAXONOMY_PHASES = ("I", "II", "III", "IV-A", "IV-B")

#: ``(train loss class, mc class, CKA class) -> phase``; every combination is
#: listed so the mapping can be read and corrected in one place.
#:
#: * loss: ``"high"`` (poorly trained) / ``"low"`` (well trained);
#: * mc: ``"negative"`` (a barrier on the path: globally poorly connected),
#:   ``"zero"`` (``|mc| <= tolerance``) or ``"positive"`` (the path dips
#:   below the endpoints' mean);
#: * CKA: ``"low"`` / ``"high"`` similarity of the two models' outputs.
#:
#: Yang et al.: Phase I = high loss, mc < 0; Phase II = high loss, mc >= 0
#: (well connected, typically mc > 0: the endpoints are poorly trained and the
#: path between them is better); Phase III = low loss, mc < 0; Phase IV = low
#: loss, mc ~ 0, split by CKA into IV-A (low similarity) and IV-B (high).
#: CKA only splits Phase IV.  Decision taken here: a *low*-loss pair with a
#: clearly *positive* mc (the paper's figures have no such region) is counted
#: as well connected, i.e. Phase IV, split by CKA.
TAXONOMY_TABLE: dict[tuple[str, str, str], str] = {
    ("high", "negative", "low"): "I",
    ("high", "negative", "high"): "I",
    ("high", "zero", "low"): "II",
    ("high", "zero", "high"): "II",
    ("high", "positive", "low"): "II",
    ("high", "positive", "high"): "II",
    ("low", "negative", "low"): "III",
    ("low", "negative", "high"): "III",
    ("low", "zero", "low"): "IV-A",
    ("low", "zero", "high"): "IV-B",
    ("low", "positive", "low"): "IV-A",
    ("low", "positive", "high"): "IV-B",
}

_TAXONOMY_LEGEND = {
    "I": "high training loss, mc < 0: poorly trained, globally poorly connected (barriers between seeds)",
    "II": "high training loss, mc >= 0: poorly trained, globally well connected",
    "III": "low training loss, mc < 0: well trained, globally poorly connected (barriers between seeds)",
    "IV-A": "low training loss, mc ~ 0, low CKA: well trained and connected, but seeds compute dissimilar functions",
    "IV-B": "low training loss, mc ~ 0, high CKA: well trained, connected and similar (the best-generalising phase in Yang et al.)",
}

_CLASS_VALUES = {"loss": ("high", "low"), "mc": ("negative", "zero", "positive"), "cka": ("low", "high")}


@dataclass(frozen=True)
class TaxonomyLabel:
    label: str | None
    loss_class: str | None
    mc_class: str | None
    cka_class: str | None
    train_loss: float | None
    mc: float | None
    cka: float | None
    reason: str | None = None  # why label is None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TaxonomyRule:
    """Loss-landscape taxonomy of Yang et al. (2021) from (train loss, mc, CKA).

    Inputs per cell: the mean training loss of its models, the mean mode
    connectivity ``mc`` and the mean CKA over its pairs of seeds (see
    :func:`analysis.phases.comparison.mode_connectivity` and
    :func:`~analysis.phases.comparison.linear_cka`).  Classes:

    * loss is ``"low"`` if ``train_loss < loss_threshold``, else ``"high"``
      (a NaN/inf loss -- a diverged run -- is ``"high"``);
    * mc is ``"negative"`` if ``mc < -mc_tolerance``, ``"positive"`` if
      ``mc > mc_tolerance``, else ``"zero"`` (the tolerance is inclusive);
    * CKA is ``"high"`` if ``cka >= cka_threshold``, else ``"low"``.

    The phase is ``table[(loss, mc, cka)]`` (default :data:`TAXONOMY_TABLE`):

    ==========  ==================  =========  =======
    train loss  mc                  CKA        phase
    ==========  ==================  =========  =======
    high        < 0                 any        I
    high        >= 0 (~0 or > 0)    any        II
    low         < 0                 any        III
    low         ~ 0 (or > 0)        low        IV-A
    low         ~ 0 (or > 0)        high       IV-B
    ==========  ==================  =========  =======

    A missing input (``None``: e.g. one seed, so no pair) only prevents a
    label when the table needs it: a high loss with mc < 0 is Phase I whatever
    CKA is.  Yang et al. also report the Hessian (local sharpness); it
    describes the phases but does not define them, so it is not an input.

    Deviation from the paper: Yang et al. measure mc on a Bezier curve
    trained to connect the two models (Garipov et al. 2018); here it is
    measured on a straight line (no extra training), on the training
    *error*.  By default sweeps first align the second model to the first by
    weight matching (``mc_alignment="weight_matching"``, zoo MLPs/CNNs), so
    barriers that only come from the permutation symmetry do not count -- on
    the raw straight path almost every pair of independently initialised
    networks shows a barrier (Entezari et al. 2022) and nearly every cell
    would be Phase I or III.  A straight (even aligned) line can only find
    higher barriers than an optimised curve, so Phases I/III are over- rather
    than under-reported.
    """

    loss_threshold: float = 0.1
    mc_tolerance: float = 0.02
    cka_threshold: float = 0.9
    table: Mapping[tuple[str, str, str], str] = field(default_factory=lambda: dict(TAXONOMY_TABLE))

    name = "taxonomy"
    phases = TAXONOMY_PHASES
    reference = (
        "Yang, Hodgkinson, Theisen, Zou, Gonzalez, Ramchandran & Mahoney (2021), Taxonomizing local versus "
        "global structure in neural network loss landscapes, NeurIPS; Schürholt et al. (2025), "
        "A Model Zoo on Phase Transitions in Neural Networks"
    )

    def __post_init__(self):
        for name in ("loss_threshold", "mc_tolerance", "cka_threshold"):
            v = getattr(self, name)
            if finite_or_none(v) is None or v < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {v!r}")
        missing = [
            (l, m, c)
            for l in _CLASS_VALUES["loss"]
            for m in _CLASS_VALUES["mc"]
            for c in _CLASS_VALUES["cka"]
            if (l, m, c) not in self.table
        ]
        if missing:
            raise ValueError(f"taxonomy table is missing {missing[0]!r}")

    # classes ------------------------------------------------------------------
    def loss_class(self, train_loss: float | None) -> str | None:
        if train_loss is None:
            return None
        if finite_or_none(train_loss) is None:
            return "high"
        return "low" if train_loss < self.loss_threshold else "high"

    def mc_class(self, mc: float | None) -> str | None:
        if finite_or_none(mc) is None:
            return None
        if mc < -self.mc_tolerance:
            return "negative"
        if mc > self.mc_tolerance:
            return "positive"
        return "zero"

    def cka_class(self, cka: float | None) -> str | None:
        if finite_or_none(cka) is None:
            return None
        return "high" if cka >= self.cka_threshold else "low"

    def classify(self, train_loss: float | None, mc: float | None, cka: float | None) -> TaxonomyLabel:
        lc, mcc, cc = self.loss_class(train_loss), self.mc_class(mc), self.cka_class(cka)
        options = {
            self.table[(l, m, c)]
            for l in ([lc] if lc else _CLASS_VALUES["loss"])
            for m in ([mcc] if mcc else _CLASS_VALUES["mc"])
            for c in ([cc] if cc else _CLASS_VALUES["cka"])
        }
        label = options.pop() if len(options) == 1 else None
        reason = None
        if label is None:
            need = [n for n, v in (("train loss", lc), ("mc", mcc), ("CKA", cc)) if v is None]
            reason = f"missing {', '.join(need)} (needs at least two seeds with finite metrics)"
        return TaxonomyLabel(
            label=label,
            loss_class=lc,
            mc_class=mcc,
            cka_class=cc,
            train_loss=finite_or_none(train_loss),
            mc=finite_or_none(mc),
            cka=finite_or_none(cka),
            reason=reason,
        )

    def params(self) -> dict:
        return {
            "loss_threshold": self.loss_threshold,
            "mc_tolerance": self.mc_tolerance,
            "cka_threshold": self.cka_threshold,
        }

    def table_rows(self) -> list[dict]:
        return [{"loss": l, "mc": m, "cka": c, "phase": p} for (l, m, c), p in self.table.items()]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "title": "Loss-landscape taxonomy",
            "reference": self.reference,
            "summary": (
                f"Train loss low if < {self.loss_threshold:g}; mc (linear path, train error) ~ 0 if "
                f"|mc| <= {self.mc_tolerance:g}, a barrier if mc < -{self.mc_tolerance:g}; CKA of the seeds' "
                f"logits high if >= {self.cka_threshold:g}. Cell values are means over seeds / seed pairs."
            ),
            "parameters": self.params(),
            "table": self.table_rows(),
            "phases": [{"label": p, "text": _TAXONOMY_LEGEND[p]} for p in TAXONOMY_PHASES],
        }
