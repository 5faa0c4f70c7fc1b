"""Write the finished RUN_DIR in one step (DESIGN rule 7).

Everything is written into a temporary folder beside RUN_DIR, which then replaces it: a reader
never sees a ``model.keras`` without its ``run.json``. The feature cache moves across; the
``.progress`` folder of the finished run goes away with the old folder.
"""

import csv
import io
import os

from edgecnn import atomic
from edgecnn.run import HISTORY_FILE, LABELS_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE
from edgecnn.tf import keras
from edgecnn.train.state import CACHE_DIR

CONFUSION_FILE = "confusion_matrix.png"
_FIRST_COLUMNS = ["phase", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy",
                  "val_macro_f1", "lr"]


def saveable(model):
    """An uncompiled functional model over the same layers (no optimizer state in the file).

    Non-BatchNorm layers are marked trainable; BatchNorm stays frozen, so a later step that trains
    the loaded model (prune, QAT) keeps it in inference mode, as fine-tuning a folded base needs.
    """
    out = keras.Model(model.inputs, model.outputs, name=model.name)
    for layer in out.layers:
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    return out


def history_csv(rows) -> str:
    """Rows of both phases as CSV; known columns first, then any others in order of appearance."""
    columns = [c for c in _FIRST_COLUMNS if any(c in r for r in rows)]
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def plot_confusion(cm, labels, title: str, path):
    """Save a confusion matrix as PNG with counts in the cells (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    size = max(4.0, 0.6 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = max((max(row) for row in cm), default=0)
    for i, row in enumerate(cm):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_run_dir(out, model, labels, run_info: dict, history_rows, metrics: dict):
    """Replace RUN_DIR ``out`` with the finished artifacts (the cache is kept)."""
    with atomic.atomic_dir(out) as tmp:
        saveable(model).save(tmp / MODEL_FILE)
        atomic.write_text(tmp / LABELS_FILE, "".join(f"{name}\n" for name in labels))
        atomic.write_text(tmp / HISTORY_FILE, history_csv(history_rows))
        atomic.write_json(tmp / METRICS_FILE, metrics)
        split = "test" if metrics.get("test") else "val"
        report = metrics[split]
        plot_confusion(report["confusion_matrix"], labels,
                       f"Confusion matrix ({split}, n={report['n']}, accuracy {report['accuracy']:.3f})",
                       tmp / CONFUSION_FILE)
        atomic.write_json(tmp / RUN_FILE, run_info)
        if (out / CACHE_DIR).is_dir():
            os.replace(out / CACHE_DIR, tmp / CACHE_DIR)
