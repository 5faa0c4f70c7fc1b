"""Helpers shared by the board-side tests (importable as ``board_helpers``; no TensorFlow)."""

from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent / "assets"
LABELS = ["red", "green", "blue"]


def colour_frame(index, size=(48, 64), seed=0):
    """A BGR frame whose dominant colour is LABELS[index] (what the tiny model recognises)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 60, size=(*size, 3)).astype(np.int32)
    rgb[..., index] += 170
    return np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8)[..., ::-1])


def edgecnn_cmd(*args):
    """The ``edgecnn`` command line run by this venv's Python (whatever its console scripts)."""
    import sys

    return [sys.executable, "-c", "import sys; from edgecnn.cli import main; sys.exit(main())", *map(str, args)]
