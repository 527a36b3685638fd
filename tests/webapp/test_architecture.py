"""The structure rules, executable: import-linter's layer contracts (.importlinter)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def lint_imports(*, pythonpath: Path) -> subprocess.CompletedProcess:
    """`lint-imports` with the project's contracts, over the `analysis` and `webapp` packages found on `pythonpath`."""
    command = [str(Path(sys.executable).parent / "lint-imports"), "--config", str(CONFIG), "--no-cache", "--no-logo"]
    return subprocess.run(command, cwd=pythonpath, env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_the_layer_contracts_hold():
    result = lint_imports(pythonpath=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" KEPT") == 3


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_each_contract_breaks_on_the_import_it_forbids(tmp_path):
    # A tiny analysis/ and webapp/ holding one breaker per contract, checked with the project's own config.
    write_tree(tmp_path, {
        "analysis/__init__.py": "",
        "analysis/report.py": "import django\n",
        "webapp/__init__.py": "",
        "webapp/shop/__init__.py": "",
        "webapp/shop/selectors.py": "from webapp.shop import helpers\n",
        "webapp/shop/helpers.py": "from webapp.billing import services\n",  # indirect: selectors -> helpers -> services
        "webapp/billing/__init__.py": "",
        "webapp/billing/services.py": "from webapp.shop import models\n",
        "webapp/shop/models.py": "",
    })
    result = lint_imports(pythonpath=tmp_path)
    assert result.returncode == 1
    broken = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert len(broken) == 3, result.stdout
    assert "analysis.report -> django" in result.stdout
    assert "webapp.shop.selectors -> webapp.shop.helpers" in result.stdout
    assert "No cycles are allowed in webapp." in result.stdout
