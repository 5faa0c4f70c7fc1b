"""Shared fixtures. Helpers add fixtures here; keep each one session-scoped when it trains a model.

Tests that need ../shared use the ``shared_dir`` fixture (or ``shared_path("...")``): they skip
with a clear reason when it is absent, and fail instead when EDGECNN_REQUIRE_SHARED=1 (CI).
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", ROOT.parent / "shared"))

# The decoded-image cache (edgecnn.data.pixels) of the tests: one folder per user, shared by xdist
# workers and the subprocesses they start, so a test never reads or fills the user's ~/.cache.
# Content-addressed, so a test that edits a file sees the edit; the tests of the cache itself give
# it folders of their own.
os.environ.setdefault("EDGECNN_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"edgecnn-tests-cache-{os.getuid()}"))


def shared_path(*parts) -> Path:
    """Path inside ../shared; skips (or fails under EDGECNN_REQUIRE_SHARED=1) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"needs {path} (../shared is only in the developers' and CI checkouts)"
        if os.environ.get("EDGECNN_REQUIRE_SHARED") == "1":
            pytest.fail(f"EDGECNN_REQUIRE_SHARED=1 but {reason}")
        pytest.skip(reason)
    return path


# Tests that time threads against wall-clock limits (capture stalls, invoke watchdogs, "fast" data
# generation) or read the process's peak RSS (an xdist worker that loaded TensorFlow for an earlier
# test already peaked far above it): beside another test process their figures are not theirs, so
# `make test` runs them after the parallel part, alone (`pytest -m serial`). Marked here by file so a
# new test in these files is serial too.
SERIAL_FILES = {"tests/device/test_capture.py", "tests/device/test_interpreters.py", "tests/test_synth.py",
                "tests/device/test_field_sources.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix() in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)


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


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL 15 server on 127.0.0.1 (tests/pg_helpers.py); skips saying why when it cannot
    be had, fails instead under EDGECNN_REQUIRE_SHARED=1."""
    from pg_helpers import postgres_server

    server = postgres_server()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def study_url(request, tmp_path) -> str:
    """An empty study storage URL: a sqlite file, then a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A generated class-folder dataset (4 classes x 60 images, 96 px JPEGs; edgecnn.data.synth, seed 0)."""
    from edgecnn.data.synth import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo_data") / "data", per_class=60, size=96, seed=0)


@pytest.fixture(scope="session")
def mini_run(tmp_path_factory, demo_data) -> Path:
    """A RUN_DIR of a small flat CNN (32 px, conv/BN blocks) trained 20 epochs on demo_data (~3 s)."""
    from convert_helpers import make_run, mini_model

    return make_run(tmp_path_factory.mktemp("mini_run") / "run", demo_data, mini_model(4, 32), size=32, epochs=20)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_run) -> Path:
    """An int8 bundle (uint8 I/O, drawn calibration, golden samples) of ``tiny_run``."""
    from edgecnn.compress.convert import convert_run

    out = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    convert_run(tiny_run, out, mode="int8", io="uint8", calibration_size=32, eval_size=64, golden=4)
    return out


# A MobileNet v1 0.25 at 64 px trained from scratch (--weights none): about 15 s on 2 cores, val
# accuracy ~0.6 on the 4 demo classes (chance 0.25). test_cli re-runs it through the CLI.
@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_data) -> Path:
    """A finished RUN_DIR of `edgecnn finetune` on demo_data (TINY_RUN_OPTIONS), with a test split."""
    from edgecnn.train.finetune import finetune

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    finetune(demo_data, out, quiet=True, **TINY_RUN_OPTIONS)
    return out


from train_helpers import TINY_RUN_OPTIONS, finetune_flags  # noqa: E402,F401

HYMENOPTERA_RUN_OPTIONS = dict(backbone="mobilenet_v1", alpha=0.5, input_size=160, epochs=15, fine_tune_epochs=0,
                               patience=5, seed=0)


@pytest.fixture(scope="session")
def hymenoptera_run(tmp_path_factory, hymenoptera, pretrained_dir) -> Path:
    """Transfer learning on hymenoptera: the pretrained MobileNet v1 0.5/160 base, head phase only
    (about 10 s; val accuracy ~0.9). Its val split is hymenoptera's own val/ folder; no test split."""
    from edgecnn.train.finetune import finetune

    out = tmp_path_factory.mktemp("hymenoptera_run") / "run"
    weights = pretrained_dir / "mobilenet_v1_0.5_160_imagenet_notop.h5"
    finetune(hymenoptera, out, quiet=True, weights=str(weights), **HYMENOPTERA_RUN_OPTIONS)
    return out
