"""The two training phases: the head on cached features, then the unfrozen top of the base.

Both fit with the EpochTracker (selection, early stopping, best weights). Phase 2 also checkpoints
with keras' BackupAndRestore under .progress/phase2, so a killed run resumes mid-phase; phase 1
takes seconds on cached features and is simply rerun when it was killed. ``edgecnn search`` trials
run the same phases with ``ctx.progress = None``: no RUN_DIR, no checkpoints.
"""

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.models.classifier import head_model
from edgecnn.tf import keras
from edgecnn.train import distribute, pipeline
from edgecnn.train.callbacks import EpochTracker
from edgecnn.train.losses import make_loss

TOP_FRACTION = 0.15  # unfrozen share of the base when the registry names no block boundary
# keras MobileNetV2 uses 0.999: a small dataset's few hundred steps would leave the moving
# statistics at their identity initialisation, and inference would see vanishing activations.
SCRATCH_BN_MOMENTUM = 0.9


def _compile(model, lr, loss):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=make_loss(loss),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def _fit(model, dataset, epochs, class_weight, tracker, backup, verbose, strategy=None):
    # Another MultiWorker worker restores from a scratch copy of the chief's checkpoint and writes there.
    with distribute.backup_dir(strategy, backup) as folder:
        callbacks = [tracker] + ([keras.callbacks.BackupAndRestore(str(folder))] if folder else [])
        model.fit(dataset, epochs=epochs, class_weight=class_weight, callbacks=callbacks, verbose=verbose)
    return tracker


def train_head(ctx, model, feats, y):
    """Phase 1: fit the classifier's own dropout + dense layers on cached features."""
    a = ctx.args
    with ctx.strategy.scope():
        head = head_model(model)
        _compile(head, a["lr"], a["loss"])
    x, yb, class_weight = pipeline.balance(feats["train"], y["train"], a["balance"], ctx.num_classes, a["seed"])
    dataset = pipeline.train_dataset(x, yb, a["batch_size"], a["seed"])
    # The head is one dense layer on a few thousand vectors: a direct call beats predict()'s loop.
    # No checkpoints: on cached features the phase takes seconds; a killed one simply runs again.
    tracker = EpochTracker(lambda: head(feats["val"], training=False), y["val"], ctx.labels,
                           a["select_by"], a["patience"], None, 1, ctx.log)
    return _fit(head, dataset, a["epochs"], class_weight, tracker, None, ctx.verbose)


def unfreeze(model, config: dict, unfreeze_top=None, unfreeze_from=None) -> dict:
    """Make the top of the base trainable, BatchNorm excluded (it stays in inference mode).

    The start is ``--unfreeze-top N`` layers, ``--unfreeze-from LAYER``, the registry's block
    boundary, or the top 15% of the base's layers. A randomly initialised base (``--weights none``)
    has nothing pretrained to protect: by default all of it trains, BatchNorm included (in training
    mode, since its identity initialisation would otherwise let the activations vanish with depth).
    """
    base = config["base_layers"]
    scratch = str(config.get("weights")).lower() == "none"
    train_bn = scratch
    if scratch and unfreeze_top is None and unfreeze_from is None:
        start = 0
    elif unfreeze_top is not None:
        start = len(base) - min(int(unfreeze_top), len(base))
    else:
        name = unfreeze_from or config.get("unfreeze_from")
        if name is None:
            start = int(round(len(base) * (1 - TOP_FRACTION)))
        elif name in base:
            start = base.index(name)
        else:
            raise ModelError(f"--unfreeze-from '{name}' is not a layer of the {config['backbone']} base "
                             f"(its layers run from '{base[0]}' to '{base[-1]}'). Pass a layer name from "
                             "model.summary(), or --unfreeze-top N.")
    start = min(start, len(base) - 1)  # the top 15% of a base of a few layers rounds to none: take its last
    unfrozen = set(base[start:])
    base_set = set(base)
    model.trainable = True
    for layer in model.layers:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = (train_bn or not is_bn) and (layer.name in unfrozen or layer.name not in base_set)
        if is_bn and train_bn:
            layer.momentum = min(layer.momentum, SCRATCH_BN_MOMENTUM)
    return {"unfreeze_from": base[start], "unfrozen_layers": len(base) - start, "batchnorm_trains": train_bn,
            "trainable_weights": int(sum(np.prod(w.shape) for w in model.trainable_weights))}


def fine_tune(ctx, model, config, images, y, augmenter):
    """Phase 2: fit the whole classifier on augmented images at the lower learning rate."""
    a = ctx.args
    info = unfreeze(model, config, a["unfreeze_top"], a["unfreeze_from"])
    with ctx.strategy.scope():
        _compile(model, a["fine_tune_lr"], a["loss"])
    x, yb, class_weight = pipeline.balance(images["train"], y["train"], a["balance"], ctx.num_classes, a["seed"])
    dataset = pipeline.train_dataset(x, yb, a["batch_size"], a["seed"] + 1, augmenter)
    val = pipeline.eval_dataset(images["val"], a["batch_size"])
    # A search trial has no RUN_DIR (ctx.progress None): its tracker stays in memory, nothing is checkpointed.
    state_dir = None if ctx.progress is None else ctx.progress / "phase2"
    tracker = EpochTracker(lambda: model.predict(val, verbose=0), y["val"], ctx.labels, a["select_by"],
                           a["patience"], state_dir, 2, ctx.log, ctx.strategy)
    backup = None if state_dir is None else state_dir / "backup"
    _fit(model, dataset, a["fine_tune_epochs"], class_weight, tracker, backup, ctx.verbose, ctx.strategy)
    return tracker, info
