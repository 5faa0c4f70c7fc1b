"""The audit finds edited copies of real photos (hymenoptera) and says what was done to each:
every transformation of issue 15 planted once across splits, plus a mirrored copy in the other
class (a label conflict) and a cropped copy in the same class and split (a near-duplicate)."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from edgecnn.audit import audit_dataset
from edgecnn.audit.report import format_audit, render_html


def _crop(img, l, t, r, b):
    h, w = img.shape[:2]
    return img[round(t * h):h - round(b * h), round(l * w):w - round(r * w)]


def _enhance(img, kind, factor):
    return np.asarray(getattr(ImageEnhance, kind)(Image.fromarray(img)).enhance(factor))


# name -> (edit, suffix, JPEG quality, a check of the pair the audit describes)
PLANTS = {
    "mirrored": (lambda im: im[:, ::-1], ".jpg", 92, lambda p: p["how"] == "mirrored"),
    "cropped 6% per side": (lambda im: _crop(im, .06, .06, .06, .06), ".jpg", 92,
                            lambda p: p["how"].startswith("cropped ") and 0.04 <= np.mean(p["crop"]) <= 0.08),
    "cropped 10% off the left": (lambda im: _crop(im, .1, 0, 0, 0), ".jpg", 92,
                                 lambda p: p["how"].startswith("cropped left ") and 0.07 <= p["crop"][0] <= 0.13),
    "mirrored and cropped": (lambda im: _crop(im[:, ::-1], .05, .03, .07, .04), ".jpg", 92,
                             lambda p: p["how"].startswith("mirrored, cropped") and p["mirrored"]),
    "brighter": (lambda im: _enhance(im, "Brightness", 1.3), ".jpg", 92, lambda p: "brighter" in p["how"]),
    "darker": (lambda im: _enhance(im, "Brightness", 0.7), ".jpg", 92, lambda p: "darker" in p["how"]),
    "more contrast": (lambda im: _enhance(im, "Contrast", 1.4), ".jpg", 92, lambda p: "more contrast" in p["how"]),
    "less contrast": (lambda im: _enhance(im, "Contrast", 0.6), ".jpg", 92, lambda p: "less contrast" in p["how"]),
    "rescaled to 50%": (lambda im: cv2.resize(im, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), ".jpg", 92,
                        lambda p: "resized to 50%" in p["how"]),
    "JPEG quality 30": (lambda im: im, ".jpg", 30, lambda p: p["how"] == "re-encoded"),
    "saved as PNG": (lambda im: im, ".png", None, lambda p: p["how"] == "saved as PNG"),
}


def _write(path: Path, rgb: np.ndarray, quality) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality else []
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]), params)
    path.write_bytes(buf.tobytes())


@pytest.fixture(scope="module")
def edited(hymenoptera, tmp_path_factory):
    """``(root, planted)``: 14 train photos per class, 6 val photos per class (distinct photos: no
    finding may name them), and the copies; ``planted`` maps a name to (original, copy)."""
    root = tmp_path_factory.mktemp("edited") / "data"
    photos = {}
    for split, n in (("train", 14), ("val", 6)):
        for cls in ("ants", "bees"):
            files = sorted((hymenoptera / split / cls).glob("*.jpg"))[:n]
            (root / split / cls).mkdir(parents=True)
            for f in files:
                shutil.copy(f, root / split / cls / f.name)
            photos[(split, cls)] = [f"{split}/{cls}/{f.name}" for f in files]
    sources = photos[("train", "ants")] + photos[("train", "bees")]
    planted = {}
    for k, (name, (edit, suffix, quality, _)) in enumerate(PLANTS.items()):
        src = sources[k]
        rgb = cv2.imread(str(root / src))[..., ::-1]
        copy = f"val/{src.split('/')[1]}/copy_{k:02d}{suffix}"
        _write(root / copy, edit(rgb), quality)
        planted[name] = (src, copy)
    conflict_src, near_src = sources[12], sources[13]  # ants, not used above
    rgb = cv2.imread(str(root / conflict_src))[..., ::-1]
    _write(root / "train/bees/conflict.jpg", rgb[:, ::-1], 92)
    rgb = cv2.imread(str(root / near_src))[..., ::-1]
    _write(root / "train/ants/near.jpg", _crop(rgb, .08, .08, .08, .08), 92)
    planted["label conflict"] = (conflict_src, "train/bees/conflict.jpg")
    planted["near-duplicate"] = (near_src, "train/ants/near.jpg")
    return root, planted


@pytest.fixture(scope="module")
def result(edited):
    return audit_dataset(edited[0], min_class_images=5)


def _pairs(result, kind):
    return {tuple(sorted((p["a"], p["b"]))): p for f in result["findings"] if f["kind"] == kind
            for item in f["items"] for p in item["pairs"]}


@pytest.mark.parametrize("name", list(PLANTS))
def test_every_planted_copy_is_leakage_with_its_transformation(result, edited, name):
    original, copy = edited[1][name]
    pair = _pairs(result, "leakage").get(tuple(sorted((original, copy))))
    assert pair is not None, f"{name}: {copy} not reported as a copy of {original}"
    assert (pair["a"], pair["b"]) == (original, copy), pair  # the larger view is named as the original
    assert PLANTS[name][3](pair), f"{name}: described as {pair['how']!r} ({pair})"


def test_conflict_near_duplicate_and_nothing_else(result, edited):
    planted = edited[1]
    conflict = _pairs(result, "label_conflicts")[tuple(sorted(planted["label conflict"]))]
    assert conflict["how"] == "mirrored"
    near = _pairs(result, "near_duplicates")[tuple(sorted(planted["near-duplicate"]))]
    assert near["how"] == "cropped 8%" or near["how"].startswith("cropped 7%") or near["how"].startswith("cropped 9%")
    named = {f["path"] for f in result["findings"] if "files" in (f["items"] or [{}])[0]
             for item in f["items"] for f in item["files"]}
    assert named == {p for pair in planted.values() for p in pair}  # no distinct photo is reported
    assert result["summary"]["leakage"] == len(PLANTS) and result["summary"]["label_conflicts"] == 1
    assert result["summary"]["near_duplicates"] == 1
    naive = audit_dataset(edited[0], min_class_images=5, naive=True)
    assert naive["findings"] == result["findings"]  # the multi-index search finds what all pairs find
    json.dumps(result)


def test_the_report_shows_each_pair_with_its_transformation(result, edited):
    original, copy = edited[1]["mirrored"]
    text = format_audit(result, max_listed=20)
    assert f"    - {original} [train] -> {copy} [val]: mirrored" in text.splitlines()
    page = render_html(result)
    assert page.count("<div class='pair'>") == len(PLANTS) + 2
    assert "<b>mirrored</b>" in page and "<b>saved as PNG</b>" in page and "hash distance &lt;=" not in page
    assert (f"hash 0 of 64 bits from the mirrored view of {original}" in page
            or f"hash 0 of 64 bits from the mirrored view of {copy}" in page)
