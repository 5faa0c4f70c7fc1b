"""The checks of an audit, one function each, from the scanned records to findings with severity.

Every check takes the records of the usable (or all) files and the class names and returns a list
of findings (``{"kind", "severity", "count", "message", "items"}``); ``audit_dataset`` in
:mod:`edgecnn.audit.pipeline` runs them in order.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np

from edgecnn.audit.duplicates import classify_groups, connected_groups, exact_pairs
from edgecnn.audit.images import ImageRecord
from edgecnn.audit.shortcuts import find_shortcuts
from edgecnn.audit.transform import aligned_thumb_distance, describe_pair
from edgecnn.audit.views import VIEWS, describe_view, near_view_pairs

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
    "label_issues": "warning",
}
MAX_PAIRS_DESCRIBED = 12  # per group: a folder of 50 copies of one photo needs no 1225 descriptions
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


def search_duplicates(good: Sequence[ImageRecord], max_distance: int, thumb_tolerance, naive: bool,
                      method: str = "hash", features=None, min_similarity: float = 0.9):
    """``(pairs, groups)``: near-duplicate pairs ``{"i", "j", ...evidence}`` and the groups they and the
    exact copies (same sha256) make, as indices into ``good``. ``method`` ``hash``: the views of
    :mod:`edgecnn.audit.views`; ``embedding``: cosine similarity of ``features`` (one row per image)."""
    if method == "embedding":
        from edgecnn.audit.embeddings import similar_pairs

        pairs = [{"i": i, "j": j, "similarity": sim} for i, j, sim in similar_pairs(features, min_similarity)]
    else:
        views = np.stack([r.views for r in good]) if good else np.empty((0, 1), np.uint64)
        thumbs = np.stack([r.view_thumbs for r in good]) if good else None

        def recheck(query, holder, k):
            return aligned_thumb_distance(good[holder], good[query], VIEWS[k][0], VIEWS[k][1])

        pairs = [{"i": i, "j": j, "hash_distance": d, "view": describe_view(k), "view_of": good[h].rel,
                  "_hint": {"container": 0 if h == i else 1, "mirrored": VIEWS[k][1], "crop": VIEWS[k][0]}}
                 for i, j, d, k, h in near_view_pairs(views, thumbs, max_distance, thumb_tolerance, naive, recheck)]
    edges = [(p["i"], p["j"]) for p in pairs] + exact_pairs([r.sha256 for r in good])
    return pairs, connected_groups(len(good), edges)


def _pair_item(good, i, j, evidence: dict) -> dict:
    """One pair of a group: the transformation found (``how``) and the search's evidence."""
    item = describe_pair(good[i], good[j], evidence.get("_hint"))
    item.update({k: v for k, v in evidence.items() if k not in ("i", "j", "_hint")})
    return item


def _group_item(group, good, names, evidence) -> dict:
    members = [{"path": good[k].rel, "label": names[good[k].label], "split": good[k].split,
                "sha256": good[k].sha256} for k in group]
    in_group = set(group)
    edges = [key for key in evidence if key[0] in in_group and key[1] in in_group]
    pairs = [_pair_item(good, i, j, evidence[(i, j)]) for i, j in sorted(edges)[:MAX_PAIRS_DESCRIBED]]
    dists = [evidence[key].get("hash_distance") for key in edges]
    dists = [d for d in dists if d is not None]
    return {"files": members, "exact": len({good[k].sha256 for k in group}) == 1,
            "labels": sorted({names[good[k].label] for k in group}),
            "splits": sorted({good[k].split for k in group}),
            "max_hash_distance": max(dists) if dists else 0, "pairs": pairs}


def duplicate_findings(good: Sequence[ImageRecord], pairs, groups, names: Sequence[str]) -> List[dict]:
    """Leakage, label conflicts, exact and near-duplicates from the groups of :func:`search_duplicates`."""
    evidence = {(p["i"], p["j"]): p for p in pairs}
    for a, b in exact_pairs([r.sha256 for r in good]):
        evidence.setdefault((min(a, b), max(a, b)), {"i": a, "j": b})
    classified = classify_groups(groups, [r.label for r in good], [r.split for r in good],
                                 [r.sha256 for r in good])
    findings = []
    for kind, text in _GROUP_TEXTS.items():
        items = [_group_item(g, good, names, evidence) for g in classified[kind]]
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


def label_findings(good: Sequence[ImageRecord], features, names: Sequence[str], seed: int = 0) -> List[dict]:
    """Likely label errors (cleanlab's confident learning on cross-validated predictions)."""
    from edgecnn.audit.labels import find_label_errors

    items = find_label_errors(good, features, names, seed)
    if not items:
        return []
    return [make_finding("label_issues", f"{len(items)} image(s) look like another class than their label: check "
                         "them, and fix the label or remove the image", items)]
