"""Fixtures for the lineage library tests (plain pytest; no Django needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The repository carries the Hugging Face lineage snapshot (see data/hf-lineage/README.md).
HF_LINEAGE_DIR = REPO_ROOT / "data" / "hf-lineage"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Let `import analysis.lineage` work however pytest is invoked.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def hf_lineage_dir() -> Path:
    assert (HF_LINEAGE_DIR / "model_cards_parent_edges.csv").exists(), f"the repository carries the snapshot at {HF_LINEAGE_DIR}"
    return HF_LINEAGE_DIR


@pytest.fixture(scope="session")
def hf_snapshot(hf_lineage_dir):
    from analysis.lineage.edge_lists import import_hf_snapshot

    return import_hf_snapshot(hf_lineage_dir)


@pytest.fixture(scope="session")
def synthetic_zoo():
    from analysis.lineage.synthetic_zoo import build_synthetic_zoo

    return build_synthetic_zoo(n_families=3, children_per_root=4, grandchildren_per_child=2, seed=0)


@pytest.fixture(autouse=True)
def _no_hub_network(monkeypatch):
    """Any real Hub call in a test is a bug: fail loudly instead of hanging."""
    try:
        import huggingface_hub.hf_api as hf_api
    except ImportError:  # pragma: no cover - huggingface_hub is installed here
        return

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to call the real Hugging Face Hub")

    monkeypatch.setattr(hf_api.HfApi, "model_info", refuse)
