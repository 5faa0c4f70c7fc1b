"""Helpers shared by the board-side tests (importable as ``board_helpers``; no TensorFlow)."""

import time
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


class ColourCamera:
    """A live fake camera (there is no camera on CI): red, green, blue in turn, ten frames each.

    ``seeds`` cycles the clutter over that many seeds (None: a new seed every frame).
    """

    live = True

    def __init__(self, seeds=None):
        self.i = 0
        self.seeds = seeds

    def read(self):
        time.sleep(0.005)
        self.i += 1
        return colour_frame(self.i // 10 % 3, seed=self.i % self.seeds if self.seeds else self.i)

    def release(self):
        pass
