"""Likely label errors in a finished finetune run, from the base features finetune cached.

``finetune`` audits the data before training, when no features exist yet; its phase 1 then runs the
base over every image and caches the pooled features (``RUN_DIR/.cache``). This is the label check
(:func:`edgecnn.audit.labels.find_label_errors`) on those features, run after training, so a
finetune warns on doubtful labels without running the base a second time.
"""

from types import SimpleNamespace
from typing import Optional

from edgecnn.errors import DataError


def run_records(run: dict) -> list:
    """One record per image of the run's recorded splits (``rel``, ``label`` index, ``split``, ``sha256``)."""
    from edgecnn.converters.representative import run_samples
    from edgecnn.data.folders import relative

    root = run.get("data", {}).get("root", ".")
    return [SimpleNamespace(rel=relative(s.path, root), label=s.label, split=split, sha256=s.sha256)
            for split in run.get("data", {}).get("splits", {}) for s in run_samples(run, split)]


def label_issues_from_run(run_dir, seed: int = 0) -> Optional[dict]:
    """The ``label_issues`` finding for RUN_DIR's images, or None when there is none or when the run's
    feature cache does not cover every image (the check then needs ``edgecnn audit --run``)."""
    from edgecnn.audit.embeddings import run_features
    from edgecnn.audit.findings import label_findings
    from edgecnn.run import load_run

    run = load_run(run_dir)
    records = run_records(run)
    try:
        _, features = run_features(run_dir, records)
    except DataError:  # no cache and no local weights: nothing to check without running a model
        return None
    if features is None:
        return None
    found = label_findings(records, features, run["labels"], seed)
    return found[0] if found else None


def label_warning(finding: dict, data_dir, run_dir, listed: int = 3) -> str:
    """One warning line naming the first few doubtful images and the command that shows them all."""
    items = finding["items"]
    names = ", ".join(f"{i['path']} (looks like '{i['likely_label']}', {i['p_likely']:.2f})" for i in items[:listed])
    more = f" and {len(items) - listed} more" if len(items) > listed else ""
    return (f"{len(items)} image(s) look like another class than their label: {names}{more}. Check them, and fix "
            f"the label or remove the image (`edgecnn audit {data_dir} --run {run_dir} --labels --report "
            "audit.html` shows them).")
