"""``audit_dataset``: every check on a DATA_DIR, as one JSON-safe dict of findings with severity.

The audit is a short list of steps: check the settings, find the files (:func:`edgecnn.data.folders.discover`,
the walker finetune uses), scan and hash each one, give each the split finetune would, then the checks
of :mod:`edgecnn.audit.findings` (files, duplicates, class balance, shortcut cues, and with ``labels``
likely label errors), and the result. The pretrained base runs only for ``method="embedding"`` or
``labels=True``: the default audit needs no TensorFlow.
"""

import time
from typing import List, Optional

from edgecnn.audit.findings import (KINDS, SEVERITIES, balance_basis, balance_findings, class_counts,
                                    duplicate_findings, file_findings, imbalance_ratio, label_findings,
                                    search_duplicates, shortcut_findings, sort_findings)
from edgecnn.audit.hashing import HASH_METHODS
from edgecnn.audit.images import ImageRecord, record_image
from edgecnn.errors import DataError
from edgecnn.data.scan import DEFAULT_MAX_PIXELS, ScanResult

SCHEMA = "edgecnn.audit/1"
DEFAULT_MAX_DISTANCE = 12  # bits; measured: planted crops of up to 10% per side within 12, other photos >= 14
# Words accepted by --fail-on besides the kinds themselves.
FAIL_ON_ALIASES = {
    "conflicts": ["label_conflicts"],
    "duplicates": ["exact_duplicates", "near_duplicates"],
    "shortcut": ["shortcuts"],
    "bad": ["bad_files"],
    "any": list(KINDS),
}
TOO_GOOD_ACCURACY = 0.98
# "hash": the views of edgecnn.audit.views (the default: it found every planted transformation at
# >= 0.96 recall in benchmarks/audit_recall.py, needs no model and runs at hundreds of images/s);
# "embedding": cosine similarity of the pretrained base's pooled features (needs --weights).
METHODS = ("hash", "embedding")


def _check_settings(hash_method: str, max_distance: int, method: str = "hash", weights=None,
                    labels: bool = False, run=None) -> None:
    if method not in METHODS:
        raise DataError(f"unknown near-duplicate method '{method}'; use one of {', '.join(METHODS)}.")
    if (method == "embedding" or labels) and not (weights or run):
        needs = "--method embedding" if method == "embedding" else "--labels"
        raise DataError(f"{needs} needs the pretrained base: pass --weights PATH (a no-top .h5 file such as "
                        "mobilenet_v1_0.5_160_imagenet_notop.h5; nothing is downloaded) or --run RUN_DIR.")
    if hash_method not in HASH_METHODS:
        raise DataError(f"unknown hash method '{hash_method}'; use one of {', '.join(HASH_METHODS)}.")
    if not 0 <= int(max_distance) <= 32:
        raise DataError(f"max_distance={max_distance} must be between 0 and 32 bits (of 64); 4-10 finds "
                        "re-encoded, resized or slightly edited copies.")


def scan_records(disc, hash_method: str = "phash", max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = False,
                 keep=None) -> List[ImageRecord]:
    """Scan, hash and describe every file of a Discovery (one decode each, on a thread pool).

    ``keep(record, rgb)`` receives each usable file's pixels as it is decoded (see ``record_image``).
    Pass the result to ``audit_dataset(..., scanned=(disc, records))`` for the checks.
    """
    from edgecnn.data.folders import parallel_map, relative

    def work(job):
        split, label, path = job
        return record_image(path, relative(path, disc.root), split, label, hash_method, max_pixels, keep)

    return parallel_map(work, disc.files, progress, "Auditing images")


def scan_results(records) -> List[tuple]:
    """``(ScanResult, sha256)`` per record: what ``edgecnn.data.dataset.assemble`` builds a Dataset from."""
    return [(ScanResult(r.path, r.ok, r.reason, r.format, r.width, r.height, r.mode), r.sha256) for r in records]


def _assign_splits(disc, records, val_fraction, test_fraction, seed) -> Optional[str]:
    """Give every record the split finetune would use (``rec.split``); returns a note on how, or None."""
    from edgecnn.data.dataset import assemble

    if disc.layout == "splits":
        return None
    try:
        dataset = assemble(disc, scan_results(records), val_fraction, test_fraction, seed)
    except DataError as exc:
        for rec in records:
            rec.split = "all"
        return f"no split could be made ({exc}); duplicates are checked across all images"
    where = {s.path: split for split, samples in dataset.splits.items() for s in samples}
    for rec in records:
        rec.split = where.get(rec.path, "all")
    return (f"folders layout: leakage is checked on the split finetune makes with seed={seed}, "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}")


def _result(disc, records, good, settings, split_note, counts, ratio, pairs, findings, times) -> dict:
    summary = {kind: 0 for kind in KINDS}
    for f in findings:
        summary[f["kind"]] = f["count"]
    t0, t_scan, t_search, t_end = times
    return {
        "schema": SCHEMA,
        "root": str(disc.root),
        "layout": disc.layout,
        "labels": list(disc.labels),
        "images": len(records),
        "usable": len(good),
        "split_note": split_note,
        "class_counts": counts,
        "imbalance_ratio": None if ratio == float("inf") else ratio,
        "pairs_found": len(pairs),
        "findings": findings,
        "summary": summary,
        "severity_counts": {s: sum(1 for f in findings if f["severity"] == s) for s in SEVERITIES},
        "settings": settings,
        "timings": {"scan_s": round(t_scan - t0, 3), "search_s": round(t_search - t_scan, 3),
                    "total_s": round(t_end - t0, 3)},
    }


def _features(good, method, labels, weights, base, run, progress):
    """The base's pooled features of ``good`` when the method or the label check needs them, else None:
    a run's cached features when they cover every image, else the base run over the images."""
    if method != "embedding" and not labels:
        return None, None
    from edgecnn.audit.embeddings import base_from_weights, pooled_features, run_features

    if run and not weights:
        spec, features = run_features(run, good)
        if features is not None:
            return dict(spec, cached=True), features
    else:
        spec = base_from_weights(weights, **base)
    return spec, pooled_features(good, spec, progress)


def audit_dataset(data_dir, max_distance: int = DEFAULT_MAX_DISTANCE, hash_method: str = "phash",
                  thumb_tolerance: float = 0.2, val_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 0,
                  max_pixels: int = DEFAULT_MAX_PIXELS, min_class_images: int = 20,
                  max_imbalance: float = 3.0, shortcut_auc: float = 0.9, naive: bool = False,
                  progress: bool = False, method: str = "hash", labels: bool = False, weights=None,
                  backbone=None, alpha=None, input_size=None, min_similarity: float = 0.9, run=None,
                  scanned=None) -> dict:
    """Audit ``data_dir``: bad files, duplicates, leakage, label conflicts, imbalance, shortcut cues.

    Args:
        data_dir: DATA_DIR in the folders or splits layout (as for ``edgecnn finetune``).
        max_distance: near-duplicate threshold in bits of the 64-bit perceptual hash (0 = same hash),
            between an image and any view (mirror image, crop) of another.
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
        method: ``hash`` (views of perceptual hashes) or ``embedding`` (the base's pooled features).
        labels: also report likely label errors (cleanlab on cross-validated predictions).
        weights, backbone, alpha, input_size: the pretrained base for ``embedding`` and ``labels``; the
            backbone, width and size are read from a registry-style file name when not given.
        min_similarity: ``embedding``: cosine similarity at which two images are near-duplicates.
        run: a finetune RUN_DIR whose base (and feature cache, when it covers every image) to use
            instead of ``weights``.
        scanned: ``(discovery, records)`` from :func:`scan_records` with the same ``hash_method`` and
            ``max_pixels``, when the caller has scanned already (finetune); ``data_dir`` is then not walked.

    Returns:
        A JSON-safe dict: ``findings`` (each with ``kind``, ``severity``, ``count``, ``message``,
        ``items``), ``summary`` (count per kind), ``class_counts``, ``imbalance_ratio``, ``images``,
        ``usable``, ``pairs_found``, ``settings``, ``timings``.

    Raises:
        DataError: the folder is missing, not a folder, or has no class folders.
    """
    from edgecnn.data.folders import discover

    _check_settings(hash_method, max_distance, method, weights, labels, run)
    settings = {"method": method, "max_distance": int(max_distance), "hash_method": hash_method,
                "thumb_tolerance": thumb_tolerance,
                "val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed,
                "max_pixels": max_pixels, "min_class_images": min_class_images, "max_imbalance": max_imbalance,
                "shortcut_auc": shortcut_auc, "search": "naive" if naive else "multi-index", "labels": bool(labels)}
    if method == "embedding":
        from edgecnn.audit.embeddings import check_similarity

        check_similarity(min_similarity)
        settings["min_similarity"] = min_similarity
    t0 = time.perf_counter()
    disc, records = scanned if scanned else (discover(data_dir), None)
    if records is None:
        records = scan_records(disc, hash_method, max_pixels, progress)
    t_scan = time.perf_counter()
    split_note = _assign_splits(disc, records, val_fraction, test_fraction, seed)
    good = [r for r in records if r.ok]
    spec, features = _features(good, method, labels, weights,
                               {"backbone": backbone, "alpha": alpha, "input_size": input_size}, run, progress)
    if spec:
        settings["base"] = spec
    findings = file_findings(records, disc.labels)
    pairs, groups = search_duplicates(good, max_distance, thumb_tolerance, naive, method, features, min_similarity)
    t_search = time.perf_counter()
    findings += duplicate_findings(good, pairs, groups, disc.labels)
    counts = class_counts(good, disc.labels)
    basis, base_counts = balance_basis(good, disc.labels, disc.layout, counts)
    findings += balance_findings(basis, base_counts, min_class_images, max_imbalance)
    findings += shortcut_findings(good, disc.labels, shortcut_auc)
    if labels:
        findings += label_findings(good, features, disc.labels, seed)
    findings = sort_findings(findings)
    return _result(disc, records, good, settings, split_note, counts, imbalance_ratio(base_counts), pairs,
                   findings, (t0, t_scan, t_search, time.perf_counter()))


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
