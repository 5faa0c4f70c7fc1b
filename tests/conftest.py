"""Shared fixtures. Helpers add fixtures here; keep each one session-scoped when it trains a model.

Tests that need ../shared use the ``shared_dir`` fixture (or ``shared_path("...")``): they skip
with a clear reason when it is absent, and fail instead when EDGECNN_REQUIRE_SHARED=1 (CI).
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", ROOT.parent / "shared"))


def shared_path(*parts) -> Path:
    """Path inside ../shared; skips (or fails under EDGECNN_REQUIRE_SHARED=1) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"needs {path} (../shared is only in the developers' and CI checkouts)"
        if os.environ.get("EDGECNN_REQUIRE_SHARED") == "1":
            pytest.fail(f"EDGECNN_REQUIRE_SHARED=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def hymenoptera(shared_dir) -> Path:
    return shared_path("datasets", "hymenoptera")


@pytest.fixture(scope="session")
def coral_dir(shared_dir) -> Path:
    return shared_path("models", "coral")


@pytest.fixture(scope="session")
def pretrained_dir(shared_dir) -> Path:
    return shared_path("models", "pretrained")


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A generated class-folder dataset (4 classes x 60 images, 96 px JPEGs; edgecnn.synth, seed 0)."""
    from edgecnn.synth import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo_data") / "data", per_class=60, size=96, seed=0)
