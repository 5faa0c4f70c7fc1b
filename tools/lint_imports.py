"""Run import-linter's contracts (``[tool.importlinter]`` in pyproject.toml) on the installed layout.

import-linter (grimp) finds a package's modules by walking its folder, and ``edgecnn.converters``
and ``edgecnn.devices`` live in their own folders, mapped in by setuptools ``package-dir``. So the
tree is first laid out as an install lays it out (a copy in a temporary folder, following
``[tool.setuptools.package-dir]``), and the contracts run on that copy.

    python tools/lint_imports.py [--root CHECKOUT]     # exit status: lint-imports' (0 = all kept)
"""

import argparse
import os
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(root: Path, into: Path) -> None:
    """Copy each mapped package folder of ``root`` to where its import name puts it under ``into``."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = config["tool"]["setuptools"]["package-dir"]
    for name, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        shutil.copytree(root / folder, into.joinpath(*name.split(".")), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to check (default: this one)")
    root = parser.parse_args(argv).root.resolve()
    from importlinter.cli import lint_imports

    with tempfile.TemporaryDirectory(prefix="edgecnn-lint-") as tmp:
        stage(root, Path(tmp))
        sys.path.insert(0, tmp)
        os.chdir(tmp)  # lint-imports puts the working folder first on sys.path
        return lint_imports(config_filename=str(root / "pyproject.toml"), no_cache=True, no_logo=True)


if __name__ == "__main__":
    sys.exit(main())
