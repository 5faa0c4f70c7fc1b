"""The checks of an audit, one function each, from the scanned records to findings with severity.

Every check takes the records of the usable (or all) files and the class names and returns a list
of findings (``{"kind", "severity", "count", "message", "items"}``); ``audit_dataset`` in
:mod:`edgecnn.audit.pipeline` runs them in order.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np

from edgecnn.audit.duplicates import classify_groups, connected_groups, exact_pairs, near_pairs, near_pairs_naive
from edgecnn.audit.images import ImageRecord
from edgecnn.audit.shortcuts import find_shortcuts

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
_GROUP_TEXTS = {
    "leakage": "group(s) of identical or near-identical images are in more than one split: val/test "
               "accuracy is inflated by images the model trained on",
    "label_conflicts": "group(s) of identical or near-identical images carry different labels",
    "exact_duplicates": "group(s) of byte-identical files within one class and split",
    "near_duplicates": "group(s) of near-identical images within one class and split",
}


def make_finding(kind: str, message: str, items: list, severity: Optional[str] = None) -> dict:
    """A finding of ``kind`` (severity from ``KINDS`` unless given)."""
    return {"kind": kind, "severity": severity or KINDS[kind], "count": len(items), "message": message,
            "items": items}


def sort_findings(findings: List[dict]) -> List[dict]:
    """Errors first, then warnings, then notes; within a severity in the order of ``KINDS``."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f["severity"]), list(KINDS).index(f["kind"])))


def file_findings(records: Sequence[ImageRecord], names: Sequence[str]) -> List[dict]:
    """Bad files (skipped by finetune) and renamed files (an extension that is not their format, kept)."""
    findings = []
    bad = [{"path": r.rel, "label": names[r.label], "reason": r.reason} for r in records if not r.ok]
    if bad:
        findings.append(make_finding("bad_files", f"{len(bad)} file(s) cannot be used and are skipped by finetune",
                                     bad))
    renamed = [{"path": r.rel, "label": names[r.label], "reason": r.reason} for r in records if r.ok and r.reason]
    if renamed:
        findings.append(make_finding("renamed_files", f"{len(renamed)} file(s) have an extension that does not "
                                     "match their format (kept)", renamed))
    return findings


def search_duplicates(good: Sequence[ImageRecord], max_distance: int, thumb_tolerance, naive: bool):
    """``(pairs, groups)``: near-duplicate pairs ``(i, j, distance)`` and the groups they and the exact
    copies (same sha256) make, as indices into ``good``."""
    hashes = np.asarray([r.hash for r in good], dtype=np.uint64)
    thumbs = np.stack([r.thumb for r in good]) if good else np.empty((0, 8, 8, 3), np.uint8)
    search = near_pairs_naive if naive else near_pairs
    pairs = search(hashes, max_distance, thumbs, thumb_tolerance)
    groups = connected_groups(len(good), [(i, j) for i, j, _ in pairs] + exact_pairs([r.sha256 for r in good]))
    return pairs, groups


def _group_item(group, good, names, distance) -> dict:
    members = [{"path": good[k].rel, "label": names[good[k].label], "split": good[k].split,
                "sha256": good[k].sha256} for k in group]
    dists = [distance.get((a, b)) for n, a in enumerate(group) for b in group[n + 1:]]
    dists = [d for d in dists if d is not None]
    return {"files": members, "exact": len({good[k].sha256 for k in group}) == 1,
            "labels": sorted({names[good[k].label] for k in group}),
            "splits": sorted({good[k].split for k in group}),
            "max_hash_distance": max(dists) if dists else 0}


def duplicate_findings(good: Sequence[ImageRecord], pairs, groups, names: Sequence[str]) -> List[dict]:
    """Leakage, label conflicts, exact and near-duplicates from the groups of :func:`search_duplicates`."""
    distance = {(i, j): d for i, j, d in pairs}
    classified = classify_groups(groups, [r.label for r in good], [r.split for r in good],
                                 [r.sha256 for r in good])
    findings = []
    for kind, text in _GROUP_TEXTS.items():
        items = [_group_item(g, good, names, distance) for g in classified[kind]]
        if items:
            findings.append(make_finding(kind, f"{len(items)} {text}", items))
    return findings


def class_counts(good: Sequence[ImageRecord], names: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """``{split: {class: usable images}}`` (every class listed in each split that has images)."""
    counts: Dict[str, Dict[str, int]] = {}
    for r in good:
        counts.setdefault(r.split, {n: 0 for n in names})[names[r.label]] += 1
    return counts


def balance_basis(good: Sequence[ImageRecord], names: Sequence[str], layout: str, counts: dict):
    """``(basis, counts per class)`` the balance checks judge: train in the splits layout, all images
    in the folders layout (the split is finetune's to make)."""
    if layout == "folders":
        return "all", {n: sum(1 for r in good if r.label == i) for i, n in enumerate(names)}
    basis = "train" if "train" in counts else "all"
    return basis, counts.get(basis, {n: 0 for n in names})


def imbalance_ratio(base_counts: Dict[str, int]) -> float:
    """Largest over smallest class (``inf`` when a class has none)."""
    smallest, largest = min(base_counts.values()), max(base_counts.values())
    return float("inf") if smallest == 0 else largest / smallest


def balance_findings(basis: str, base_counts: Dict[str, int], min_class_images: int,
                     max_imbalance: float) -> List[dict]:
    """Class imbalance over ``max_imbalance``:1 and classes under ``min_class_images`` images."""
    findings = []
    ratio = imbalance_ratio(base_counts)
    if len(base_counts) > 1 and ratio > max_imbalance:
        big = max(base_counts, key=base_counts.get)
        small = min(base_counts, key=base_counts.get)
        findings.append(make_finding("imbalance", f"class imbalance {ratio:.1f}:1 ('{big}' {base_counts[big]} "
                                     f"images, '{small}' {base_counts[small]}) is over {max_imbalance:g}:1; use "
                                     "class weights or add images to the small classes",
                                     [{"ratio": None if ratio == float("inf") else ratio, "largest": big,
                                       "smallest": small, "counts": base_counts, "basis": basis}]))
    tiny = [{"label": n, "images": c, "basis": basis} for n, c in base_counts.items() if c < min_class_images]
    if tiny:
        findings.append(make_finding(
            "tiny_classes", f"{len(tiny)} class(es) have fewer than {min_class_images} usable "
            f"{'training ' if basis == 'train' else ''}images: " + ", ".join(f"'{t['label']}' ({t['images']})"
                                                                             for t in tiny), tiny,
            severity="error" if any(t["images"] == 0 for t in tiny) else None))
    return findings


def shortcut_findings(good: Sequence[ImageRecord], names: Sequence[str], shortcut_auc: float) -> List[dict]:
    """Shortcut cues: a property other than the subject (size, brightness, format...) that tells a class apart."""
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
    if not cues:
        return []
    return [make_finding("shortcuts", f"{len(cues)} shortcut cue(s): a property other than the subject tells a "
                         "class apart; a model may learn it instead", cues)]
