"""Datasets from a folder of labelled photos: find the classes, scan every file, split, load.

Two layouts are understood:

* ``folders``: ``DATA_DIR/<class>/*.jpg``; a seeded, stratified train/val/test split is made
  (deterministic for a given seed: file lists are sorted before shuffling);
* ``splits``: ``DATA_DIR/train/<class>/``, ``DATA_DIR/val/<class>/`` and optionally
  ``DATA_DIR/test/<class>/``, used as given.

Class folders sorted by name give the label order. Hidden files and folders are ignored. Every
file is scanned (fully decoded) before training; bad files are skipped and reported, never fatal.
No TensorFlow here. Loading a split's pixels is :func:`edgecnn.data.pixels.load_images`.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np

from edgecnn.data.folders import Discovery, discover, relative, scan_files
from edgecnn.data.scan import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS
from edgecnn.errors import DataError

@dataclass
class Sample:
    """One usable image: absolute path, integer label, sha256 of the file's bytes."""

    path: Path
    label: int
    sha256: str


@dataclass
class Dataset:
    """The scanned and split dataset.

    Attributes:
        root: DATA_DIR (absolute).
        layout: ``"folders"`` or ``"splits"``.
        labels: class names in label order.
        splits: ``{"train": [...], "val": [...]}`` plus ``"test"`` when there is one.
        skipped: ``[{"path": relative path, "reason": ...}]`` for files not used.
        warnings: ``[{"path": ..., "reason": ...}]`` for files kept with a warning (a PNG named
            .jpg) and dataset-level notes (no test split, a class missing from val...).
    """

    root: Path
    layout: str
    labels: List[str]
    splits: Dict[str, List[Sample]]
    skipped: List[dict] = field(default_factory=list)
    warnings: List[dict] = field(default_factory=list)

    def class_counts(self) -> dict:
        """``{split: {label name: number of images}}`` (every label listed, zeros included)."""
        out = {}
        for split, samples in self.splits.items():
            counts = np.bincount([s.label for s in samples], minlength=len(self.labels))
            out[split] = {name: int(n) for name, n in zip(self.labels, counts)}
        return out

    def imbalance_ratio(self) -> float:
        """Largest over smallest class in train (``inf`` when a class has no train image)."""
        counts = list(self.class_counts().get("train", {}).values())
        if not counts:
            return float("nan")
        if min(counts) == 0:
            return float("inf")
        return max(counts) / min(counts)

    def to_json(self) -> dict:
        """A JSON-safe description (paths relative to ``root``), e.g. for run.json."""
        root = Path(self.root)
        return {
            "root": str(root),
            "layout": self.layout,
            "labels": list(self.labels),
            "splits": {
                split: [{"path": relative(s.path, root), "label": self.labels[s.label], "sha256": s.sha256}
                        for s in samples]
                for split, samples in self.splits.items()
            },
            "class_counts": self.class_counts(),
            "imbalance_ratio": self.imbalance_ratio(),
            "skipped": [dict(d) for d in self.skipped],
            "warnings": [dict(d) for d in self.warnings],
        }

    @classmethod
    def from_json(cls, d: dict) -> "Dataset":
        """Rebuild a Dataset written by ``to_json`` (paths resolved against ``root``)."""
        root = Path(d["root"])
        labels = list(d["labels"])
        index = {name: i for i, name in enumerate(labels)}
        splits = {}
        for split, items in d["splits"].items():
            try:
                splits[split] = [Sample((root / item["path"]).absolute(), index[item["label"]], item["sha256"])
                                 for item in items]
            except KeyError as exc:
                raise DataError(f"dataset description names label {exc} in split '{split}', which is not one "
                                f"of its labels {labels}. The file was edited or is corrupt; rebuild it.") from None
        return cls(root=root, layout=d["layout"], labels=labels, splits=splits,
                   skipped=[dict(x) for x in d.get("skipped", [])],
                   warnings=[dict(x) for x in d.get("warnings", [])])


def check_two_classes(disc: Discovery) -> None:
    if len(disc.labels) == 1:
        where = disc.root / "train" if disc.layout == "splits" else disc.root
        raise DataError(f"'{where}' has only one class ('{disc.labels[0]}'); a classifier needs at least 2. Add a "
                        f"folder per class next to '{disc.labels[0]}'.")


def assemble(disc: Discovery, results, val_fraction: float = 0.2, test_fraction: float = 0.1,
             seed: int = 0) -> Dataset:
    """Build the Dataset from a Discovery and one ``(ScanResult, sha256)`` per file, in order.

    Raises:
        DataError: no usable image at all, fewer than two classes, or a class too small for the split.
    """
    check_fractions(val_fraction, test_fraction)
    check_two_classes(disc)
    root, labels = disc.root, disc.labels
    splits_present = sorted({split for split, _, _ in disc.files} | ({"train", "val"} if disc.layout == "splits"
                                                                      else {"all"}))
    notes: List[dict] = []
    skipped: List[dict] = []
    good: Dict[str, Dict[int, List[Sample]]] = {s: {i: [] for i in range(len(labels))} for s in splits_present}
    for (split, label, path), (result, digest) in zip(disc.files, results):
        rel = relative(path, root)
        if not result.ok:
            skipped.append({"path": rel, "reason": result.reason})
            continue
        if result.reason:
            notes.append({"path": rel, "reason": result.reason})
        good[split][label].append(Sample(path, label, digest))

    total = sum(len(v) for per in good.values() for v in per.values())
    if total == 0:
        sample = "; ".join(f"{d['path']}: {d['reason']}" for d in skipped[:3]) or "the class folders are empty"
        raise DataError(f"'{root}' has class folders ({', '.join(labels)}) but no usable images "
                        f"({len(skipped)} files skipped: {sample}). Supported extensions: "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))}.")

    if disc.layout == "splits":
        splits = _given_splits(root, labels, good, notes)
    else:
        splits = _stratified_split(root, labels, good["all"], val_fraction, test_fraction, seed)
        if test_fraction == 0:
            notes.append({"path": "", "reason": "no test split (test_fraction=0): final numbers come from val"})
    return Dataset(root=root, layout=disc.layout, labels=labels, splits=splits, skipped=skipped, warnings=notes)


def check_fractions(val_fraction, test_fraction):
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in [0, 1) "
                        "and sum to less than 1, so that train keeps some images.")


def load_dataset(data_dir, val_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False) -> Dataset:
    """Find the classes of ``data_dir``, scan every file and split into train/val[/test].

    Args:
        data_dir: DATA_DIR, in the ``folders`` or ``splits`` layout (see the module docstring).
        val_fraction: share of each class in val (``folders`` layout only).
        test_fraction: share of each class in test (``folders`` layout only; 0 for no test split).
        seed: seed of the stratified split (``folders`` layout only).
        max_pixels: decompression-bomb limit per image.
        progress: show a progress bar while scanning.

    Returns:
        A Dataset. Bad files are in ``skipped`` with their reason; files kept with a warning
        (wrong extension) are in ``warnings``.

    Raises:
        DataError: for a missing or empty folder, fewer than two classes, or a class too small
            for the split; the message names the value at fault and the fix.
    """
    check_fractions(val_fraction, test_fraction)
    disc = discover(data_dir)
    check_two_classes(disc)
    results = scan_files([path for _, _, path in disc.files], max_pixels, progress)
    return assemble(disc, results, val_fraction, test_fraction, seed)


def _given_splits(root, labels, good, notes) -> Dict[str, List[Sample]]:
    for i, name in enumerate(labels):
        n = len(good["train"][i])
        if n == 0:
            raise DataError(f"class '{name}' has 0 usable images in '{root / 'train' / name}'; every class needs "
                            "training images. Add images there or remove the class folder.")
    for split in ("val", "test"):
        if split not in good:
            continue
        missing = [labels[i] for i in range(len(labels)) if not good[split][i]]
        if len(missing) == len(labels):
            raise DataError(f"'{root / split}' has no usable images. Add {split}/<class>/ images or remove the "
                            f"{split}/ folder.")
        if missing:
            notes.append({"path": split, "reason": f"no {split} images for class(es) {', '.join(missing)}: "
                                                   f"their {split} accuracy cannot be measured"})
    if "test" not in good:
        notes.append({"path": "", "reason": "no test/ folder: final numbers come from val"})
    return {split: [s for i in range(len(labels)) for s in per[i]] for split, per in good.items()}


def _stratified_split(root, labels, per_class, val_fraction, test_fraction, seed) -> Dict[str, List[Sample]]:
    rng = np.random.default_rng(seed)
    names = ["train", "val"] + (["test"] if test_fraction > 0 else [])
    need = 1 + (val_fraction > 0) + (test_fraction > 0)
    splits = {s: [] for s in names}
    for i, name in enumerate(labels):
        samples = per_class[i]  # sorted by path already
        n = len(samples)
        if n < need:
            parts = "train/val/test" if test_fraction > 0 else "train/val"
            raise DataError(f"class '{name}' has only {n} usable image{'s' if n != 1 else ''} in "
                            f"'{root / name}'; a {parts} split needs at least {need} per class. Add images to "
                            f"'{name}', or lower test_fraction (--test-fraction 0 makes no test split).")
        n_val = max(1, int(round(n * val_fraction))) if val_fraction > 0 else 0
        n_test = max(1, int(round(n * test_fraction))) if test_fraction > 0 else 0
        while n - n_val - n_test < 1:  # keep at least one training image
            if n_val >= n_test and n_val > 1:
                n_val -= 1
            else:
                n_test -= 1
        order = rng.permutation(n)
        picked = [samples[j] for j in order]
        splits["val"].extend(picked[:n_val])
        if test_fraction > 0:
            splits["test"].extend(picked[n_val:n_val + n_test])
        splits["train"].extend(picked[n_val + n_test:])
    for s in names:  # stable order inside a split: by label, then path
        splits[s].sort(key=lambda x: (x.label, x.path.as_posix()))
    return splits


def format_summary(dataset: Dataset) -> str:
    """A short human summary: classes, counts per split, imbalance, skipped files and warnings."""
    counts = dataset.class_counts()
    lines = [f"Dataset {dataset.root} ({dataset.layout} layout): {len(dataset.labels)} classes"]
    width = max(len(n) for n in dataset.labels)
    header = "  " + "class".ljust(width) + "".join(f"{s:>8}" for s in counts)
    lines.append(header)
    for name in dataset.labels:
        lines.append("  " + name.ljust(width) + "".join(f"{counts[s][name]:>8}" for s in counts))
    lines.append("  " + "total".ljust(width) + "".join(f"{sum(counts[s].values()):>8}" for s in counts))
    ratio = dataset.imbalance_ratio()
    note = " (imbalanced: consider class weights or more images)" if ratio >= 3 else ""
    lines.append(f"Imbalance ratio (train, largest/smallest class): {ratio:.2f}{note}")
    if "test" not in dataset.splits:
        lines.append("No test split: final numbers come from val.")
    if dataset.skipped:
        lines.append(f"Skipped {len(dataset.skipped)} file(s):")
        lines.extend(f"  {d['path']}: {d['reason']}" for d in dataset.skipped)
    kept = [d for d in dataset.warnings if d.get("path") and "kept" in d.get("reason", "")]
    if kept:
        lines.append(f"Kept with a warning {len(kept)} file(s):")
        lines.extend(f"  {d['path']}: {d['reason']}" for d in kept)
    other = [d for d in dataset.warnings if d not in kept and not d.get("reason", "").startswith("no test")]
    lines.extend(f"Note: {d['path'] + ': ' if d['path'] else ''}{d['reason']}" for d in other)
    return "\n".join(lines)
