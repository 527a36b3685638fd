"""Phase rules on hand-built learning curves and metric values, including threshold edges."""

import dataclasses
import json
import math

import pytest

from analysis.phases import (
    GROKKING_PHASES,
    TAXONOMY_PHASES,
    TAXONOMY_TABLE,
    GrokkingRule,
    TaxonomyRule,
    aggregate_cell,
    first_step_reaching,
    majority_label,
)

BUDGET = 1000
STEPS = list(range(0, BUDGET + 1, 5))  # evaluated every 5 steps; default gap threshold = 1% of 1000 = 10 steps


def ramp(t_reach, low=0.0, high=1.0):
    """Accuracy curve that is `low` before step t_reach and `high` from it on (never if t_reach is None)."""
    return [high if (t_reach is not None and s >= t_reach) else low for s in STEPS]


# --------------------------------------------------------------------------- grokking


@pytest.mark.parametrize(
    "t_train, t_test, label",
    [
        (100, 100, "comprehension"),  # generalises as it fits
        (100, 105, "comprehension"),  # gap 5 < 10
        (100, 400, "grokking"),  # delayed generalisation
        (100, None, "memorization"),
        (None, None, "confusion"),
        (None, 300, "confusion"),  # test reached without fitting train: documented as confusion
        (300, 100, "comprehension"),  # test first: negative gap
    ],
)
def test_grokking_four_phases(t_train, t_test, label):
    g = GrokkingRule().classify(STEPS, ramp(t_train), ramp(t_test), BUDGET)
    assert g.label == label
    assert g.t_train == (t_train if t_train is not None else BUDGET)
    assert g.t_test == (t_test if t_test is not None else BUDGET)
    assert g.train_reached == (t_train is not None) and g.test_reached == (t_test is not None)


def test_grokking_gap_threshold_edges():
    rule = GrokkingRule()
    assert rule.threshold_steps(BUDGET) == pytest.approx(10.0)
    # gap == threshold is grokking (the threshold is a strict upper bound for comprehension)
    assert rule.classify(STEPS, ramp(100), ramp(110), BUDGET).label == "grokking"
    assert rule.classify(STEPS, ramp(100), ramp(105), BUDGET).label == "comprehension"
    # the threshold scales with the budget: 1% of 10000 = 100 steps
    steps = list(range(0, 10001, 50))
    acc = lambda t: [1.0 if s >= t else 0.0 for s in steps]  # noqa: E731
    assert rule.classify(steps, acc(100), acc(150), 10000).label == "comprehension"
    assert rule.classify(steps, acc(100), acc(200), 10000).label == "grokking"
    # editable parameters: absolute gap, other fraction
    assert GrokkingRule(gap_steps=500).classify(STEPS, ramp(100), ramp(400), BUDGET).label == "comprehension"
    assert GrokkingRule(gap_fraction=0.5).classify(STEPS, ramp(100), ramp(400), BUDGET).label == "comprehension"


def test_grokking_accuracy_threshold_is_inclusive():
    rule = GrokkingRule()
    at = [0.9 if s >= 50 else 0.1 for s in STEPS]
    below = [0.8999 for _ in STEPS]
    assert rule.classify(STEPS, at, at, BUDGET).t_train == 50
    assert rule.classify(STEPS, at, below, BUDGET).label == "memorization"
    assert GrokkingRule(accuracy_threshold=0.95).classify(STEPS, at, at, BUDGET).label == "confusion"
    # a dip after reaching does not matter: "first evaluated step"
    wobble = [0.0, 0.95, 0.5] + [0.5] * (len(STEPS) - 3)
    assert first_step_reaching(STEPS, wobble, 0.9) == 5
    assert first_step_reaching(STEPS, [None, float("nan")] + [0.0] * (len(STEPS) - 2), 0.9) is None


def test_grokking_budget_defaults_to_last_step():
    g = GrokkingRule().classify(STEPS, ramp(None), ramp(None))
    assert g.t_train == g.t_test == BUDGET


def test_majority_and_documented_tie_break(make_run):
    assert majority_label(["grokking", "memorization", "grokking"], GROKKING_PHASES) == (
        "grokking",
        {"grokking": 2, "memorization": 1},
        False,
    )
    # tie: the tied label that comes first in GROKKING_PHASES wins
    assert majority_label(["memorization", "grokking"], GROKKING_PHASES)[0] == "grokking"
    assert majority_label(["confusion", "memorization"], GROKKING_PHASES)[2] is True
    assert majority_label(["confusion", "memorization"], GROKKING_PHASES)[0] == "memorization"
    rule = GrokkingRule(tie_order=("confusion", "memorization", "grokking", "comprehension"))
    assert rule.aggregate(["memorization", "grokking"])[0] == "memorization"
    assert majority_label([None, None], GROKKING_PHASES) == (None, {}, False)


def test_cell_keeps_per_seed_labels(make_run):
    runs = [
        make_run(0, STEPS, ramp(100), ramp(600)),  # grokking
        make_run(1, STEPS, ramp(100), ramp(None)),  # memorization
        make_run(2, STEPS, ramp(100), ramp(500)),  # grokking
    ]
    cell = aggregate_cell(runs)
    assert cell.phase["grokking"] == "grokking"
    assert [s["label"] for s in cell.grokking["per_seed"]] == ["grokking", "memorization", "grokking"]
    assert cell.grokking["counts"] == {"grokking": 2, "memorization": 1}
    assert cell.grokking["agreement"] == pytest.approx(2 / 3)
    assert cell.grokking["tied"] is False
    tied = aggregate_cell(runs[:2])
    assert tied.phase["grokking"] == "grokking" and tied.grokking["tied"] is True
    json.dumps(cell.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- taxonomy


@pytest.mark.parametrize(
    "loss, mc, cka, label",
    [
        (1.5, -0.3, 0.5, "I"),  # poorly trained, barrier
        (1.5, -0.3, 0.99, "I"),
        (1.5, 0.2, 0.5, "II"),  # poorly trained, path below the endpoints
        (1.5, 0.0, 0.99, "II"),  # poorly trained, flat path: mc >= 0
        (0.01, -0.3, 0.99, "III"),  # well trained, barrier
        (0.01, 0.0, 0.3, "IV-A"),  # well trained, connected, dissimilar
        (0.01, 0.005, 0.97, "IV-B"),  # well trained, connected, similar
    ],
)
def test_taxonomy_five_phases(loss, mc, cka, label):
    assert TaxonomyRule().classify(loss, mc, cka).label == label


def test_taxonomy_threshold_edges():
    rule = TaxonomyRule(loss_threshold=0.1, mc_tolerance=0.02, cka_threshold=0.9)
    # loss == threshold is "high"; just below is "low"
    assert rule.loss_class(0.1) == "high" and rule.loss_class(0.0999) == "low"
    # |mc| == tolerance is "about zero" (inclusive); beyond it a barrier / a dip
    assert rule.mc_class(-0.02) == "zero" and rule.mc_class(0.02) == "zero"
    assert rule.mc_class(-0.0201) == "negative" and rule.mc_class(0.0201) == "positive"
    # CKA == threshold is "high"
    assert rule.cka_class(0.9) == "high" and rule.cka_class(0.8999) == "low"
    assert rule.classify(0.0999, -0.02, 0.9).label == "IV-B"
    assert rule.classify(0.1, -0.0201, 0.9).label == "I"
    assert rule.classify(0.0999, -0.0201, 0.9).label == "III"
    assert rule.classify(0.0999, 0.0, 0.8999).label == "IV-A"
    # well trained with a clearly positive mc: documented as well connected (Phase IV)
    assert rule.classify(0.01, 0.3, 0.95).label == "IV-B"


def test_taxonomy_missing_and_nonfinite_inputs():
    rule = TaxonomyRule()
    assert rule.classify(float("nan"), -0.5, None).label == "I"  # diverged: high loss; CKA not needed
    assert rule.classify(float("inf"), 0.1, None).label == "II"
    low = rule.classify(0.01, 0.0, None)  # Phase IV needs CKA to split A/B
    assert low.label is None and "CKA" in low.reason
    assert rule.classify(0.01, None, None).label is None
    assert rule.classify(0.01, -0.5, None).label == "III"


def test_taxonomy_table_is_complete_and_editable():
    assert len(TAXONOMY_TABLE) == 12
    assert set(TAXONOMY_TABLE.values()) == set(TAXONOMY_PHASES)
    swapped = dict(TAXONOMY_TABLE)
    swapped[("high", "zero", "low")] = "I"
    assert TaxonomyRule(table=swapped).classify(1.0, 0.0, 0.1).label == "I"
    incomplete = dict(TAXONOMY_TABLE)
    del incomplete[("low", "zero", "low")]
    with pytest.raises(ValueError, match="missing"):
        TaxonomyRule(table=incomplete)
    edited = dataclasses.replace(TaxonomyRule(), loss_threshold=2.0)
    assert edited.classify(1.5, 0.0, 0.95).label == "IV-B"


def test_cell_taxonomy_uses_means(make_run):
    runs = [make_run(s, STEPS, ramp(100), ramp(120), train_loss=l) for s, l in ((0, 0.02), (1, 0.04))]
    pairs = [{"seed_a": 0, "seed_b": 1, "mc": -0.01, "cka": 0.95, "l2_distance": 3.0}]
    cell = aggregate_cell(runs, pairs)
    assert cell.phase["taxonomy"] == "IV-B"
    assert cell.taxonomy["train_loss"] == pytest.approx(0.03)
    assert cell.pair_metrics["cka"].mean == pytest.approx(0.95)
    assert cell.metrics["train_loss"].std == pytest.approx(0.01)
    diverged = [make_run(0, STEPS, ramp(None), ramp(None), train_loss=float("nan")), runs[1]]
    assert aggregate_cell(diverged, pairs).phase["taxonomy"] == "II"  # a NaN loss counts as high
    assert aggregate_cell(runs).phase["taxonomy"] is None  # one seed pair needed for mc/CKA
    json.dumps(aggregate_cell(diverged, pairs).to_dict(), allow_nan=False)


@pytest.mark.parametrize("rule", [GrokkingRule(), TaxonomyRule()])
def test_describe_gives_a_legend_for_every_phase(rule):
    d = rule.describe()
    assert [p["label"] for p in d["phases"]] == list(rule.phases)
    assert all(p["text"] for p in d["phases"])
    assert d["reference"] and d["summary"] and d["parameters"]
    json.dumps(d, allow_nan=False)
    for name, value in d["parameters"].items():
        if isinstance(value, float):
            assert math.isfinite(value)
    assert rule.__doc__ and "et al." in rule.__doc__
