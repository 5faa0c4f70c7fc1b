"""edgecnn audit: planted duplicates, leakage, conflicts and shortcut cues; search equals naive; CLI."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.audit import audit_dataset, failed_checks, parse_fail_on, too_good_to_be_true
from edgecnn.audit.duplicates import connected_groups, near_pairs, near_pairs_naive
from edgecnn.audit.hashing import hamming, image_hash
from edgecnn.audit.report import format_audit, render_html
from edgecnn.cli import cli
from edgecnn.errors import DataError
from edgecnn.data.synth import make_image


def write_jpeg(path: Path, rgb: np.ndarray, quality=92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    path.write_bytes(buf.tobytes())
    return path


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path))[..., ::-1]


CLASSES = ("circle", "square", "triangle")


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """splits layout, 3 classes x (12 train + 4 val), with planted copies:
    1 exact duplicate within a class, 1 near-duplicate within a class,
    2 leakage groups (one exact, one near), 1 label conflict."""
    root = tmp_path_factory.mktemp("planted") / "data"
    for ci, cls in enumerate(CLASSES):
        for split, n in (("train", 12), ("val", 4)):
            for i in range(n):
                rng = np.random.default_rng([7, ci, i, len(split)])
                write_jpeg(root / split / cls / f"{cls}_{i:02d}.jpg", make_image(cls, rng, 64))
    tr = root / "train"
    shutil.copy(tr / "circle" / "circle_00.jpg", tr / "circle" / "copy_exact.jpg")  # exact duplicate
    near = cv2.resize(read(tr / "square" / "square_01.jpg"), (56, 56), interpolation=cv2.INTER_AREA)
    write_jpeg(tr / "square" / "near_copy.jpg", near, quality=60)  # near-duplicate
    shutil.copy(tr / "triangle" / "triangle_02.jpg", root / "val" / "triangle" / "leak_exact.jpg")  # leakage
    brighter = np.clip(read(tr / "circle" / "circle_03.jpg").astype(int) + 8, 0, 255).astype(np.uint8)
    write_jpeg(root / "val" / "circle" / "leak_near.jpg", brighter)  # leakage (near)
    shutil.copy(tr / "circle" / "circle_04.jpg", tr / "square" / "conflict.jpg")  # label conflict
    return root


def kinds_of(result):
    return {f["kind"]: f for f in result["findings"]}


def test_planted_findings_exact_counts(planted):
    r = audit_dataset(planted, min_class_images=5)
    assert r["summary"] == {"leakage": 2, "label_conflicts": 1, "bad_files": 0, "exact_duplicates": 1,
                            "near_duplicates": 1, "shortcuts": 0, "imbalance": 0, "tiny_classes": 0,
                            "renamed_files": 0, "label_issues": 0}
    f = kinds_of(r)
    files = lambda item: sorted(x["path"] for x in item["files"])  # noqa: E731
    assert files(f["exact_duplicates"]["items"][0]) == ["train/circle/circle_00.jpg", "train/circle/copy_exact.jpg"]
    assert files(f["near_duplicates"]["items"][0]) == ["train/square/near_copy.jpg", "train/square/square_01.jpg"]
    assert sorted(files(i) for i in f["leakage"]["items"]) == [
        ["train/circle/circle_03.jpg", "val/circle/leak_near.jpg"],
        ["train/triangle/triangle_02.jpg", "val/triangle/leak_exact.jpg"]]
    conflict = f["label_conflicts"]["items"][0]
    assert files(conflict) == ["train/circle/circle_04.jpg", "train/square/conflict.jpg"]
    assert conflict["labels"] == ["circle", "square"] and conflict["exact"]
    assert f["leakage"]["severity"] == "error" and f["label_conflicts"]["severity"] == "error"
    assert r["usable"] == r["images"] == 3 * 16 + 5
    # the naive all-pairs search finds the same
    naive = audit_dataset(planted, min_class_images=5, naive=True)
    assert naive["pairs_found"] == r["pairs_found"] and naive["findings"] == r["findings"]
    json.dumps(r)  # JSON-safe


def test_folders_layout_leakage_uses_the_finetune_split(tmp_path):
    for ci, cls in enumerate(CLASSES[:2]):
        for i in range(10):
            write_jpeg(tmp_path / cls / f"{i}.jpg", make_image(cls, np.random.default_rng([3, ci, i]), 64))
    for k in range(4):  # four copies of one image: the split puts them in different splits
        shutil.copy(tmp_path / "circle" / "0.jpg", tmp_path / "circle" / f"copy{k}.jpg")
    from edgecnn.data.dataset import load_dataset

    ds = load_dataset(tmp_path, seed=0)
    where = {s.path.name: split for split, v in ds.splits.items() for s in v}
    copies = {where[n] for n in ["0.jpg", "copy0.jpg", "copy1.jpg", "copy2.jpg", "copy3.jpg"]}
    r = audit_dataset(tmp_path, min_class_images=5, seed=0)
    assert r["split_note"].startswith("folders layout: leakage is checked on the split finetune makes with seed=0")
    assert r["summary"]["leakage"] == (1 if len(copies) > 1 else 0)
    assert r["summary"]["exact_duplicates"] == (0 if len(copies) > 1 else 1)


def test_clean_generated_data_has_no_finding(demo_data):
    r = audit_dataset(demo_data)
    assert r["findings"] == [] and r["pairs_found"] == 0
    assert "No findings" in format_audit(r)
    assert too_good_to_be_true(1.0, r) is None


@pytest.fixture(scope="module")
def shortcut_data(tmp_path_factory) -> Path:
    """Folders layout: 'circle' all dark, 'square' all PNG, 'triangle' normal."""
    root = tmp_path_factory.mktemp("shortcut") / "data"
    for ci, cls in enumerate(CLASSES):
        for i in range(20):
            img = make_image(cls, np.random.default_rng([11, ci, i]), 64)
            if cls == "circle":
                write_jpeg(root / cls / f"{i}.jpg", (img * 0.3).astype(np.uint8))
            elif cls == "square":
                write_jpeg(root / cls / f"{i}.png", img)
            else:
                write_jpeg(root / cls / f"{i}.jpg", img)
    return root


def test_shortcuts_flagged(shortcut_data):
    r = audit_dataset(shortcut_data, min_class_images=5)
    assert set(r["summary"][k] for k in r["summary"] if k != "shortcuts") == {0}
    cues = kinds_of(r)["shortcuts"]["items"]
    assert sorted((c["class"], c["property"]) for c in cues) == [("circle", "brightness"), ("square", "format")]
    dark = next(c for c in cues if c["property"] == "brightness")
    assert dark["auc"] == 0.0 and dark["class_median"] < 0.5 * dark["rest_median"]
    assert dark["message"].startswith("class 'circle' has lower brightness (mean luma, 0-255): median ")
    png = next(c for c in cues if c["property"] == "format")
    assert png["message"] == "class 'square': 100% of its images are PNG (file format) against 0% in the other classes"
    warning = too_good_to_be_true(0.99, r)
    assert warning.startswith("val accuracy 99.0% is too good to be true: the audit found 2 shortcut cue(s) (")
    assert too_good_to_be_true(0.95, r) is None


def test_too_good_with_leakage(planted):
    r = audit_dataset(planted, min_class_images=5)
    assert too_good_to_be_true(0.985, r) == (
        "val accuracy 98.5% is too good to be true: the audit found 2 duplicate group(s) shared between splits "
        "(leakage). The model may be scoring on copies of training images or on a property other than the "
        "subject; fix the data (`edgecnn audit DATA_DIR --report`) before trusting this number.")
    assert too_good_to_be_true(0.99, None) is None


def test_imbalance_tiny_and_bad_files(tmp_path):
    for i in range(12):
        write_jpeg(tmp_path / "many" / f"{i}.jpg", make_image("circle", np.random.default_rng([5, i]), 64))
    for i in range(2):
        write_jpeg(tmp_path / "few" / f"{i}.jpg", make_image("square", np.random.default_rng([6, i]), 64))
    (tmp_path / "few" / "empty.jpg").write_bytes(b"")
    r = audit_dataset(tmp_path, min_class_images=5)
    f = kinds_of(r)
    assert f["imbalance"]["message"] == ("class imbalance 6.0:1 ('many' 12 images, 'few' 2) is over 3:1; use class "
                                         "weights or add images to the small classes")
    assert f["tiny_classes"]["message"] == "1 class(es) have fewer than 5 usable images: 'few' (2)"
    assert f["bad_files"]["items"] == [{"path": "few/empty.jpg", "label": "few", "reason": "empty file (0 bytes)"}]
    assert r["split_note"].startswith("no split could be made (class 'few' has only 2 usable images")


def test_search_equals_naive_on_random_hashes():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2 ** 63, 400, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    planted = []
    for k in range(150):  # near copies at 0-12 bits
        flips = rng.choice(64, size=int(rng.integers(0, 13)), replace=False)
        mask = np.uint64(0)
        for b in flips:
            mask |= np.uint64(1) << np.uint64(int(b))
        planted.append(base[k % 400] ^ mask)
    hashes = np.concatenate([base, np.array(planted, dtype=np.uint64)])
    for d in (0, 3, 6, 8, 12):
        fast, slow = near_pairs(hashes, d), near_pairs_naive(hashes, d)
        assert fast == slow and len(fast) > 0
        assert all(hamming(hashes[i], hashes[j]) == dist <= d for i, j, dist in fast)
    thumbs = rng.integers(0, 256, (len(hashes), 8, 8, 3), dtype=np.uint8)
    thumbs[400:] = thumbs[np.arange(150) % 400]  # planted copies share the colour thumbnail
    assert near_pairs(hashes, 8, thumbs, 0.2) == near_pairs_naive(hashes, 8, thumbs, 0.2)
    assert connected_groups(5, [(0, 1), (3, 4), (1, 0)]) == [[0, 1], [3, 4]]


def test_hash_is_robust_to_reencoding():
    img = make_image("triangle", np.random.default_rng(1), 96)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 50])
    again = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert hamming(image_hash(img), image_hash(again)) <= 6
    other = make_image("triangle", np.random.default_rng(2), 96)
    assert hamming(image_hash(img, "dhash"), image_hash(other, "dhash")) > 6


def test_fail_on_parsing():
    assert parse_fail_on("leakage,conflicts") == ["leakage", "label_conflicts"]
    assert parse_fail_on("error") == ["leakage", "label_conflicts"]
    assert parse_fail_on("duplicates") == ["exact_duplicates", "near_duplicates"]
    assert parse_fail_on(None) == []
    with pytest.raises(DataError) as exc:
        parse_fail_on("leakage,typo")
    assert str(exc.value).startswith("--fail-on: unknown finding 'typo'. Choose from: leakage, label_conflicts, ")
    assert failed_checks({"findings": [{"kind": "leakage"}]}, "conflicts,leakage") == ["leakage"]


def test_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        audit_dataset(tmp_path / "missing")
    with pytest.raises(DataError, match="unknown hash method 'md5'"):
        audit_dataset(tmp_path, hash_method="md5")


def test_html_is_self_contained(planted, tmp_path):
    r = audit_dataset(planted, min_class_images=5)
    page = render_html(r)
    assert page.startswith("<!doctype html>") and "data:image/jpeg;base64," in page
    assert "src='http" not in page and "<link" not in page and "<script" not in page
    assert "Leakage across splits (2)" in page


# ---- CLI ------------------------------------------------------------------------------------

def test_cli_help():
    out = CliRunner().invoke(cli, ["audit", "--help"])
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    assert "Check DATA_DIR before training: bad files, duplicates and leakage, imbalance, shortcut cues." in text
    assert "--fail-on KINDS" in text and "Exit status: 0, or 1 when --fail-on names a finding that is present" in text
    top = CliRunner().invoke(cli, ["--help"])
    assert "audit" in top.output and "Check DATA_DIR: bad files, duplicates, leakage" in top.output


def test_cli_text_and_fail_on(planted, tmp_path):
    runner = CliRunner()
    out = runner.invoke(cli, ["audit", str(planted), "--min-class-images", "5"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == f"Audit of {planted} (splits layout): 53 files, 53 usable, 3 classes"
    assert "Findings: 2 error(s), 1 warning(s), 1 note(s)" in lines
    assert ("[error] Leakage across splits: 2 group(s) of identical or near-identical images are in more than one "
            "split: val/test accuracy is inflated by images the model trained on") in lines
    assert "    - train/circle/circle_04.jpg [train] -> train/square/conflict.jpg [train]: identical file" in lines
    failing = runner.invoke(cli, ["audit", str(planted), "--min-class-images", "5", "--fail-on", "leakage,conflicts"])
    assert failing.exit_code == 1
    assert failing.output.splitlines()[-1] == "Failing (--fail-on): leakage, label_conflicts"
    ok = runner.invoke(cli, ["audit", str(planted), "--min-class-images", "5", "--fail-on", "bad_files", "-q"])
    assert ok.exit_code == 0 and ok.output == ""
    bad = runner.invoke(cli, ["audit", str(planted), "--fail-on", "nonsense"])
    assert bad.exit_code == 2 and bad.output.startswith("Error: --fail-on: unknown finding 'nonsense'.")
    missing = runner.invoke(cli, ["audit", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert missing.output == (f"Error: data folder '{tmp_path / 'nope'}' does not exist. Pass the folder that holds "
                              "one sub-folder per class (DATA_DIR/<class>/*.jpg).\n")


def test_cli_json_and_report(planted, tmp_path):
    out = CliRunner().invoke(cli, ["audit", str(planted), "--min-class-images", "5", "--json", "--report",
                                   "--out", str(tmp_path / "rep")])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["summary"]["leakage"] == 2 and result["failed"] == []
    assert (tmp_path / "rep" / "audit.html").read_text().startswith("<!doctype html>")
    saved = json.loads((tmp_path / "rep" / "audit.json").read_text())
    assert saved["summary"] == result["summary"]


def test_view_hashes_are_imagehash_bits_and_the_view_search_equals_naive():
    import imagehash
    from PIL import Image

    from edgecnn.audit.hashing import _pack, hashes_of
    from edgecnn.audit.views import VIEWS, describe_view, near_view_pairs

    rng = np.random.default_rng(3)
    gray = rng.integers(0, 256, (20, 32, 32), dtype=np.uint8)
    assert hashes_of(gray).tolist() == [_pack(imagehash.phash(Image.fromarray(g)).hash) for g in gray]
    small = rng.integers(0, 256, (20, 8, 9), dtype=np.uint8)
    assert hashes_of(small, "dhash").tolist() == [_pack(imagehash.dhash(Image.fromarray(g)).hash) for g in small]
    with pytest.raises(ValueError, match=r"phash reads \(32, 32\) thumbnails"):
        hashes_of(small)
    views = rng.integers(0, 2 ** 63, (300, len(VIEWS)), dtype=np.int64).astype(np.uint64)
    views[150:, 0] = views[:150, 5] ^ np.uint64(0b1011)  # plain hashes 3 bits from another image's view 5
    fast, slow = near_view_pairs(views, None, 6, None), near_view_pairs(views, None, 6, None, naive=True)
    assert fast == slow and [(i, j, d, k, h) for i, j, d, k, h in fast[:1]] == [(0, 150, 3, 5, 0)]
    assert describe_view(0) == "image" and describe_view(1) == "mirrored" and describe_view(5) == "mirrored, crop 8%"


def test_crowded_hashes_fall_back_to_comparing_all_and_find_the_same_pairs():
    from edgecnn.audit import duplicates

    rng = np.random.default_rng(5)
    base = np.uint64(rng.integers(0, 2 ** 63))
    masks = [sum(1 << int(b) for b in rng.choice(64, size=int(rng.integers(0, 5)), replace=False)) for _ in range(300)]
    hashes = np.asarray([base ^ np.uint64(m) for m in masks], dtype=np.uint64)  # all within 8 bits of each other
    tables_share = duplicates.NAIVE_SHARE
    assert near_pairs(hashes, 6) == near_pairs_naive(hashes, 6)  # the fallback (crowded)
    duplicates.NAIVE_SHARE = float("inf")  # force the chunk look-ups on the same hashes
    try:
        assert near_pairs(hashes, 6) == near_pairs_naive(hashes, 6)
    finally:
        duplicates.NAIVE_SHARE = tables_share
