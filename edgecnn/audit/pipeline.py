"""``audit_dataset``: every check on a DATA_DIR, as one JSON-safe dict of findings with severity."""

import time
from typing import Dict, List, Optional

import numpy as np

from edgecnn.audit.duplicates import (classify_groups, connected_groups, exact_pairs, near_pairs,
                                      near_pairs_naive)
from edgecnn.audit.hashing import HASH_METHODS
from edgecnn.audit.images import ImageRecord, record_image
from edgecnn.audit.shortcuts import find_shortcuts
from edgecnn.errors import DataError
from edgecnn.data.scan import DEFAULT_MAX_PIXELS, ScanResult

SCHEMA = "edgecnn.audit/1"
SEVERITIES = ("error", "warning", "info")
# kind -> severity. Order is the order of the report.
KINDS = {
    "leakage": "error",
    "label_conflicts": "error",
    "bad_files": "warning",
    "exact_duplicates": "warning",
    "near_duplicates": "info",
    "shortcuts": "warning",
    "imbalance": "warning",
    "tiny_classes": "warning",
    "renamed_files": "info",
}
# Words accepted by --fail-on besides the kinds themselves.
FAIL_ON_ALIASES = {
    "conflicts": ["label_conflicts"],
    "duplicates": ["exact_duplicates", "near_duplicates"],
    "shortcut": ["shortcuts"],
    "bad": ["bad_files"],
    "any": list(KINDS),
}
TOO_GOOD_ACCURACY = 0.98


def _make_finding(kind: str, message: str, items: list, severity: Optional[str] = None) -> dict:
    return {"kind": kind, "severity": severity or KINDS[kind], "count": len(items), "message": message,
            "items": items}


def _file_entry(rec: ImageRecord, names) -> dict:
    return {"path": rec.rel, "label": names[rec.label], "split": rec.split, "sha256": rec.sha256}


def _scan_all(disc, hash_method, max_pixels, progress) -> List[ImageRecord]:
    from edgecnn.data.folders import _progress_map, _rel

    def work(job):
        split, label, path = job
        return record_image(path, _rel(path, disc.root), split, label, hash_method, max_pixels)

    return _progress_map(work, disc.files, progress, "Auditing images")


def _assign_splits(disc, records, val_fraction, test_fraction, seed):
    """Give every usable record the split finetune would use; returns (splits per record, note)."""
    from edgecnn.data.dataset import assemble

    if disc.layout == "splits":
        return [r.split for r in records], None
    results = [(ScanResult(r.path, r.ok, r.reason, r.format, r.width, r.height, r.mode), r.sha256) for r in records]
    try:
        dataset = assemble(disc, results, val_fraction, test_fraction, seed)
    except DataError as exc:
        return ["all"] * len(records), f"no split could be made ({exc}); duplicates are checked across all images"
    where = {s.path: split for split, samples in dataset.splits.items() for s in samples}
    note = (f"folders layout: leakage is checked on the split finetune makes with seed={seed}, "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}")
    return [where.get(r.path, "all") for r in records], note


def audit_dataset(data_dir, max_distance: int = 8, hash_method: str = "phash", thumb_tolerance: float = 0.2,
                  val_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 0,
                  max_pixels: int = DEFAULT_MAX_PIXELS, min_class_images: int = 20,
                  max_imbalance: float = 3.0, shortcut_auc: float = 0.9, naive: bool = False,
                  progress: bool = False) -> dict:
    """Audit ``data_dir``: bad files, duplicates, leakage, label conflicts, imbalance, shortcut cues.

    Args:
        data_dir: DATA_DIR in the folders or splits layout (as for ``edgecnn finetune``).
        max_distance: near-duplicate threshold in bits of the 64-bit perceptual hash (0 = same hash).
        hash_method: ``phash`` (DCT, the default; robust to re-encoding, resizing, brightness) or
            ``dhash``.
        thumb_tolerance: near-duplicates must also have 8x8 colour thumbnails (normalised for
            brightness and contrast) within this mean absolute difference, in standard deviations;
            None turns the check off.
        val_fraction, test_fraction, seed: the split finetune makes in the folders layout; leakage is
            checked on it.
        max_pixels: decompression-bomb limit, as for finetune.
        min_class_images: a class with fewer usable (training) images is reported as tiny.
        max_imbalance: a largest/smallest class ratio above this is reported.
        shortcut_auc: report a per-class property that alone separates the class with this AUC.
        naive: compare all pairs instead of the multi-index search (same pairs; for checking).
        progress: show a progress bar.

    Returns:
        A JSON-safe dict: ``findings`` (each with ``kind``, ``severity``, ``count``, ``message``,
        ``items``), ``summary`` (count per kind), ``class_counts``, ``imbalance_ratio``, ``images``,
        ``usable``, ``pairs_found``, ``settings``, ``timings``.

    Raises:
        DataError: the folder is missing, not a folder, or has no class folders.
    """
    from edgecnn.data.folders import discover

    if hash_method not in HASH_METHODS:
        raise DataError(f"unknown hash method '{hash_method}'; use one of {', '.join(HASH_METHODS)}.")
    if not 0 <= int(max_distance) <= 32:
        raise DataError(f"max_distance={max_distance} must be between 0 and 32 bits (of 64); 4-10 finds "
                        "re-encoded, resized or slightly edited copies.")
    t0 = time.perf_counter()
    disc = discover(data_dir)
    names = disc.labels
    records = _scan_all(disc, hash_method, max_pixels, progress)
    t_scan = time.perf_counter()
    splits, split_note = _assign_splits(disc, records, val_fraction, test_fraction, seed)
    for rec, split in zip(records, splits):
        rec.split = split

    good = [r for r in records if r.ok]
    findings: List[dict] = []

    # ---- bad and renamed files
    bad = [{"path": r.rel, "label": names[r.label], "reason": r.reason} for r in records if not r.ok]
    if bad:
        findings.append(_make_finding("bad_files", f"{len(bad)} file(s) cannot be used and are skipped by finetune",
                                      bad))
    renamed = [{"path": r.rel, "label": names[r.label], "reason": r.reason} for r in good if r.reason]
    if renamed:
        findings.append(_make_finding("renamed_files", f"{len(renamed)} file(s) have an extension that does not "
                                      "match their format (kept)", renamed))

    # ---- duplicates
    hashes = np.asarray([r.hash for r in good], dtype=np.uint64)
    thumbs = np.stack([r.thumb for r in good]) if good else np.empty((0, 8, 8, 3), np.uint8)
    search = near_pairs_naive if naive else near_pairs
    pairs = search(hashes, max_distance, thumbs, thumb_tolerance)
    digests = [r.sha256 for r in good]
    groups = connected_groups(len(good), [(i, j) for i, j, _ in pairs] + exact_pairs(digests))
    t_search = time.perf_counter()
    distance = {(i, j): d for i, j, d in pairs}
    classified = classify_groups(groups, [r.label for r in good], [r.split for r in good], digests)

    def group_item(group):
        members = [_file_entry(good[k], names) for k in group]
        dists = [distance.get((a, b)) for n, a in enumerate(group) for b in group[n + 1:]]
        dists = [d for d in dists if d is not None]
        return {"files": members, "exact": len({digests[k] for k in group}) == 1,
                "labels": sorted({names[good[k].label] for k in group}),
                "splits": sorted({good[k].split for k in group}),
                "max_hash_distance": max(dists) if dists else 0}

    texts = {
        "leakage": "group(s) of identical or near-identical images are in more than one split: val/test "
                   "accuracy is inflated by images the model trained on",
        "label_conflicts": "group(s) of identical or near-identical images carry different labels",
        "exact_duplicates": "group(s) of byte-identical files within one class and split",
        "near_duplicates": "group(s) of near-identical images within one class and split",
    }
    for kind in ("leakage", "label_conflicts", "exact_duplicates", "near_duplicates"):
        items = [group_item(g) for g in classified[kind]]
        if items:
            findings.append(_make_finding(kind, f"{len(items)} {texts[kind]}", items))

    # ---- class balance
    counts: Dict[str, Dict[str, int]] = {}
    for r in good:
        counts.setdefault(r.split, {n: 0 for n in names})[names[r.label]] += 1
    basis = "train" if "train" in counts else "all"
    base_counts = counts.get(basis, {n: 0 for n in names})
    if disc.layout == "folders":
        basis = "all"
        base_counts = {n: sum(1 for r in good if r.label == i) for i, n in enumerate(names)}
    smallest, largest = min(base_counts.values()), max(base_counts.values())
    ratio = float("inf") if smallest == 0 else largest / smallest
    if len(names) > 1 and ratio > max_imbalance:
        big = max(base_counts, key=base_counts.get)
        small = min(base_counts, key=base_counts.get)
        findings.append(_make_finding("imbalance", f"class imbalance {ratio:.1f}:1 ('{big}' {largest} images, "
                                      f"'{small}' {smallest}) is over {max_imbalance:g}:1; use class weights or "
                                      "add images to the small classes",
                                      [{"ratio": None if ratio == float("inf") else ratio, "largest": big, "smallest": small, "counts": base_counts,
                                        "basis": basis}]))
    tiny = [{"label": n, "images": c, "basis": basis} for n, c in base_counts.items() if c < min_class_images]
    if tiny:
        findings.append(_make_finding(
            "tiny_classes", f"{len(tiny)} class(es) have fewer than {min_class_images} usable "
            f"{'training ' if basis == 'train' else ''}images: " + ", ".join(f"'{t['label']}' ({t['images']})"
                                                                             for t in tiny), tiny,
            severity="error" if any(t["images"] == 0 for t in tiny) else None))

    # ---- shortcut cues
    feats = {
        "size": [float(np.sqrt(r.width * r.height)) for r in good],
        "aspect": [r.width / r.height for r in good],
        "brightness": [r.brightness for r in good],
        "colour_a": [r.colour_a for r in good],
        "colour_b": [r.colour_b for r in good],
        "format": [r.format for r in good],
        "orientation": [r.orientation for r in good],
        "dimensions": [f"{r.width}x{r.height}" for r in good],
        "grayscale": [r.grayscale for r in good],
    }
    cues = find_shortcuts(feats, [r.label for r in good], names, min_auc=shortcut_auc)
    if cues:
        findings.append(_make_finding("shortcuts", f"{len(cues)} shortcut cue(s): a property other than the "
                                      "subject tells a class apart; a model may learn it instead", cues))

    findings.sort(key=lambda f: (SEVERITIES.index(f["severity"]), list(KINDS).index(f["kind"])))
    t_end = time.perf_counter()
    summary = {kind: 0 for kind in KINDS}
    for f in findings:
        summary[f["kind"]] = f["count"]
    return {
        "schema": SCHEMA,
        "root": str(disc.root),
        "layout": disc.layout,
        "labels": list(names),
        "images": len(records),
        "usable": len(good),
        "split_note": split_note,
        "class_counts": counts,
        "imbalance_ratio": None if ratio == float("inf") else ratio,
        "pairs_found": len(pairs),
        "findings": findings,
        "summary": summary,
        "severity_counts": {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITIES},
        "settings": {"max_distance": int(max_distance), "hash_method": hash_method,
                     "thumb_tolerance": thumb_tolerance, "val_fraction": val_fraction,
                     "test_fraction": test_fraction, "seed": seed, "max_pixels": max_pixels,
                     "min_class_images": min_class_images, "max_imbalance": max_imbalance,
                     "shortcut_auc": shortcut_auc, "search": "naive" if naive else "multi-index"},
        "timings": {"scan_s": round(t_scan - t0, 3), "search_s": round(t_search - t_scan, 3),
                    "total_s": round(t_end - t0, 3)},
    }


def parse_fail_on(text: Optional[str]) -> List[str]:
    """Turn ``"leakage,conflicts"`` into finding kinds; severities (``error``, ``warning``) are allowed.

    Raises:
        DataError: for an unknown word, listing the choices.
    """
    if not text:
        return []
    kinds: List[str] = []
    for word in (w.strip().lower().replace("-", "_") for w in text.split(",")):
        if not word:
            continue
        if word in KINDS:
            kinds.append(word)
        elif word in FAIL_ON_ALIASES:
            kinds.extend(FAIL_ON_ALIASES[word])
        elif word in ("error", "errors", "warning", "warnings", "info"):
            level = SEVERITIES.index(word.rstrip("s"))
            kinds.extend(k for k, s in KINDS.items() if SEVERITIES.index(s) <= level)
        else:
            choices = ", ".join(list(KINDS) + list(FAIL_ON_ALIASES) + ["error", "warning", "info"])
            raise DataError(f"--fail-on: unknown finding '{word}'. Choose from: {choices}.")
    return sorted(set(kinds), key=list(KINDS).index)


def failed_checks(result: dict, fail_on) -> List[str]:
    """The kinds in ``fail_on`` (a list or a ``--fail-on`` string) that have findings in ``result``."""
    kinds = parse_fail_on(fail_on) if isinstance(fail_on, str) or fail_on is None else list(fail_on)
    present = {f["kind"] for f in result["findings"]}
    return [k for k in kinds if k in present]


def too_good_to_be_true(val_accuracy: float, audit_result: Optional[dict]) -> Optional[str]:
    """A warning when val accuracy is very high (>= 0.98) and the audit found leakage or shortcuts.

    Returns:
        The warning text, or None when there is nothing to say.
    """
    if audit_result is None or val_accuracy is None or val_accuracy < TOO_GOOD_ACCURACY:
        return None
    causes = []
    for f in audit_result.get("findings", []):
        if f["kind"] == "leakage":
            causes.append(f"{f['count']} duplicate group(s) shared between splits (leakage)")
        elif f["kind"] == "shortcuts":
            cues = "; ".join(c["message"] for c in f["items"][:2])
            causes.append(f"{f['count']} shortcut cue(s) ({cues})")
    if not causes:
        return None
    return (f"val accuracy {val_accuracy:.1%} is too good to be true: the audit found " + " and ".join(causes) +
            ". The model may be scoring on copies of training images or on a property other than the "
            "subject; fix the data (`edgecnn audit DATA_DIR --report`) before trusting this number.")
