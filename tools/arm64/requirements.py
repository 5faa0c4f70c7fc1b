"""Print the requirements of the board venv for one extra, read from pyproject.toml (one place).

    python3 tools/arm64/requirements.py device-tflite

The core dependencies, the extra's, and the test tools the board tests need (pytest, hypothesis,
as pinned in the ``dev`` extra), plus what ``pip install -e`` needs to build offline.
"""

import sys
import tomllib
from pathlib import Path

TEST_TOOLS = ("pytest", "hypothesis")
BUILD = ("setuptools>=68", "wheel")


def requirements(extra: str) -> list:
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    if extra not in extras:
        raise SystemExit(f"no extra '{extra}' in pyproject.toml (have: {', '.join(sorted(extras))})")
    tools = [r for r in extras.get("dev", []) if r.split("=")[0].split(">")[0].strip() in TEST_TOOLS]
    return [*project["dependencies"], *extras[extra], *tools, *BUILD]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1])))
