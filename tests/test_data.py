"""Dataset discovery, scanning, splits and loading (no TensorFlow)."""

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data.dataset import Dataset, format_summary, load_dataset
from edgecnn.data.pixels import load_images
from edgecnn.errors import DataError


def img(path: Path, seed: int, size=(24, 32), fmt=None) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, format=fmt, quality=95)
    return path


def make_folders(root: Path, counts: dict) -> Path:
    for ci, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img(root / name / f"{i:03d}.jpg", ci * 1000 + i)
    return root


def test_folders_split_stratified_and_deterministic(tmp_path):
    root = make_folders(tmp_path / "d", {"b": 20, "a": 30, "c": 10})
    d = load_dataset(root, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert d.layout == "folders" and d.labels == ["a", "b", "c"]
    assert d.class_counts() == {"train": {"a": 21, "b": 14, "c": 7},
                                "val": {"a": 6, "b": 4, "c": 2},
                                "test": {"a": 3, "b": 2, "c": 1}}
    assert d.imbalance_ratio() == pytest.approx(3.0)
    paths = {s: [x.path for x in v] for s, v in d.splits.items()}
    everything = sum(paths.values(), [])
    assert len(everything) == len(set(everything)) == 60  # disjoint and complete
    assert all(p.is_absolute() for p in everything)
    again = load_dataset(root, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert {s: [x.path for x in v] for s, v in again.splits.items()} == paths
    other = load_dataset(root, val_fraction=0.2, test_fraction=0.1, seed=4)
    assert {x.path for x in other.splits["val"]} != {x.path for x in d.splits["val"]}
    sample = d.splits["train"][0]
    assert sample.sha256 == hashlib.sha256(sample.path.read_bytes()).hexdigest()
    assert d.labels[sample.label] == sample.path.parent.name


def test_no_test_split(tmp_path):
    root = make_folders(tmp_path / "d", {"x": 5, "y": 5})
    d = load_dataset(root, test_fraction=0)
    assert set(d.splits) == {"train", "val"}
    assert "No test split: final numbers come from val." in format_summary(d)


def test_splits_layout_and_bad_files(tmp_path):
    root = tmp_path / "s"
    for split, n in (("train", 4), ("val", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                img(root / split / cls / f"{i}.jpg", len(split) * 100 + len(cls) * 10 + i)
    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    (root / "train" / "dog" / "notes.jpg").write_text("text")
    (root / "train" / ".hidden").mkdir()
    img(root / "train" / ".hidden" / "x.jpg", 1)
    img(root / "train" / "cat" / ".DS_Store.jpg", 2)
    img(root / "val" / "dog" / "png.jpg", 5, fmt="PNG")
    d = load_dataset(root)
    assert d.layout == "splits" and d.labels == ["cat", "dog"] and set(d.splits) == {"train", "val"}
    assert d.class_counts() == {"train": {"cat": 4, "dog": 4}, "val": {"cat": 2, "dog": 3}}
    assert d.skipped == [{"path": "train/cat/empty.jpg", "reason": "empty file (0 bytes)"},
                         {"path": "train/dog/notes.jpg",
                          "reason": "not an image (Pillow cannot identify the file format)"}]
    assert {"path": "val/dog/png.jpg",
            "reason": "extension .jpg but the file is PNG; kept because it decodes correctly "
                      "(rename it to .png to silence this warning)"} in d.warnings
    text = format_summary(d)
    assert "Skipped 2 file(s):" in text and "train/cat/empty.jpg: empty file (0 bytes)" in text
    assert "Kept with a warning 1 file(s):" in text and "No test split" in text


def test_json_round_trip(tmp_path):
    root = make_folders(tmp_path / "d", {"x": 6, "y": 7})
    (root / "x" / "zero.png").write_bytes(b"")
    d = load_dataset(root)
    j = json.loads(json.dumps(d.to_json()))
    assert j["splits"]["train"][0]["path"].startswith(("x/", "y/"))
    assert j["class_counts"] == d.class_counts() and j["skipped"][0]["path"] == "x/zero.png"
    back = Dataset.from_json(j)
    assert back.labels == d.labels and back.splits == d.splits and back.skipped == d.skipped
    assert back.to_json() == j


def test_load_images(tmp_path):
    root = make_folders(tmp_path / "d", {"x": 3, "y": 3})
    d = load_dataset(root, val_fraction=0.34, test_fraction=0)
    x, y = load_images(d.splits["train"], 16)
    assert x.shape == (len(d.splits["train"]), 16, 16, 3) and x.dtype == np.uint8
    assert y.dtype == np.int64 and list(y) == [s.label for s in d.splits["train"]]
    x2, _ = load_images(d.splits["train"], (8, 12), resize="bilinear")
    assert x2.shape[1:] == (8, 12, 3)


def test_hymenoptera_loads_fast(hymenoptera):
    start = time.perf_counter()
    d = load_dataset(hymenoptera)
    assert time.perf_counter() - start < 10
    assert d.layout == "splits" and d.labels == ["ants", "bees"]
    assert d.class_counts() == {"train": {"ants": 123, "bees": 121}, "val": {"ants": 70, "bees": 83}}
    assert [s["path"] for s in d.skipped] == ["train/ants/imageNotFound.gif"]


# ---- every DataError, with its exact text ----------------------------------------------------

def error_text(*args, **kw) -> str:
    with pytest.raises(DataError) as exc:
        load_dataset(*args, **kw)
    return str(exc.value)


def test_error_missing(tmp_path):
    p = tmp_path / "nope"
    assert error_text(p) == (f"data folder '{p}' does not exist. Pass the folder that holds one sub-folder "
                             "per class (DATA_DIR/<class>/*.jpg).")


def test_error_not_a_folder(tmp_path):
    p = tmp_path / "file.txt"
    p.write_text("x")
    assert error_text(p) == (f"'{p.resolve()}' is not a folder. Pass DATA_DIR, the folder that holds one "
                             "sub-folder per class, not a file.")


def test_error_no_class_folders(tmp_path):
    img(tmp_path / "a.jpg", 0)
    assert error_text(tmp_path) == (
        f"'{tmp_path.resolve()}' has no class folders. Put the images in one sub-folder per class: "
        "DATA_DIR/<class>/*.jpg, or DATA_DIR/train/<class>/ and DATA_DIR/val/<class>/ (optionally "
        "DATA_DIR/test/<class>/).")


def test_error_one_class(tmp_path):
    make_folders(tmp_path, {"ants": 5})
    assert error_text(tmp_path) == (f"'{tmp_path.resolve()}' has only one class ('ants'); a classifier needs at "
                                    "least 2. Add a folder per class next to 'ants'.")


def test_error_class_too_small(tmp_path):
    make_folders(tmp_path, {"big": 10, "small": 2})
    root = tmp_path.resolve()
    assert error_text(tmp_path) == (
        f"class 'small' has only 2 usable images in '{root / 'small'}'; a train/val/test split needs at "
        "least 3 per class. Add images to 'small', or lower test_fraction (--test-fraction 0 makes no test "
        "split).")
    d = load_dataset(tmp_path, test_fraction=0)  # two images are enough for train/val
    assert d.class_counts()["val"] == {"big": 2, "small": 1}


def test_error_no_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jpg").write_bytes(b"")
    assert error_text(tmp_path) == (
        f"'{tmp_path.resolve()}' has class folders (a, b) but no usable images (1 files skipped: b/x.jpg: "
        "empty file (0 bytes)). Supported extensions: .bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp.")


def test_error_splits_layout(tmp_path):
    make_folders(tmp_path / "train", {"a": 2, "b": 2})
    root = tmp_path.resolve()
    assert error_text(tmp_path) == (
        f"'{root}' has a train/ folder but no val/ folder. Add {root / 'val'}/<class>/ folders, or put every "
        "class folder directly in DATA_DIR and edgecnn makes the split.")
    make_folders(tmp_path / "val", {"a": 1, "c": 1})
    assert error_text(tmp_path) == (
        f"'{root / 'val'}' has class folders ['c'] that '{root / 'train'}' does not have. Every class in val/ "
        "needs training images in train/<class>/; add them or remove the folders.")


def test_error_fractions(tmp_path):
    assert error_text(tmp_path, val_fraction=0.6, test_fraction=0.5) == (
        "val_fraction=0.6 and test_fraction=0.5 must each be in [0, 1) and sum to less than 1, so that train "
        "keeps some images.")
