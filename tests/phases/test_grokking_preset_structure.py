"""The grokking preset reproduces all four phases of Liu et al. (2022) on the cells that
define them: memorization without weight decay, grokking at moderate weight decay and a
small learning rate, comprehension at moderate weight decay and a large learning rate,
confusion at the largest weight decay. One seed per cell keeps this to about a minute;
`manage.py run_phase_presets grokking` runs all of it (3 seeds, 28 cells)."""

import copy

import pytest

from analysis.phases import PRESETS, run_cell, validate_sweep


@pytest.fixture(scope="module")
def spec():
    raw = copy.deepcopy(PRESETS["grokking"])
    raw["seeds"] = [0]
    return validate_sweep(raw)


def label(spec, weight_decay, lr):
    i = spec.x.values.index(weight_decay)
    j = spec.y.values.index(lr)
    cell, _ = run_cell(spec, i, j)
    return cell.phase["grokking"]


def test_no_weight_decay_memorizes(spec):
    assert label(spec, 0.0, max(spec.y.values)) == "memorization"


def test_moderate_weight_decay_with_a_small_learning_rate_groks(spec):
    assert label(spec, 1.0, min(spec.y.values)) == "grokking"


def test_moderate_weight_decay_with_a_large_learning_rate_comprehends(spec):
    assert label(spec, 1.0, max(spec.y.values)) == "comprehension"


def test_largest_weight_decay_is_confusion(spec):
    assert label(spec, max(spec.x.values), max(spec.y.values)) == "confusion"
