"""The one JSON-safe number helper: known answers for every kind of value a result holds."""

import json
import math

import numpy as np
import pytest
import torch

from analysis.json_safe import finite_or_none, json_safe


@pytest.mark.parametrize("value, expected", [
    (1.5, 1.5), (-0.0, 0.0), (3, 3.0), (0, 0.0), (10**20, 1e20),
    (np.float32(0.25), 0.25), (np.float64(-2.5), -2.5), (np.int64(7), 7.0), (np.array(4.0), 4.0),
    (torch.tensor(0.5), 0.5), (torch.tensor([2.0]), 2.0),
    (float("nan"), None), (float("inf"), None), (float("-inf"), None), (math.nan, None),
    (np.float32("nan"), None), (np.float64("-inf"), None), (torch.tensor(float("inf")), None),
    (None, None), (True, None), (False, None), (np.bool_(True), None), ("1.5", None), (b"1", None),
])
def test_finite_or_none_known_answers(value, expected):
    result = finite_or_none(value)
    assert result == expected and (result is None or type(result) is float)


@pytest.mark.parametrize("value", [[1.0], np.ones(3), torch.ones(2), {"a": 1}])
def test_finite_or_none_refuses_what_is_not_one_number(value):
    with pytest.raises((TypeError, ValueError)):
        finite_or_none(value)


def test_json_safe_makes_strict_json_of_nested_results():
    value = {"loss": float("nan"), 3: [np.float32(0.5), float("inf"), (1, np.int64(2))], "ok": True, "name": "a",
             "grid": np.array([[1.0, np.nan]]), "none": None, "tags": {"x"}}
    safe = json_safe(value)
    assert safe == {"loss": None, "3": [0.5, None, [1, 2]], "ok": True, "name": "a", "grid": [[1.0, None]],
                    "none": None, "tags": ["x"]}
    assert type(safe["3"][2][1]) is int and safe["ok"] is True
    json.dumps(safe, allow_nan=False)  # strict JSON: would raise on NaN/Infinity


def test_json_safe_keeps_or_converts_other_objects():
    marker = object()
    assert json_safe([marker]) == [marker]
    assert json_safe({"when": marker}, other=lambda v: "converted") == {"when": "converted"}
