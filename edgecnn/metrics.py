"""Classification metrics in plain numpy, shared by finetune, evaluate, audit and search.

No TensorFlow and no scikit-learn: the same figures must come out on the workstation and in
reports, from integer labels and predictions.
"""

import numpy as np

from edgecnn.devices.decision import top1


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts ``cm[true, pred]`` as an int64 ``num_classes``×``num_classes`` array."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _safe_div(num, den):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def classification_report(y_true, y_pred, labels) -> dict:
    """Top-1 accuracy, balanced accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.
        labels: class names in index order.

    Returns:
        A JSON-safe dict. Classes absent from ``y_true`` are left out of the balanced accuracy
        and macro F1 (their recall is undefined), and reported with ``support`` 0.
    """
    labels = list(labels)
    n = len(labels)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    present = support > 0
    total = int(cm.sum())
    return {
        "n": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "labels": labels,
        "confusion_matrix": cm.tolist(),
    }


def softmax(logits, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax of ``logits / temperature``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def expected_calibration_error(probs, y_true, bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true)
    conf = probs.max(axis=1)
    correct = (top1(probs) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)
