"""``edgecnn finetune``: transfer learning from DATA_DIR/<class>/*.jpg to a RUN_DIR.

Phase 1 runs the frozen base once over every image, caches the pooled features and trains the head
on them (the speed lever). Phase 2 unfreezes the top of the base and fine-tunes on augmented
images at a lower learning rate. A killed run resumes with the same command; see
:mod:`edgecnn.train.state` for the RUN_DIR layout while training and :mod:`edgecnn.run` for
the finished one.
"""

import hashlib
import json
import sys
import time
from collections import Counter

from edgecnn.data.folders import printable
from edgecnn.errors import RunError
from edgecnn.run import load_run
from edgecnn.train import cluster, options as opts
from edgecnn.train import state as run_state
from edgecnn.train.job import run_result, train_job
from edgecnn.train.space import disk_full_guard


def _audit_hook(intake, args, strict, log):
    """Audit the data before training: warn on leakage and label conflicts, refuse them with ``strict``."""
    from edgecnn.audit import failed_checks
    from edgecnn.errors import DataError
    from edgecnn.train.intake import audit as audit_intake

    audit = audit_intake(intake, args)
    bad = failed_checks(audit, "leakage,label_conflicts")
    if bad:
        message = "; ".join(f["message"] for f in audit["findings"] if f["kind"] in bad)
        if strict:
            raise DataError(f"the audit found {message}. Fix the data (see `edgecnn audit DATA_DIR --report`) "
                            "or drop --strict.")
        log(f"Warning: the audit found {message}. Results on these splits may be optimistic "
            "(`edgecnn audit DATA_DIR --report` lists the files).")
    return audit


def _logger(quiet):
    def log(message):
        if not quiet:
            print(message, file=sys.stderr, flush=True)
    return log


def _skipped_summary(skipped: list, listed: int = 3) -> str:
    """One line on the files a dataset skipped, or "" when none: how many, why, the first few names."""
    if not skipped:
        return ""
    # "not an image (Pillow cannot ...)" counts as "not an image"
    reasons = Counter(d["reason"].split(" (")[0] for d in skipped)
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    names = ", ".join(d["path"] for d in skipped[:listed]) + (", ..." if len(skipped) > listed else "")
    plural = "s" if len(skipped) != 1 else ""
    return printable(f"Skipped {len(skipped)} bad file{plural} ({why}): {names} (all in run.json under "
                     "data.skipped; `edgecnn audit DATA_DIR` explains each)")


def _data_sha(dataset) -> str:
    return hashlib.sha256(json.dumps(dataset.to_json(), sort_keys=True, default=str).encode()).hexdigest()


def finetune(data_dir, out, *, overwrite: bool = False, quiet: bool = False, strict: bool = False,
             workers=None, worker_index=None, **options) -> dict:
    """Fine-tune a backbone on ``data_dir`` and write RUN_DIR ``out``.

    Args:
        data_dir: ``DATA_DIR/<class>/<image>`` folders.
        out: the RUN_DIR to create, resume, or (when complete) report on.
        overwrite: replace whatever ``out`` holds (its feature cache is kept).
        quiet: no progress bars or messages.
        strict: passed to the dataset audit hook.
        workers, worker_index: ``"host:port,host:port"`` and this machine's index in it: train on that
            cluster (MultiWorkerMirroredStrategy; ``TF_CONFIG`` is written from them). Start the same
            command on every machine with its own index; worker 0 (the chief) writes RUN_DIR, which
            every worker must see at the same path (a shared folder) for a killed run to resume.
        **options: see ``edgecnn.train.options.DEFAULTS`` (the CLI's options, with underscores).

    Returns:
        ``{"status": "trained"|"complete", "run_dir", "model_path", "labels", "metrics": {"val",
        "test"}, "timings", "resumed", "warnings"}``; ``warnings`` holds the "too good to be true"
        warning when val accuracy is near 100% and the audit found leakage or shortcut cues, and the
        likely label errors found on the pretrained base's cached features.
    """
    from edgecnn.train.intake import read_data

    started = time.perf_counter()
    if workers is not None:
        options = cluster.configure(options, workers, worker_index)
    args = opts.resolve_args(data_dir, options)
    log = _logger(quiet)
    intake = read_data(args, progress=not quiet)  # each file decoded once: verdict, audit hashes, pixels
    dataset = intake.dataset
    if dataset.skipped:
        log(_skipped_summary(dataset.skipped))
    if not dataset.splits.get("val"):
        raise RunError(f"'{args['data_dir']}' gives no validation images, which model selection and early "
                       "stopping need. Pass --val-fraction > 0 (class folders) or add DATA_DIR/val/<class>/.")
    state = run_state.prepare(out, args, _data_sha(dataset), overwrite)
    if state.status == "complete":
        log(f"RUN_DIR '{out}' is already complete with these arguments; nothing to do "
            "(pass --overwrite to train again).")
        return run_result(load_run(out), "complete")
    audit = _audit_hook(intake, args, strict, log)
    loaded = time.perf_counter() - started
    with disk_full_guard(state):
        result = train_job(args, dataset, state, log, quiet, {"dataset_s": loaded, "started": started},
                           intake.pixels)
    if result["status"] == "worker":  # a MultiWorker worker other than the chief: RUN_DIR is the chief's
        return dict(result, warnings=[])
    result["warnings"] = _too_good(result, audit, log) + _doubtful_labels(args, out, log)
    return result


def _doubtful_labels(args, out, log) -> list:
    """Warn on images whose label the base's cached features find unlikely (the audit before training
    had no features to judge labels with)."""
    from edgecnn.audit.run_labels import label_issues_from_run, label_warning

    if args["weights"] == "none" and not args.get("base"):  # features of a random base say nothing of labels
        return []
    finding = label_issues_from_run(out, args["seed"])
    if not finding:
        return []
    warning = label_warning(finding, args["data_dir"], out)
    log(printable(f"Warning: {warning}"))
    return [warning]


def _too_good(result: dict, audit: dict, log) -> list:
    """Warn when val accuracy is near 100% and the audit found leakage or shortcut cues."""
    from edgecnn.audit import too_good_to_be_true

    val = (result.get("metrics") or {}).get("val")
    warning = too_good_to_be_true(val["accuracy"], audit) if val else None
    if warning:
        log(f"Warning: {warning}")
    return [warning] if warning else []
