"""tf.data pipelines for both phases, and class balancing (class weights or seeded oversampling)."""

import numpy as np

from edgecnn.tf import tf


def class_weights(y, num_classes: int) -> dict:
    """``n / (k * count_c)`` per class (classes absent from training get weight 1)."""
    counts = np.bincount(np.asarray(y), minlength=num_classes).astype(np.float64)
    total, k = counts.sum(), int((counts > 0).sum())
    return {c: float(total / (k * counts[c])) if counts[c] else 1.0 for c in range(num_classes)}


def oversample_indices(y, seed: int) -> np.ndarray:
    """Indices that draw every class as often as the largest one (seeded, with replacement)."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    target = max(int((y == c).sum()) for c in classes)
    picks = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        extra = rng.choice(idx, target - len(idx), replace=True) if target > len(idx) else idx[:0]
        picks.append(np.concatenate([idx, extra]))
    out = np.concatenate(picks)
    rng.shuffle(out)
    return out


def balance(x, y, how: str, num_classes: int, seed: int):
    """Return ``(x, y, class_weight)`` for ``--balance none|weights|oversample``."""
    if how == "oversample":
        idx = oversample_indices(y, seed)
        return x[idx], y[idx], None
    if how == "weights":
        return x, y, class_weights(y, num_classes)
    return x, y, None


def train_dataset(x, y, batch_size: int, seed: int, augmenter=None):
    """Shuffled (seeded, reshuffled each epoch) batches; uint8 images become float32 and are
    augmented after batching. Works for cached features too (then x is float and no augmenter)."""
    ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y, dtype=np.int32)))
    ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), b))
    if augmenter is not None:
        ds = ds.map(lambda a, b: (augmenter(a, training=True), b))
    return _with_options(ds)


def eval_dataset(x, batch_size: int):
    """Batches of inputs in order, as float32, for predict()."""
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
    return _with_options(ds.map(lambda a: tf.cast(a, tf.float32)))


def eval_dataset_of(arrays, batch_size: int):
    """One :func:`eval_dataset` over several arrays of inputs, one after the other."""
    ds = None
    for x in arrays:
        part = tf.data.Dataset.from_tensor_slices(x)
        ds = part if ds is None else ds.concatenate(part)
    return _with_options(ds.batch(batch_size).map(lambda a: tf.cast(a, tf.float32)))


def _with_options(ds):
    # In-memory data: shard by batch element across workers; keep the order deterministic.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
