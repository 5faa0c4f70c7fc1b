"""``edgecnn audit DATA_DIR``: a thin wrapper around edgecnn.audit.audit_dataset."""

import sys

import click

from edgecnn.cli.common import emit, output_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--report", is_flag=True, help="Also write a self-contained HTML page and audit.json to --out.")
@click.option("--out", "-o", default="audit_report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for --report.")
@click.option("--fail-on", metavar="KINDS",
              help="Exit 1 when any of these findings exist, e.g. 'leakage,conflicts' or 'error' (every "
                   "error-level kind). Kinds: leakage, label_conflicts (conflicts), bad_files, exact_duplicates, "
                   "near_duplicates (duplicates: both), shortcuts, imbalance, tiny_classes, renamed_files, label_issues; "
                   "severities: error, warning, info; or any.")
@click.option("--method", type=click.Choice(["hash", "embedding"]), default="hash", show_default=True,
              help="How near-duplicates are found. hash: perceptual hashes of each image, its mirror image and 11 "
                   "crops (finds mirrored, cropped by up to ~10% per side, brighter/darker, contrast-changed, "
                   "resized and re-encoded copies; no model needed). embedding: cosine similarity of the pretrained "
                   "base's pooled features (needs --weights).")
@click.option("--max-distance", default=12, show_default=True, type=click.IntRange(0, 32),
              help="hash: near-duplicate threshold in bits of the 64-bit perceptual hash, between an image and any "
                   "view (mirror image, crop) of another (0: same hash only).")
@click.option("--hash", "hash_method", type=click.Choice(["phash", "dhash"]), default="phash", show_default=True,
              help="Perceptual hash.")
@click.option("--thumb-tolerance", default=0.2, show_default=True, type=click.FloatRange(0, None),
              help="Near-duplicates must also match as 8x8 colour thumbnails normalised for brightness and "
                   "contrast: mean absolute difference in standard deviations.")
@click.option("--min-similarity", default=0.9, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="embedding: cosine similarity at which two images are near-duplicates.")
@click.option("--labels", "check_labels", is_flag=True,
              help="Also report likely label errors: images whose label a cross-validated classifier on the base's "
                   "features finds unlikely (cleanlab's confident learning), each with the label it looks like. "
                   "Needs --weights.")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="The pretrained base for --labels and --method embedding: a local no-top .h5 file, e.g. "
                   "mobilenet_v1_0.5_160_imagenet_notop.h5 (backbone, width and size read from such a name).")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="A finetune RUN_DIR instead of --weights: its base, and its cached features when they cover every "
                   "image (no model runs then). Turns on --labels.")
@click.option("--backbone", help="The base's backbone when --weights has another name (mobilenet_v1, mobilenet_v2, ...).")
@click.option("--alpha", type=float, help="The base's width multiplier when --weights has another name.")
@click.option("--input-size", type=int, help="The base's input size when --weights has another name.")
@click.option("--val-fraction", default=0.2, show_default=True,
              help="Folders layout: the split finetune makes, on which leakage is checked.")
@click.option("--test-fraction", default=0.1, show_default=True, help="Folders layout: share of each class in test.")
@click.option("--seed", default=0, show_default=True, help="Folders layout: seed of the split.")
@click.option("--min-class-images", default=20, show_default=True, help="Report classes with fewer usable images.")
@click.option("--max-imbalance", default=3.0, show_default=True,
              help="Report a largest/smallest class ratio above this.")
@click.option("--shortcut-auc", default=0.9, show_default=True, type=click.FloatRange(0.5, 1.0),
              help="Report a property that alone separates a class with at least this AUC.")
@output_options
def audit(data_dir, report, out, fail_on, method, max_distance, hash_method, thumb_tolerance, min_similarity,
          check_labels, weights, run_dir, backbone, alpha, input_size, val_fraction, test_fraction, seed,
          min_class_images, max_imbalance, shortcut_auc, quiet, as_json):
    """Check DATA_DIR before training: bad files, duplicates and leakage, imbalance, shortcut cues.

    Duplicates include edited copies: mirrored, cropped, brighter or darker, contrast-changed, resized or
    re-encoded; each pair is reported with what was done to it ("mirrored, cropped 6%"). Within a
    class they are near-duplicates, across classes label conflicts, across train/val/test leakage.
    With --labels (and --weights) it also lists likely label errors: images a classifier that did not
    see them puts in another class, with the class they look like.

    Exit status: 0, or 1 when --fail-on names a finding that is present; 2 for an error (a missing
    folder, an unknown --fail-on word).
    """
    from edgecnn.audit import audit_dataset, failed_checks, parse_fail_on
    from edgecnn.audit.report import format_audit, write_report

    kinds = parse_fail_on(fail_on)  # check the words before the long scan
    result = audit_dataset(data_dir, method=method, max_distance=max_distance, hash_method=hash_method,
                           min_similarity=min_similarity, labels=check_labels or bool(run_dir), weights=weights,
                           run=run_dir, backbone=backbone,
                           alpha=alpha, input_size=input_size,
                           thumb_tolerance=thumb_tolerance, val_fraction=val_fraction, test_fraction=test_fraction,
                           seed=seed, min_class_images=min_class_images, max_imbalance=max_imbalance,
                           shortcut_auc=shortcut_auc, progress=not (quiet or as_json) and sys.stderr.isatty())
    if report:
        result["report"] = write_report(result, out)
    failed = failed_checks(result, kinds)
    result["failed"] = failed

    def summary():
        text = format_audit(result)
        if report:
            text += f"\nReport: {result['report']['html']} (and {result['report']['json']})"
        if failed:
            text += f"\nFailing (--fail-on): {', '.join(failed)}"
        return text

    emit(result, as_json, quiet, summary)
    if failed:
        sys.exit(1)
