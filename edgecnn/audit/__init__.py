"""``edgecnn audit``: check a dataset before training on it.

Bad files (the same scanner as finetune), exact and near-duplicates (mirrored, cropped, brightened,
contrast-changed, resized and re-encoded copies too, each described) within a class, across classes
(label conflicts) and across train/val/test (leakage), class imbalance and tiny classes, shortcut
cues (a class all dark, all PNG, all one size...), and with ``labels=True`` likely label errors.
numpy, Pillow and OpenCV; TensorFlow, scikit-learn and cleanlab only for ``method="embedding"`` and
``labels=True`` (the pretrained base's features).

    from edgecnn.audit import audit_dataset, too_good_to_be_true
    result = audit_dataset("data/")          # a JSON-safe dict of findings with severity
"""

from edgecnn.audit.pipeline import (KINDS, audit_dataset, failed_checks, parse_fail_on,  # noqa: F401
                                    too_good_to_be_true)

__all__ = ["audit_dataset", "too_good_to_be_true", "failed_checks", "parse_fail_on", "KINDS"]
