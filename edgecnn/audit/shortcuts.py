"""Shortcut cues: properties other than the subject that tell one class from the others.

A model learns whatever separates the classes. When one class is all dark, all PNG, all
portrait or all 640x480, a classifier can score well on val without looking at the subject, and
fail on the board. For every class and property this compares the class with the rest:

* numbers (size, aspect ratio, brightness, colour): the AUC of the property alone as a
  class-vs-rest score (1.0 or 0.0: one threshold separates the class perfectly; 0.5: no clue),
  plus a minimum size of effect, so a tiny but consistent difference is not reported;
* categories (format, EXIF orientation, exact dimensions, grayscale): the share of the class
  with a value against the share of the other classes.
"""

from typing import Dict, List, Sequence

import numpy as np

# property -> (description, unit, minimum difference of medians that matters)
NUMERIC = {
    "size": ("image size (square root of width x height)", "px", 0.15),  # relative difference
    "aspect": ("aspect ratio (width / height)", "", 0.1),
    "brightness": ("brightness (mean luma, 0-255)", "", 15.0),
    "colour_a": ("colour: green (-) to red (+) (CIELAB a*)", "", 6.0),
    "colour_b": ("colour: blue (-) to yellow (+) (CIELAB b*)", "", 6.0),
}
CATEGORICAL = {
    "format": "file format",
    "orientation": "EXIF orientation",
    "dimensions": "exact dimensions",
    "grayscale": "grayscale images",
}
RELATIVE = {"size"}


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC: P(a class value > a rest value), ties counted half."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    values = np.concatenate([pos, neg])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_vals = values[order]
    # average ranks for ties
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def _fmt(value: float, unit: str) -> str:
    return f"{value:.3g}{(' ' + unit) if unit else ''}"


def find_shortcuts(features: Dict[str, Sequence], labels: Sequence[int], names: Sequence[str],
                   min_auc: float = 0.9, min_share_gap: float = 0.6, min_images: int = 5) -> List[dict]:
    """Per-class outliers in image properties, each with the numbers behind it.

    Args:
        features: property name -> one value per usable image (the keys of NUMERIC and CATEGORICAL).
        labels: label index per image.
        names: class names.
        min_auc: report a number when its class-vs-rest AUC is >= this (or <= 1 - this).
        min_share_gap: report a category value whose share in the class exceeds its share in the
            other classes by at least this (e.g. 100% PNG against 0%: gap 1.0). Above 0.5, so that with
            three classes the two normal ones are not reported as mirror images of the odd one.
        min_images: classes (and rests) smaller than this are not judged.

    Returns:
        A list of cues: ``{"class", "property", "kind", "message", ...numbers}``. With two classes a
        cue is reported once (the other class is its mirror image).
    """
    labels = np.asarray(labels)
    cues: List[dict] = []
    seen_pairs = set()
    for ci, name in enumerate(names):
        mask = labels == ci
        n_in, n_out = int(mask.sum()), int((~mask).sum())
        if n_in < min_images or n_out < min_images:
            continue
        for prop, (desc, unit, min_effect) in NUMERIC.items():
            if prop not in features:
                continue
            values = np.asarray(features[prop], float)
            a = auc(values[mask], values[~mask])
            med_in, med_out = float(np.median(values[mask])), float(np.median(values[~mask]))
            effect = abs(med_in - med_out) / max(abs(med_out), 1e-9) if prop in RELATIVE else abs(med_in - med_out)
            if max(a, 1 - a) < min_auc or effect < min_effect:
                continue
            if len(names) == 2 and prop in seen_pairs:
                continue
            seen_pairs.add(prop)
            direction = "higher" if med_in > med_out else "lower"
            cues.append({
                # auc: P(class value > rest value); separation_auc: how well one threshold separates them,
                # the figure the message (and the report's table) gives
                "class": name, "property": prop, "kind": "number", "auc": round(a, 3),
                "separation_auc": round(max(a, 1 - a), 3),
                "class_median": round(med_in, 3), "rest_median": round(med_out, 3),
                "class_range": [round(float(values[mask].min()), 3), round(float(values[mask].max()), 3)],
                "rest_range": [round(float(values[~mask].min()), 3), round(float(values[~mask].max()), 3)],
                "class_images": n_in, "rest_images": n_out,
                "message": (f"class '{name}' has {direction} {desc}: median {_fmt(med_in, unit)} against "
                            f"{_fmt(med_out, unit)} in the other classes; this number alone separates "
                            f"'{name}' from the rest with AUC {max(a, 1 - a):.2f}"),
            })
        for prop, desc in CATEGORICAL.items():
            if prop not in features:
                continue
            values = np.asarray([str(v) for v in features[prop]])
            for value in sorted(set(values[mask].tolist())):
                share_in = float((values[mask] == value).mean())
                share_out = float((values[~mask] == value).mean())
                if share_in - share_out < min_share_gap:
                    continue
                key = (prop, "pair")
                if len(names) == 2 and key in seen_pairs:
                    continue
                seen_pairs.add(key)
                what = {"grayscale": "grayscale" if value == "True" else "in colour",
                        "orientation": f"EXIF orientation {value}"}.get(prop, value)
                cues.append({
                    "class": name, "property": prop, "kind": "category", "value": value,
                    "class_share": round(share_in, 3), "rest_share": round(share_out, 3),
                    "class_images": n_in, "rest_images": n_out,
                    "message": (f"class '{name}': {share_in:.0%} of its images are {what} ({desc}) against "
                                f"{share_out:.0%} in the other classes"),
                })
    return cues
