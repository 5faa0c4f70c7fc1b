"""Speed of ``edgecnn audit`` and equality of its near-duplicate search with the naive all-pairs one.

Datasets:
* hymenoptera from ``SHARED/datasets/hymenoptera`` (398 real photos, skipped when absent);
* a generated set of ``--synthetic`` images (default 3000 at 64 px, 4 classes, folders layout)
  with planted near-duplicates: re-encoded, resized or brightened copies of originals, some in the
  same class and some in another class (label conflicts).

Each dataset is audited twice: with the multi-index search and with the naive all-pairs search; the
pairs must be identical. A third measure times the pair search alone on ``--hashes`` random hashes
with planted neighbours, where the quadratic cost of the naive search shows.

Prints progress on stderr and one JSON object as the last line of stdout::

    {"images", "audit_img_per_s", "naive_img_per_s", "pairs_found", "naive_pairs_found", "same_pairs",
     "datasets": [...], "search_only": {...}}

(top-level numbers are totals over the datasets). Goal: same pairs as naive, >= 200 images/s.

Since issue 15 each image is hashed in 24 views (its mirror image and crops, edgecnn/audit/views.py)
at a 12-bit threshold; ``benchmarks/audit_recall.py`` measures what that finds. On two free cores
(nothing else running, 2026-12-02): 279.9 images/s over both sets (hymenoptera 250.2, generated
284.4), the same 281 pairs as the naive search, all 152 planted copies found. The same machine at
load 6.5-7 (other benchmarks running) gave 132.8 images/s: decoding dominates, so the figure follows
the free CPU.

Usage: ``python benchmarks/audit_speed.py [--shared DIR] [--synthetic 3000] [--size 64]``
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


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_synthetic(out: Path, total: int, size: int, seed: int = 0):
    """Generated images plus planted near-copies; returns the list of planted (original, copy) paths."""
    import cv2

    from edgecnn.data.synth import make_demo_dataset

    classes = ("circle", "square", "triangle", "stripes")
    planted_n = max(4, total // 20)
    per_class = (total - planted_n) // len(classes)
    make_demo_dataset(out, classes=classes, per_class=per_class, size=size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    planted = []
    for k in range(total - per_class * len(classes)):
        ci = int(rng.integers(len(classes)))
        i = int(rng.integers(per_class))
        src = out / classes[ci] / f"{classes[ci]}_{i:04d}.jpg"
        img = cv2.imread(str(src))
        edit = k % 3
        if edit == 0:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 55])
        elif edit == 1:
            small = cv2.resize(img, (size * 3 // 4, size * 3 // 4), interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
        else:
            bright = np.clip(img.astype(np.int16) + 12, 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", bright, [cv2.IMWRITE_JPEG_QUALITY, 90])
        # one copy in five goes to another class: a label conflict
        cj = (ci + 1) % len(classes) if k % 5 == 0 else ci
        dst = out / classes[cj] / f"planted_{k:04d}.jpg"
        dst.write_bytes(buf.tobytes())
        planted.append((src.relative_to(out).as_posix(), dst.relative_to(out).as_posix()))
    return planted


def pair_set(result):
    """Pairs of relative paths in the same duplicate group."""
    pairs = set()
    for f in result["findings"]:
        for item in f["items"]:
            if "files" in item:
                paths = sorted(x["path"] for x in item["files"])
                pairs.update((a, b) for n, a in enumerate(paths) for b in paths[n + 1:])
    return pairs


def bench_dataset(name, path, planted=None):
    from edgecnn.audit import audit_dataset

    audit_dataset(path)  # warm caches (file system, imports)
    t = time.perf_counter()
    fast = audit_dataset(path)
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    naive = audit_dataset(path, naive=True)
    naive_s = time.perf_counter() - t
    same = fast["findings"] == naive["findings"] and fast["pairs_found"] == naive["pairs_found"]
    row = {"name": name, "images": fast["images"], "audit_s": round(fast_s, 3), "naive_s": round(naive_s, 3),
           "audit_img_per_s": round(fast["images"] / fast_s, 1), "naive_img_per_s": round(naive["images"] / naive_s, 1),
           "search_s": fast["timings"]["search_s"], "naive_search_s": naive["timings"]["search_s"],
           "pairs_found": fast["pairs_found"], "naive_pairs_found": naive["pairs_found"], "same_pairs": same,
           "summary": {k: v for k, v in fast["summary"].items() if v}}
    if planted is not None:
        found = pair_set(fast)
        row["planted"] = len(planted)
        row["planted_found"] = sum(1 for a, b in planted if tuple(sorted((a, b))) in found)
    log(f"{name}: {row}")
    return row


def bench_search_only(n: int, seed: int = 0):
    from edgecnn.audit.duplicates import near_pairs, near_pairs_naive

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2 ** 62, n, dtype=np.int64).astype(np.uint64) * np.uint64(3)
    copies = base[: n // 20].copy()
    for k in range(len(copies)):
        for b in rng.choice(64, size=int(rng.integers(0, 7)), replace=False):
            copies[k] ^= np.uint64(1) << np.uint64(int(b))
    hashes = np.concatenate([base, copies])
    t = time.perf_counter()
    fast = near_pairs(hashes, 8)
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    slow = near_pairs_naive(hashes, 8)
    slow_s = time.perf_counter() - t
    row = {"hashes": len(hashes), "max_distance": 8, "search_s": round(fast_s, 3), "naive_s": round(slow_s, 3),
           "pairs_found": len(fast), "naive_pairs_found": len(slow), "same_pairs": fast == slow}
    log(f"search only: {row}")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared folder (../shared)")
    parser.add_argument("--synthetic", type=int, default=3000, help="generated images (0: none)")
    parser.add_argument("--size", type=int, default=64, help="generated image size")
    parser.add_argument("--hashes", type=int, default=20000, help="random hashes for the search-only timing (0: skip)")
    args = parser.parse_args(argv)

    rows = []
    hym = Path(args.shared) / "datasets" / "hymenoptera"
    if hym.is_dir():
        rows.append(bench_dataset("hymenoptera", hym))
    else:
        log(f"skipping hymenoptera: {hym} not found")
    tmp = Path(tempfile.mkdtemp(prefix="edgecnn_audit_bench_"))
    try:
        if args.synthetic:
            t = time.perf_counter()
            planted = make_synthetic(tmp / "data", args.synthetic, args.size)
            log(f"generated {args.synthetic} images in {time.perf_counter() - t:.1f} s")
            rows.append(bench_dataset(f"synthetic_{args.synthetic}x{args.size}", tmp / "data", planted))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    search_only = bench_search_only(args.hashes) if args.hashes else None

    images = sum(r["images"] for r in rows)
    result = {
        "images": images,
        "audit_img_per_s": round(images / sum(r["audit_s"] for r in rows), 1) if rows else None,
        "naive_img_per_s": round(images / sum(r["naive_s"] for r in rows), 1) if rows else None,
        "pairs_found": sum(r["pairs_found"] for r in rows),
        "naive_pairs_found": sum(r["naive_pairs_found"] for r in rows),
        "same_pairs": all(r["same_pairs"] for r in rows) and (search_only is None or search_only["same_pairs"]),
        "datasets": rows,
        "search_only": search_only,
    }
    print(json.dumps(result))
    return 0 if result["same_pairs"] else 1


if __name__ == "__main__":
    sys.exit(main())
