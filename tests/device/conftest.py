"""Fixtures of the board-side tests. Nothing here imports TensorFlow (these tests also run in
.venv-board, which has tflite-runtime 2.14 and numpy 1 and no TensorFlow)."""

import shutil
from pathlib import Path

import pytest
from board_helpers import ASSETS, colour_frame

@pytest.fixture
def assets() -> Path:
    return ASSETS


@pytest.fixture
def tiny_bundle(tmp_path) -> Path:
    """A writable copy of the committed tiny bundle (golden scores computed with LiteRT)."""
    dest = tmp_path / "bundle"
    shutil.copytree(ASSETS / "tiny_bundle", dest)
    return dest


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    """Six images, red green blue red green blue, named in that order."""
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:03d}.png"), colour_frame(i % 3, seed=i))
    return folder


@pytest.fixture(scope="session")
def coral_bundle(coral_dir, tmp_path_factory) -> Path:
    """Coral's mobilenet v2 (ImageNet, mean 128 std 128) wrapped into a bundle."""
    from edgecnn.devices.wrap import wrap_tflite

    return wrap_tflite(coral_dir / "mobilenet_v2_1.0_224_quant.tflite", coral_dir / "imagenet_labels.txt",
                       tmp_path_factory.mktemp("coral") / "bundle", mean=128, std=128,
                       images=[coral_dir / "cat.bmp", coral_dir / "bird.bmp"])


@pytest.fixture(scope="session")
def coral_tpu_bundle(coral_dir, tmp_path_factory) -> Path:
    """mobilenet v1 0.25/128 with its real Edge TPU twin as model_edgetpu.tflite (no TPU here)."""
    from edgecnn.devices.wrap import wrap_tflite

    return wrap_tflite(coral_dir / "mobilenet_v1_0.25_128_quant.tflite", coral_dir / "imagenet_labels.txt",
                       tmp_path_factory.mktemp("coral_tpu") / "bundle", mean=128, std=128,
                       edgetpu_model=coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
                       images=[coral_dir / "bird.bmp"])
