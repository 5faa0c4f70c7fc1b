"""Compare a float model with its quantized twins: pure numpy functions of labels and probabilities.

Everything here takes integer labels and ``N x C`` probability arrays (already dequantized), so it
is tested with hand-made arrays and reused by ``edgecnn evaluate``, the remedy loop and the
benchmarks. No TensorFlow.

Conventions:

* A *drop* is ``reference - other`` in percentage points (pp): positive means the other model is
  worse. The reference is the float Keras model.
* The per-class drop is the drop of the class's recall (its own accuracy); precision and F1 drops
  are reported beside it.
* A group's drop is the drop of top-1 accuracy on that group's images.
"""

import csv
from pathlib import Path

import numpy as np

from edgecnn.converters.criteria import failures as criteria_failures
from edgecnn.converters.criteria import flip_pct
from edgecnn.devices.decision import top1
from edgecnn.errors import DataError
from edgecnn.metrics import classification_report, expected_calibration_error


def _pp(value) -> float:
    return round(float(value) * 100.0, 4)


def model_metrics(y_true, probs, labels) -> dict:
    """Top-1, balanced accuracy, per-class precision/recall/F1, confusion matrix and ECE of one model."""
    probs = np.asarray(probs, dtype=np.float64)
    report = classification_report(y_true, top1(probs), labels)
    report["ece"] = expected_calibration_error(probs, y_true) if len(probs) else 0.0
    return report


def pair_metrics(y_true, ref_probs, probs, labels, ref_report=None, report=None) -> dict:
    """How ``probs`` differs from the reference ``ref_probs`` on the same images.

    Returns:
        ``accuracy_drop_pp``, ``balanced_accuracy_drop_pp``, ``agreement`` (fraction of images
        with the same top-1), ``mean_abs_prob_diff`` (mean over images and classes), per class
        ``recall_drop_pp``/``precision_drop_pp``/``f1_drop_pp``, and ``hardest_classes``: the
        classes sorted by recall drop, worst first (only those that dropped).
    """
    ref_probs = np.asarray(ref_probs, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if ref_probs.shape != probs.shape:
        raise ValueError(f"probability arrays differ in shape: {ref_probs.shape} vs {probs.shape}")
    ref_report = ref_report or model_metrics(y_true, ref_probs, labels)
    report = report or model_metrics(y_true, probs, labels)
    per_class = {}
    for label in labels:
        a, b = ref_report["per_class"][label], report["per_class"][label]
        per_class[label] = {
            "recall_drop_pp": _pp(a["recall"] - b["recall"]),
            "precision_drop_pp": _pp(a["precision"] - b["precision"]),
            "f1_drop_pp": _pp(a["f1"] - b["f1"]),
            "support": a["support"],
        }
    hardest = sorted((lbl for lbl in labels if per_class[lbl]["recall_drop_pp"] > 0 and per_class[lbl]["support"]),
                     key=lambda lbl: -per_class[lbl]["recall_drop_pp"])
    n = len(probs)
    return {
        "accuracy_drop_pp": _pp(ref_report["accuracy"] - report["accuracy"]),
        "balanced_accuracy_drop_pp": _pp(ref_report["balanced_accuracy"] - report["balanced_accuracy"]),
        "agreement": float((top1(ref_probs) == top1(probs)).mean()) if n else 1.0,
        "flip_pct": flip_pct(ref_probs, probs),
        "mean_abs_prob_diff": float(np.abs(ref_probs - probs).mean()) if n else 0.0,
        "per_class": per_class,
        "hardest_classes": hardest,
    }


def compare_models(y_true, probs_by_model: dict, labels, reference: str = "float") -> dict:
    """Metrics of every model and of every non-reference model against the reference.

    Args:
        y_true: true class indices, length N.
        probs_by_model: model name -> N x C probabilities (dict order is kept in the report).
        labels: class names in index order.
        reference: the name in ``probs_by_model`` the others are compared with.
    """
    if reference not in probs_by_model:
        raise ValueError(f"reference model '{reference}' is not among {list(probs_by_model)}")
    y_true = np.asarray(y_true, dtype=np.int64)
    reports = {name: model_metrics(y_true, p, labels) for name, p in probs_by_model.items()}
    vs = {name: pair_metrics(y_true, probs_by_model[reference], p, labels, reports[reference], reports[name])
          for name, p in probs_by_model.items() if name != reference}
    return {"n": int(len(y_true)), "reference": reference, "models": reports, "vs_reference": vs}


def ensemble_probs(prob_list) -> np.ndarray:
    """The probability-averaged ensemble of several models' N x C outputs."""
    arrays = [np.asarray(p, dtype=np.float64) for p in prob_list]
    if not arrays:
        raise ValueError("an ensemble needs at least one model")
    return np.mean(np.stack(arrays), axis=0)


def compare_groups(y_true, probs_by_model: dict, groups, labels, reference: str = "float") -> dict:
    """:func:`compare_models` on each sub-population; ``groups`` is one group name per image.

    Images whose group is None (not listed in the groups file) are left out of every group.
    """
    groups = np.asarray([g if g is not None else "" for g in groups], dtype=object)
    y_true = np.asarray(y_true, dtype=np.int64)
    out = {}
    for name in sorted({g for g in groups if g != ""}):
        mask = groups == name
        out[name] = compare_models(y_true[mask], {m: np.asarray(p)[mask] for m, p in probs_by_model.items()},
                                   labels, reference)
    return out


def gate(comparison: dict, max_drop=None, max_class_drop=None, groups=None, max_flips=None) -> dict:
    """The CI gate: fails when any model's overall accuracy drop exceeds ``max_drop`` (pp), its top-1
    differs from the reference on more than ``max_flips`` percent of the images, or any class's
    recall drop or any group's accuracy drop exceeds ``max_class_drop`` (pp).

    Args:
        comparison: from :func:`compare_models`.
        max_drop, max_class_drop: limits in percentage points; None leaves that check out.
        max_flips: limit on the percentage of flipped images; None leaves it out.
        groups: from :func:`compare_groups`, or None.

    Returns:
        ``{"passed": bool, "checked": bool, "max_drop_pp", "max_class_drop_pp", "failures": [text, ...]}``.
    """
    failures = []
    for name, vs in comparison["vs_reference"].items():
        failures += criteria_failures(name, vs["accuracy_drop_pp"], vs["flip_pct"], max_drop, max_flips)
        if max_class_drop is None:
            continue
        for label, pc in vs["per_class"].items():
            if pc["support"] and pc["recall_drop_pp"] > max_class_drop:
                failures.append(f"{name}: class '{label}' recall dropped {pc['recall_drop_pp']:.2f} pp "
                                f"(limit --max-class-drop {max_class_drop:g})")
        for group, cmp in (groups or {}).items():
            g = cmp["vs_reference"].get(name)
            if g and g["accuracy_drop_pp"] > max_class_drop:
                failures.append(f"{name}: group '{group}' accuracy dropped {g['accuracy_drop_pp']:.2f} pp "
                                f"(limit --max-class-drop {max_class_drop:g})")
    return {"passed": not failures,
            "checked": max_drop is not None or max_class_drop is not None or max_flips is not None,
            "max_drop_pp": max_drop, "max_flips_pct": max_flips, "max_class_drop_pp": max_class_drop,
            "failures": failures}


def read_groups_csv(path, files, root=None) -> list:
    """Map each evaluated image to its group from a CSV of ``file,group`` rows.

    A row's ``file`` matches an image by its path relative to ``root``, its absolute path, or, when
    unambiguous, its base name. A header row ``file,group`` is optional. Images not listed get
    None (they count in the overall figures but in no group).

    Raises:
        DataError: the file is missing, a row is malformed, or no image matched any row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--groups '{path}' does not exist. Pass a CSV with one 'file,group' row per image.")
    rows = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 2 or not row[1].strip():
                raise DataError(f"--groups '{path}' line {lineno}: expected 'file,group', got {','.join(row)!r}.")
            key, group = row[0].strip(), row[1].strip()
            if lineno == 1 and key.lower() in ("file", "path", "filename") and group.lower() == "group":
                continue
            rows[key.replace("\\", "/")] = group
    basenames = {}
    for key, group in rows.items():
        basenames.setdefault(Path(key).name, set()).add(group)
    out = []
    for f in files:
        f = Path(f)
        candidates = [f.as_posix(), str(f.resolve().as_posix())]
        if root is not None:
            try:
                candidates.insert(0, f.resolve().relative_to(Path(root).resolve()).as_posix())
            except ValueError:
                pass
        group = next((rows[c] for c in candidates if c in rows), None)
        if group is None and len(basenames.get(f.name, ())) == 1:
            group = next(iter(basenames[f.name]))
        out.append(group)
    if files and all(g is None for g in out):
        raise DataError(f"--groups '{path}': none of its {len(rows)} rows names an evaluated image. Write paths "
                        "relative to the data folder (e.g. 'ants/001.jpg') or plain file names.")
    return out
