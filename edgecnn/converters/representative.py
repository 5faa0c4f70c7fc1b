"""Calibration (representative) sets for int8 conversion, drawn from the training split only.

A calibration set folder (``calibration_data/NAME/``, format in ``calibration_data/README.md``)::

    calibration.json        the manifest: source, seed, labels, files with sha256
    <label>/<file>          copies of the chosen training images, bytes unchanged

``convert`` also takes any folder of images (no manifest) and, when given nothing, draws a set
itself from the run's recorded train split with :func:`draw_from_run`. Val and test images are
never used: calibrating on them would leak the data the accuracy figures are measured on.
"""

import datetime as _dt
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np

from edgecnn.atomic import atomic_dir, write_json
from edgecnn.bundle.manifest import sha256_file
from edgecnn.data.dataset import Sample
from edgecnn.data.folders import image_files, relative
from edgecnn.errors import DataError
from edgecnn.data.scan import IMAGE_EXTENSIONS

MANIFEST = "calibration.json"
FORMAT = "edgecnn-calibration"
VERSION = 1


def run_samples(run: dict, split: str) -> List[Sample]:
    """The recorded ``split`` of a run as Samples (path, label index, sha256)."""
    from edgecnn.run import split_samples

    entries = run.get("data", {}).get("splits", {}).get(split) or []
    shas = [e.get("sha256", "") for e in entries]
    return [Sample(path, label, sha) for (path, label), sha in zip(split_samples(run, split), shas)]


def _train_source(source):
    """``(samples, labels, description)`` of the training split of a RUN_DIR or a DATA folder."""
    from edgecnn.run import RUN_FILE, load_run

    source = Path(source)
    if (source / RUN_FILE).is_file():
        run = load_run(source)
        return run_samples(run, "train"), list(run["labels"]), {"kind": "run", "path": str(source.resolve()),
                                                                 "split": "train"}
    from edgecnn.data.dataset import load_dataset

    dataset = load_dataset(source)
    return dataset.splits["train"], list(dataset.labels), {"kind": "data", "path": str(Path(dataset.root)),
                                                           "split": "train", "layout": dataset.layout}


def stratified(samples: List[Sample], num_classes: int, per_class: int, seed: int = 0) -> List[Sample]:
    """Up to ``per_class`` samples of each class, chosen with a seeded shuffle, in (label, path) order."""
    if per_class < 1:
        raise DataError(f"--per-class must be at least 1, got {per_class}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(num_classes):
        pool = sorted((s for s in samples if s.label == label), key=lambda s: Path(s.path).as_posix())
        order = rng.permutation(len(pool))[:per_class]
        chosen.extend(pool[i] for i in sorted(order))
    return chosen


def select(source, per_class: int, out, seed: int = 0) -> dict:
    """Write a calibration set of ``per_class`` training images per class to ``out`` (atomically).

    Args:
        source: a RUN_DIR (its recorded train split) or a DATA folder (its train split, as
            ``edgecnn.data.dataset.load_dataset`` splits it).
        per_class: images per class (fewer when a class has fewer training images).
        out: the set's folder, e.g. ``calibration_data/NAME``.
        seed: seed of the choice.

    Returns:
        The manifest written to ``out/calibration.json``.
    """
    samples, labels, origin = _train_source(source)
    chosen = stratified(samples, len(labels), per_class, seed)
    if not chosen:
        raise DataError(f"'{source}' has no training images to calibrate with.")
    out = Path(out)
    files = []
    with atomic_dir(out) as tmp:
        used = set()
        for s in chosen:
            name = f"{labels[s.label]}/{Path(s.path).name}"
            stem, k = Path(name), 1
            while name in used:  # same file name in two source folders
                name, k = f"{stem.parent}/{stem.stem}_{k}{stem.suffix}", k + 1
            used.add(name)
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s.path, tmp / name)
            files.append({"path": name, "label": labels[s.label], "sha256": sha256_file(tmp / name),
                          "source": str(s.path)})
        counts = {label: sum(f["label"] == label for f in files) for label in labels}
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": out.name,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": origin,
            "per_class": per_class,
            "seed": seed,
            "labels": labels,
            "counts": counts,
            "files": files,
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest


def load_set(path, labels: Optional[List[str]] = None) -> tuple:
    """Read a calibration folder: a set written by :func:`select`, or any folder of images.

    Returns:
        ``(samples, info)``: Samples (label -1 when unknown) and the JSON-safe description that
        the bundle records (name, path, files with sha256).

    Raises:
        DataError: missing or empty folder, a file that fails its sha256, labels that differ.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"calibration set '{path}' is not a folder. Pass a folder of training images or one made "
                        "by `edgecnn calibration select RUN_DIR --out calibration_data/NAME`.")
    manifest_path = path / MANIFEST
    if manifest_path.is_file():
        import json

        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if labels is not None and manifest.get("labels") and list(manifest["labels"]) != list(labels):
            raise DataError(f"calibration set '{path}' was drawn for labels {manifest['labels']}, but the model has "
                            f"{list(labels)}. Select a set from this run: `edgecnn calibration select RUN_DIR`.")
        index = {name: i for i, name in enumerate(manifest.get("labels", []))}
        samples = []
        for f in manifest["files"]:
            file = path / f["path"]
            if not file.is_file() or sha256_file(file) != f["sha256"]:
                raise DataError(f"calibration file '{file}' is missing or does not match its sha256 in {MANIFEST}. "
                                "Select the set again with `edgecnn calibration select`.")
            samples.append(Sample(file, index.get(f["label"], -1), f["sha256"]))
        files = [{"path": f["path"], "label": f["label"], "sha256": f["sha256"]} for f in manifest["files"]]
        name = manifest.get("name", path.name)
    else:
        found = image_files(path)
        samples = [Sample(p, -1, sha256_file(p)) for p in found]
        files = [{"path": relative(p, path), "label": None, "sha256": s.sha256}
                 for p, s in zip(found, samples)]
        name = path.name
    if not samples:
        raise DataError(f"calibration folder '{path}' has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}). Put "
                        "training images in it, or create a set with `edgecnn calibration select RUN_DIR --per-class "
                        "N --out calibration_data/NAME`.")
    info = {"name": name, "path": str(path.resolve()), "drawn": False, "count": len(samples), "files": files}
    return samples, info


def draw_from_run(run: dict, size: int, seed: int = 0) -> tuple:
    """Draw ``size`` images (stratified, about ``size / classes`` per class) from the run's train split.

    Returns ``(samples, info)`` like :func:`load_set`.
    """
    samples = run_samples(run, "train")
    labels = list(run["labels"])
    if not samples:
        raise DataError(f"run '{run.get('run_dir')}' recorded no training images to calibrate with. Pass "
                        "--calibration PATH (a folder of training images).")
    per_class = max(1, -(-int(size) // len(labels)))
    chosen = stratified(samples, len(labels), per_class, seed)
    root = Path(run.get("data", {}).get("root", "."))
    files = []
    for s in chosen:
        files.append({"path": relative(s.path, root), "label": labels[s.label], "sha256": s.sha256})
    info = {"name": f"drawn from the train split of {run.get('run_dir')}", "path": None, "drawn": True,
            "count": len(chosen), "per_class": per_class, "seed": seed, "root": str(root), "files": files}
    return chosen, info
