"""The structure is checked, not described (issue 14): import-linter's layer and forbidden-import
contracts, no import cycle, a small top level, short modules, ``python -m edgecnn``."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"
pytest.importorskip("importlinter", reason="import-linter is in the dev extra (make test installs it)")


def lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` as a user runs it in a checkout (it puts the working folder first on sys.path)."""
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=600)


def test_the_contracts_are_kept_here():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 kept, 0 broken" in res.stdout


def test_a_board_module_importing_a_pipeline_or_tensorflow_breaks_the_contracts(tmp_path):
    shutil.copytree(ROOT / "edgecnn", tmp_path / "edgecnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "edgecnn" / "devices" / "decision.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom edgecnn.train.finetune import finetune  # noqa\n")
    with open(tmp_path / "edgecnn" / "bundle" / "manifest.py", "a", encoding="utf-8") as fh:
        fh.write("\nimport tensorflow  # noqa\n")
    res = lint(tmp_path)
    assert res.returncode != 0
    assert "the board on the board-safe core BROKEN" in res.stdout, res.stdout
    assert "The board and the bundle import no TensorFlow, Keras or tfmot BROKEN" in res.stdout
    assert "edgecnn.devices.decision -> edgecnn.train.finetune" in res.stdout
    assert "edgecnn.bundle.manifest -> tensorflow" in res.stdout


def _import_cycles():
    code = ("import grimp, json, sys; g = grimp.build_graph('edgecnn'); "
            "cycles = sorted({m for m in g.modules for i in g.find_modules_directly_imported_by(m) "
            "if g.chain_exists(importer=i, imported=m)}); print(json.dumps(cycles))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_no_module_imports_itself_through_others():
    assert _import_cycles().strip() == "[]"


def test_the_top_level_holds_packages_and_a_few_core_modules():
    files = sorted(p.name for p in (ROOT / "edgecnn").iterdir() if p.is_file())
    assert len(files) < 10, files
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "edgecnn").rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300}
    assert not long, f"modules over 300 lines: {long}"


def test_python_dash_m_edgecnn_is_the_command_line():
    res = subprocess.run([sys.executable, "-m", "edgecnn", "--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "edgecnn" in res.stdout and "0.1.0" in res.stdout, res.stdout + res.stderr
    res = subprocess.run([sys.executable, "-m", "edgecnn", "no-such-command"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "No such command 'no-such-command'" in res.stderr
