"""Shared by ``edgecnn prune`` and ``edgecnn qat``: fine-tune a transformed copy of a run's model and
save it as a child run.

The recipe is the one for folded, pretrained bases: BatchNormalization stays frozen (inference mode,
so batch statistics never undo the folded gamma 1 / mean 0 / variance 1-eps), a low learning rate,
light augmentation from ``edgecnn.train.augment``. The child RUN_DIR has the same files as a
finetune run (written by ``edgecnn.train.artifacts.write_run_dir``) and run.json records its
``parent`` and what was done.
"""

import gzip
import io
import time
from pathlib import Path
from datetime import datetime, timezone

import numpy as np

from edgecnn import __version__
from edgecnn.converters.representative import run_samples
from edgecnn.data.pixels import load_images
from edgecnn.metrics import classification_report
from edgecnn.run import preprocessing
from edgecnn.tf import keras


def split_arrays(run: dict, split: str):
    """``(x uint8 N×H×W×3, y)`` of a recorded split, resized as the run's preprocess says; None if absent."""
    if not run.get("data", {}).get("splits", {}).get(split):
        return None
    pre = preprocessing(run)
    return load_images(run_samples(run, split), pre["input_size"], pre["resize"])


def load_parent(run: dict):
    """The model of ``run`` and its train, val and test arrays (None for a split it did not record).

    prune and qat both start from a parent run this way.
    """
    from edgecnn.run import load_run_model

    return load_run_model(run), tuple(split_arrays(run, split) for split in ("train", "val", "test"))


def freeze_batchnorm(model) -> int:
    """Make every BatchNormalization (also inside wrappers) non-trainable: it runs in inference mode."""
    count = 0
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.BatchNormalization):
            layer.trainable = False
            inner.trainable = False
            count += 1
    return count


def evaluate(model, x, y, labels) -> dict:
    """classification_report of ``model`` on uint8 images."""
    probs = model.predict(x.astype(np.float32), batch_size=32, verbose=0)
    return classification_report(y, np.asarray(probs).argmax(axis=1), labels)


def weights_gzip_bytes(model) -> int:
    """Size of the model's float32 weights, concatenated and gzipped (zeros from pruning compress)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as fh:
        for w in model.get_weights():
            fh.write(np.asarray(w, dtype=np.float32).tobytes())
    return len(buf.getvalue())


def fit(model, train, val, labels, epochs: int, lr: float, batch_size: int, seed: int, augment: str = "light",
        callbacks=(), verbose: int = 0, phase: str = "retrain", teacher=None, label_weight: float = 0.5):
    """Compile and fit ``model`` on ``train`` (x, y); return history rows with val metrics per epoch.

    With a ``teacher`` (the parent's float model) the target is ``label_weight`` times the one-hot
    label plus the rest times the teacher's probabilities on the same augmented batch: distillation
    gives a few hundred images far more signal than hard labels, which is what lets a pruned or
    quantized model recover the parent's accuracy.
    """
    from edgecnn.tf import tf
    from edgecnn.train.augment import make_augmenter
    from edgecnn.train.callbacks import val_metrics
    from edgecnn.train.pipeline import train_dataset

    tf.random.set_seed(seed)
    augmenter = make_augmenter(augment, seed) if augment != "none" else None
    dataset = train_dataset(train[0], train[1], batch_size, seed, augmenter)
    if teacher is None:
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    else:
        num_classes = len(labels)

        def soft_targets(images, y):
            onehot = tf.one_hot(y, num_classes)
            return images, label_weight * onehot + (1.0 - label_weight) * teacher(images, training=False)

        dataset = dataset.map(soft_targets)
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy",
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    rows = []

    class _Rows(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {"phase": phase, "epoch": epoch + 1, "loss": float(logs["loss"]),
                   "accuracy": float(logs["accuracy"]), "lr": lr}
            if val is not None:
                probs = model.predict(val[0].astype(np.float32), batch_size=32, verbose=0)
                row.update(val_metrics(probs, val[1], labels))
            rows.append(row)

    model.fit(dataset, epochs=epochs, callbacks=list(callbacks) + [_Rows()], verbose=verbose)
    return rows


def child_run_info(parent: dict, section: str, details: dict, timings: dict) -> dict:
    """run.json of a child run: the parent's data, labels, model config and preprocess, plus
    ``parent`` (path and run.json sha256) and ``section`` (``pruning`` or ``qat``)."""
    from pathlib import Path

    from edgecnn.bundle.manifest import sha256_file

    info = {k: v for k, v in parent.items() if k not in ("run_dir", "model_path", "timings", "resumed")}
    info.update({
        "schema_version": parent.get("schema_version", 1),
        "edgecnn_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parent": {"run_dir": parent["run_dir"],
                   "run_json_sha256": sha256_file(Path(parent["run_dir"]) / "run.json"),
                   "step": parent.get("qat") and "qat" or parent.get("pruning") and "prune" or "finetune"},
        section: details,
        "timings": timings,
    })
    return info


def write_child(out, model, parent: dict, section: str, details: dict, history, metrics: dict, started: float):
    """Write the child RUN_DIR atomically (same files as a finetune run)."""
    from edgecnn.train.artifacts import write_run_dir

    info = child_run_info(parent, section, details, {"total_s": time.perf_counter() - started})
    write_run_dir(Path(out), model, parent["labels"], info, history, metrics)
    return info
