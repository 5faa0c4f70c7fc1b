"""The dataset every trial of a search shares: split once, images decoded once per input size.

Decoded images come from the decoded-image cache every stage shares (:mod:`edgecnn.data.pixels`:
trials of one input size, a resumed search, other search workers and later finetune runs reuse them);
base features are cached under ``SEARCH_DIR/cache`` by :mod:`.training`.
"""

import hashlib
from pathlib import Path

import numpy as np

from edgecnn.bundle.model import DEFAULT_RESIZE
from edgecnn.errors import EdgecnnError

SPLITS = ("train", "val")  # a trial trains on train and is ranked on val


class SearchData:
    """The dataset split once, images decoded once per input size (cached on disk)."""

    # Decoded as finetune decodes by default (and the board resizes), so trials see what the export sees.
    resize = DEFAULT_RESIZE

    def __init__(self, data_dir, cache_dir, seed: int = 0, calibration: int = 64, progress: bool = False):
        from edgecnn.data.dataset import load_dataset

        self.data_dir = Path(data_dir)
        self.dataset = load_dataset(data_dir, seed=seed, progress=progress)
        self.labels = list(self.dataset.labels)
        self.cache_dir = Path(cache_dir)
        self.calibration = calibration
        self._images = {}
        if not self.dataset.splits.get("val"):
            raise EdgecnnError(f"dataset '{data_dir}' has no validation images; the search ranks trials on val. "
                               "Add DATA_DIR/val/<class>/ or use the folders layout (a val split is made).")
        self.splits = {split: self.dataset.splits[split] for split in SPLITS}
        digest = hashlib.sha256()
        for split, samples in self.splits.items():
            for s in samples:
                digest.update(f"{split}:{s.label}:{s.sha256}".encode())
        self.digest = digest.hexdigest()[:16]
        self.num_classes = len(self.labels)
        self.y = {split: np.asarray([s.label for s in samples], dtype=np.int64) for split, samples in self.splits.items()}
        self.y_train, self.y_val = self.y["train"], self.y["val"]

    def images(self, size: int):
        """``{"train": uint8 N×S×S×3, "val": ...}`` at ``size`` (through the decoded-image cache)."""
        from edgecnn.data.pixels import load_images

        if size not in self._images:
            self._images[size] = {split: load_images(samples, size, resize=self.resize)[0]
                                  for split, samples in self.splits.items()}
        return self._images[size]

    def calibration_images(self, size: int, seed: int = 0):
        """Up to ``calibration`` training images, stratified by class."""
        x = self.images(size)["train"]
        rng = np.random.default_rng(seed)
        per = max(1, self.calibration // self.num_classes)
        idx = []
        for c in range(self.num_classes):
            members = np.flatnonzero(self.y_train == c)
            idx.extend(rng.permutation(members)[:per].tolist())
        return x[np.asarray(sorted(idx))]
