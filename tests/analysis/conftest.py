"""Fixtures for the analysis library tests (no Django needed)."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Two shared cores: keep every test single-threaded and predictable.
torch.set_num_threads(1)

DIGITS_MLP = {"kind": "mlp", "in": 64, "hidden": [256, 256], "out": 10}
SMALL_MLP = {"kind": "mlp", "in": 64, "hidden": [32, 32], "out": 10}


@pytest.fixture(scope="session")
def digits():
    from analysis import data

    return data.load("digits", "train"), data.load("digits", "test")


@pytest.fixture(scope="session")
def small_models(digits):
    """Two small digits MLPs trained from different seeds (a few seconds)."""
    from analysis.train import train

    (train_data, test_data) = digits
    return [
        train(SMALL_MLP, train_data, test_data=test_data, epochs=8, lr=0.05, seed=seed) for seed in (0, 1)
    ]
