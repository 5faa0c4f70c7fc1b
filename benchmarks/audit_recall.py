"""Recall and precision of ``edgecnn audit``'s near-duplicate search on edited copies of real photos.

Builds a splits-layout dataset from hymenoptera (``SHARED/datasets/hymenoptera``): ``train/`` is its
train folder as it is; ``val/`` holds its own val photos (distinct photos of the same classes: the
negatives) and edited copies of train photos, ``--per-config`` of each transformation at each
strength below, each from a different train photo, under a new name (one copy in six goes to the
other class: a label conflict as well as leakage). A pair the audit reports is true when both images
come from the same photo.

Transformations (strengths): mirrored; cropped 3, 6 and 10% per side, a random 0-10% off each side,
10% off one side; mirrored and cropped (random 0-8% per side); brightness x0.7 and x1.3; contrast
x0.7 and x1.4; rescaled to 50% and 25% and 150%; re-encoded as JPEG quality 30 and 60, saved as PNG.

Prints progress on stderr and one JSON object as the last line of stdout::

    {"default_method", "images", "planted", "goals", "goals_met",
     "methods": {"hash": {"recall": {transformation: r}, "recall_by_strength", "described", "precision",
                          "pairs_reported", "false_pairs", "img_per_s", "audit_s"}, "embedding": {...}}}

``described``: the share of found pairs whose transformation the report names ("mirrored", "cropped",
"brighter"...). Goals (the hash method, the default): recall >= 0.95 for every transformation,
precision >= 0.95, >= 200 images/s. ``--methods hash,embedding`` also measures the embedding method
with ``--weights`` (default: the MobileNet v1 0.5/160 file in SHARED/models/pretrained).

Usage: ``python benchmarks/audit_recall.py [--shared DIR] [--per-config 12] [--methods hash,embedding]``
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"recall_min": 0.95, "precision_min": 0.95, "img_per_s_min": 200.0}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _crop(img, l, t, r, b):
    h, w = img.shape[:2]
    return img[round(t * h):h - round(b * h), round(l * w):w - round(r * w)]


def _enhance(img, kind, factor):
    from PIL import Image, ImageEnhance

    return np.asarray(getattr(ImageEnhance, kind)(Image.fromarray(img)).enhance(factor))


def _resize(img, factor):
    import cv2

    h, w = img.shape[:2]
    return cv2.resize(img, (max(8, round(w * factor)), max(8, round(h * factor))),
                      interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def configs(rng):
    """``(transformation, strength, edit(rgb) -> rgb, file suffix, JPEG quality, word the report should use)``."""
    side = ("left", "top", "right", "bottom")
    one_side = lambda img: _crop(img, *np.eye(4)[rng.integers(4)] * 0.10)  # noqa: E731
    return [
        ("mirrored", "mirrored", lambda img: img[:, ::-1], ".jpg", 92, "mirrored"),
        ("cropped", "3% per side", lambda img: _crop(img, .03, .03, .03, .03), ".jpg", 92, "cropped"),
        ("cropped", "6% per side", lambda img: _crop(img, .06, .06, .06, .06), ".jpg", 92, "cropped"),
        ("cropped", "10% per side", lambda img: _crop(img, .1, .1, .1, .1), ".jpg", 92, "cropped"),
        ("cropped", "0-10% off each side", lambda img: _crop(img, *rng.uniform(0, .1, 4)), ".jpg", 92, "cropped"),
        ("cropped", f"10% off one side ({'/'.join(side)})", one_side, ".jpg", 92, "cropped"),
        ("mirrored and cropped", "0-8% per side", lambda img: _crop(img[:, ::-1], *rng.uniform(0, .08, 4)), ".jpg",
         92, "mirrored"),
        ("brightness", "x0.7", lambda img: _enhance(img, "Brightness", 0.7), ".jpg", 92, "darker"),
        ("brightness", "x1.3", lambda img: _enhance(img, "Brightness", 1.3), ".jpg", 92, "brighter"),
        ("contrast", "x0.7", lambda img: _enhance(img, "Contrast", 0.7), ".jpg", 92, "less contrast"),
        ("contrast", "x1.4", lambda img: _enhance(img, "Contrast", 1.4), ".jpg", 92, "more contrast"),
        ("rescaled", "50%", lambda img: _resize(img, 0.5), ".jpg", 92, "resized"),
        ("rescaled", "25%", lambda img: _resize(img, 0.25), ".jpg", 92, "resized"),
        ("rescaled", "150%", lambda img: _resize(img, 1.5), ".jpg", 92, "resized"),
        ("re-encoded", "JPEG quality 30", lambda img: img, ".jpg", 30, None),
        ("re-encoded", "JPEG quality 60", lambda img: img, ".jpg", 60, None),
        ("re-encoded", "PNG", lambda img: img, ".png", None, "saved as PNG"),
    ]


def build(hym: Path, out: Path, per_config: int, seed: int = 0):
    """The dataset; returns ``(source of each relative path, planted [(source, copy, config index)], configs)``."""
    import cv2

    rng = np.random.default_rng(seed)
    source = {}
    for split in ("train", "val"):
        for f in sorted((hym / split).glob("*/*")):
            rel = f"{split}/{f.parent.name}/{f.name}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, out / rel)
            source[rel] = rel
    photos = sorted(r for r in source if r.startswith("train/") and r.endswith(".jpg"))
    table = configs(rng)
    order = rng.permutation(len(photos))
    if per_config * len(table) > len(photos):
        raise SystemExit(f"--per-config {per_config}: needs {per_config * len(table)} train photos, there are "
                         f"{len(photos)}")
    classes = sorted(p.name for p in (hym / "train").iterdir() if p.is_dir())
    planted = []
    for c, (name, strength, edit, suffix, quality, _word) in enumerate(table):
        for n in range(per_config):
            src = photos[order[c * per_config + n]]
            rgb = cv2.imread(str(out / src))[..., ::-1]
            copy = np.ascontiguousarray(edit(rgb))
            cls = src.split("/")[1]
            k = len(planted)
            if k % 6 == 5:
                cls = classes[(classes.index(cls) + 1) % len(classes)]
            rel = f"val/{cls}/planted_{k:04d}{suffix}"
            params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality else []
            ok, buf = cv2.imencode(suffix, copy[..., ::-1], params)
            (out / rel).write_bytes(buf.tobytes())
            source[rel] = src
            planted.append((src, rel, c))
    return source, planted, table


def reported_pairs(result):
    """``{(a, b): how}`` of every pair the audit describes (paths sorted)."""
    pairs = {}
    for f in result["findings"]:
        for item in f["items"]:
            for p in item.get("pairs", []):
                pairs[tuple(sorted((p["a"], p["b"])))] = p.get("how", "")
    return pairs


def measure(data: Path, source, planted, table, method: str, weights):
    from edgecnn.audit import audit_dataset

    kwargs = {"method": method, "weights": weights} if method == "embedding" else {"method": method}
    audit_dataset(data, **kwargs)  # warm: file cache, imports, the model graph
    t = time.perf_counter()
    result = audit_dataset(data, **kwargs)
    seconds = time.perf_counter() - t
    found = reported_pairs(result)
    true = {p for p in found if source[p[0]] == source[p[1]]}
    by_name, by_strength, described, missed = {}, {}, {}, []
    for src, copy, c in planted:
        name, strength, _, _, _, word = table[c]
        hit = tuple(sorted((src, copy))) in found
        by_name.setdefault(name, []).append(hit)
        by_strength.setdefault(f"{name}: {strength}", []).append(hit)
        if not hit:
            missed.append([src, copy, f"{name}: {strength}"])
        if hit:
            how = found[tuple(sorted((src, copy)))]
            described.setdefault(name, []).append(word is None or word in how)
    share = lambda v: round(float(np.mean(v)), 3)  # noqa: E731
    row = {"recall": {k: share(v) for k, v in by_name.items()},
           "recall_by_strength": {k: share(v) for k, v in by_strength.items()},
           "described": {k: share(v) for k, v in described.items()},
           "precision": round(len(true) / len(found), 3) if found else 1.0,
           "pairs_reported": len(found), "false_pairs": sorted(set(found) - true)[:10],
           "missed": missed[:10],
           "images": result["images"], "audit_s": round(seconds, 2), "timings": result["timings"],
           "img_per_s": round(result["images"] / seconds, 1)}
    log(f"{method}: {json.dumps(row)}")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared folder (../shared)")
    parser.add_argument("--per-config", type=int, default=12, help="copies per transformation and strength")
    parser.add_argument("--methods", default="hash", help="comma-separated: hash, embedding")
    parser.add_argument("--weights", default=None, help="the base for --methods embedding (default: SHARED's "
                        "mobilenet_v1_0.5_160_imagenet_notop.h5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    hym = shared / "datasets" / "hymenoptera"
    if not hym.is_dir():
        log(f"{hym} not found: this benchmark needs the real photos")
        return 2
    weights = args.weights or str(shared / "models" / "pretrained" / "mobilenet_v1_0.5_160_imagenet_notop.h5")
    tmp = Path(tempfile.mkdtemp(prefix="edgecnn_audit_recall_"))
    try:
        source, planted, table = build(hym, tmp / "data", args.per_config, args.seed)
        log(f"planted {len(planted)} copies of train photos into val ({len(source)} images)")
        methods = {m.strip(): measure(tmp / "data", source, planted, table, m.strip(), weights)
                   for m in args.methods.split(",") if m.strip()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    default = methods.get("hash")
    met = None
    if default:
        met = (min(default["recall"].values()) >= GOALS["recall_min"] and default["precision"] >= GOALS["precision_min"]
               and default["img_per_s"] >= GOALS["img_per_s_min"])
    print(json.dumps({"default_method": "hash", "images": len(source), "planted": len(planted), "goals": GOALS,
                      "goals_met": met, "methods": methods}))
    return 0 if met is not False else 1


if __name__ == "__main__":
    sys.exit(main())
