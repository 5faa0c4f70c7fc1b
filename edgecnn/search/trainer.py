"""The search's own small trainer: one trial's model, head phase, fine-tune and int8 conversion.

Lighter than ``edgecnn.train.finetune.finetune`` on purpose: a trial keeps no RUN_DIR, resumes nothing and
reuses base features cached under ``SEARCH_DIR/cache`` across trials of the same base; the search's
``--export best`` re-runs the winner through finetune. ``data`` is an
:class:`edgecnn.search.objective.SearchData`.
"""

import hashlib
import json

import numpy as np

from edgecnn import atomic


def weights_for(params, weights) -> str:
    """What the trial's base loads: a file from a weights folder, ``imagenet``, or ``none``; it also
    tags the cached base features."""
    from edgecnn.models.registry import get_backbone, resolve_weights
    from edgecnn.search.space import weights_dir, weights_file

    folder = weights_dir(weights)
    entry = get_backbone(params["backbone"])
    if folder is not None:
        path = weights_file(folder, params["backbone"], params["alpha"], params["input_size"])
        return str(path) if path is not None else "imagenet"
    if weights is None or str(weights).lower() == "none":
        return "none"
    return resolve_weights(entry, weights, params["alpha"], params["input_size"]) or "none"


def build(params, num_classes, weights, seed):
    """A fresh classifier for the trial's parameters, seeded (``(model, config)``)."""
    from edgecnn.models.classifier import build_classifier
    from edgecnn.tf import keras

    keras.backend.clear_session()  # trials run one after another in one process
    keras.utils.set_random_seed(int(seed))
    return build_classifier(num_classes, backbone=params["backbone"], input_size=params["input_size"],
                            alpha=params["alpha"], weights=weights_for(params, weights))


def base_features(model, config, data, weights_tag: str):
    """Pooled base features for train and val, cached under ``SEARCH_DIR/cache`` by base and data."""
    from edgecnn.models.classifier import feature_extractor

    key = hashlib.sha256(json.dumps({"base": [config["backbone"], config["alpha"], config["input_size"]],
                                     "weights": weights_tag, "data": data.digest}).encode()).hexdigest()[:20]
    path = data.cache_dir / f"features-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as f:
                return {"train": f["train"], "val": f["val"]}, True
        except (OSError, ValueError, KeyError):
            pass
    images = data.images(config["input_size"])
    fx = feature_extractor(model)
    feats = {split: np.asarray(fx.predict(images[split].astype(np.float32), batch_size=32, verbose=0),
                               dtype=np.float32) for split in ("train", "val")}
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **feats)
    return feats, False


def _class_weight(y, n, mode):
    if mode != "weights":
        return None
    counts = np.bincount(y, minlength=n).astype(np.float64)
    counts[counts == 0] = 1
    w = len(y) / (n * counts)
    return {i: float(w[i]) for i in range(n)}


def _oversample(x, y, seed):
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), counts.max(), replace=True)
                          for c in range(len(counts)) if counts[c] > 0])
    rng.shuffle(idx)
    return x[idx], y[idx]


def _val_acc(probs, y):
    return float((np.asarray(probs).argmax(axis=1) == y).mean()) if len(y) else 0.0


def train_head(model, feats, data, params, seed):
    """Phase 1 on cached features: the classifier's dropout and dense layers (shared weights)."""
    from edgecnn.models.classifier import head_model
    from edgecnn.tf import keras

    head = head_model(model)
    x, y = feats["train"], data.y_train
    if params.get("balance") == "oversample":
        x, y = _oversample(x, y, seed)
    head.compile(optimizer=keras.optimizers.Adam(params["lr"]), loss="sparse_categorical_crossentropy")
    best, best_w, waited = -1.0, None, 0
    for _ in range(max(1, params["epochs"])):
        head.fit(x, y, batch_size=params["batch_size"], epochs=1, verbose=0, shuffle=True,
                 class_weight=_class_weight(y, data.num_classes, params.get("balance")))
        acc = _val_acc(head.predict(feats["val"], verbose=0), data.y_val)
        if acc > best:
            best, best_w, waited = acc, head.get_weights(), 0
        else:
            waited += 1
            if waited >= params.get("patience", 3):
                break
    head.set_weights(best_w)
    return best


def fine_tune(model, config, data, params, seed, train_bn: bool = False):
    """Phase 2: unfreeze the top ``unfreeze_top`` base layers and train.

    BatchNorm stays frozen (inference mode) over pretrained weights, as fine-tuning a folded base
    needs; a random-init base (``train_bn``) trains its BatchNorm too, or it cannot learn.
    """
    from edgecnn.tf import keras, tf

    base = config["base_layers"]
    start = len(base) - min(int(params["unfreeze_top"]), len(base))
    unfrozen, base_set = set(base[start:]), set(base)
    model.trainable = True
    for layer in model.layers:
        is_bn = isinstance(layer, keras.layers.BatchNormalization) and not train_bn
        layer.trainable = not is_bn and (layer.name in unfrozen or layer.name not in base_set)
        if train_bn and isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9  # Keras' 0.999 leaves the moving statistics unset after a short fit
    images = data.images(config["input_size"])
    x, y = images["train"], data.y_train
    if params.get("balance") == "oversample":
        x, y = _oversample(x, y, seed)
    aug = _augmenter(params.get("augment", "none"), seed)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(params["batch_size"])
    ds = ds.map(lambda a, b: (tf.cast(a, tf.float32), b))
    if aug is not None:
        ds = ds.map(lambda a, b: (aug(a, training=True), b))
    model.compile(optimizer=keras.optimizers.Adam(params["fine_tune_lr"]), loss="sparse_categorical_crossentropy")
    val_x = images["val"].astype(np.float32)
    best, best_w = _val_acc(model.predict(val_x, batch_size=64, verbose=0), data.y_val), model.get_weights()
    for _ in range(max(0, params["fine_tune_epochs"])):
        model.fit(ds.prefetch(2), epochs=1, verbose=0,
                  class_weight=_class_weight(y, data.num_classes, params.get("balance")))
        acc = _val_acc(model.predict(val_x, batch_size=64, verbose=0), data.y_val)
        if acc > best:
            best, best_w = acc, model.get_weights()
    model.set_weights(best_w)
    return best


def _augmenter(level, seed):
    from edgecnn.train.augment import make_augmenter

    return None if level == "none" else make_augmenter(level, seed)


# ---------------------------------------------------------------- int8

def convert_int8(model, representative) -> bytes:
    """Full-integer int8 .tflite (uint8 raw-pixel input) through the project's converter."""
    from edgecnn.converters.tflite import convert_model

    return convert_model(model, "int8", representative=representative, io="uint8")


def int8_accuracy(content: bytes, images, y) -> float:
    """Top-1 accuracy of a .tflite on already-resized uint8 images (scale/zero point from the file)."""
    from edgecnn.converters.tflite import predict_tflite

    return _val_acc(predict_tflite(content, images, num_threads=1), np.asarray(y))
