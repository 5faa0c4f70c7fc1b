"""Speed of ``edgecnn finetune``'s head phase against the plain Keras recipe, at equal epochs.

Data: hymenoptera (``SHARED/datasets/hymenoptera``: train 245 files, val 153) and the pretrained
MobileNet v1 0.5/160 base (``SHARED/models/pretrained``), both from ``--shared`` (default ../shared).

* plain: what a user writes from the Keras tutorial: ``image_dataset_from_directory`` (decode and
  resize every epoch, no ``.cache()``), a frozen base inside the model, ``model.fit`` with
  ``validation_data``. The placeholder ``train/ants/imageNotFound.gif`` does not stop it: with
  ``expand_animations=False`` TensorFlow decodes the GIF's first frame, so the plain recipe trains on
  it as an "ant", as a user who never looked would (edgecnn's scanner skips it as a placeholder).
* edgecnn: ``finetune(..., fine_tune_epochs=0)`` into a fresh RUN_DIR and an empty decoded-image cache
  (``EDGECNN_CACHE_DIR`` in a temporary folder: nothing decoded beforehand): the single scan (each file
  decoded once for its check, the audit and the pixels), one
  pass of the frozen base over every image (cached features), then the head epochs with the same
  per-epoch validation; early stopping is off (patience = epochs) so both run every epoch.

Seconds per epoch = (data set-up + feature extraction + training) / epochs for edgecnn, and
(dataset listing + fit) / epochs for plain; model building is left out of both. A second edgecnn
run with ``--overwrite`` into the same RUN_DIR finds its features cached (``edgecnn_cached_*``): the
cost of trying another head setting.
Prints progress on stderr and one JSON object as the last line of stdout::

    {"plain_s_per_epoch", "edgecnn_s_per_epoch", "speedup", "plain_val_acc", "edgecnn_val_acc",
     "plain_best_val_acc", "edgecnn_cached_s_per_epoch", "cached_speedup", "epochs", "edgecnn_split_s", "device"}

Goal (issue 16): speedup >= 8 at 10 epochs, edgecnn_val_acc >= plain_val_acc - 0.02.

Usage: ``python benchmarks/finetune_speed.py [--shared DIR] [--epochs 10] [--batch-size 32]``
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "mobilenet_v1_0.5_160_imagenet_notop.h5"
SIZE = 160


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def plain_keras(data: Path, weights: Path, epochs: int, batch_size: int, seed: int) -> dict:
    from edgecnn.tf import keras, tf

    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNet(input_shape=(SIZE, SIZE, 3), alpha=0.5, include_top=False,
                                        weights=str(weights))
    base.trainable = False
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])

    t0 = time.perf_counter()
    train = keras.utils.image_dataset_from_directory(data / "train", image_size=(SIZE, SIZE), batch_size=batch_size,
                                                     seed=seed)
    val = keras.utils.image_dataset_from_directory(data / "val", image_size=(SIZE, SIZE), batch_size=batch_size,
                                                   shuffle=False)
    train, val = train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=2)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "val_acc": float(history.history["val_accuracy"][-1]),
            "best_val_acc": float(max(history.history["val_accuracy"]))}


def edgecnn_head(data: Path, weights: Path, epochs: int, batch_size: int, seed: int, out: Path,
                 overwrite=False) -> dict:
    from edgecnn.train.finetune import finetune

    result = finetune(data, out, backbone="mobilenet_v1", alpha=0.5, input_size=SIZE, weights=str(weights),
                      epochs=epochs, fine_tune_epochs=0, patience=epochs, batch_size=batch_size, seed=seed,
                      overwrite=overwrite)
    t = result["timings"]
    seconds = t["dataset_s"] + t["features_s"] + t["phase1_s"]
    return {"seconds": seconds, "val_acc": result["metrics"]["val"]["accuracy"], "timings": t}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    data = shared / "datasets" / "hymenoptera"
    weights = shared / "models" / "pretrained" / WEIGHTS
    for need in (data, weights):
        if not need.exists():
            sys.exit(f"needs {need}: pass --shared DIR, the folder holding datasets/ and models/pretrained/")

    log(f"plain Keras recipe: {args.epochs} epochs...")
    plain = plain_keras(data, weights, args.epochs, args.batch_size, args.seed)
    log(f"edgecnn finetune head phase: {args.epochs} epochs...")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EDGECNN_CACHE_DIR"] = str(Path(tmp) / "cache")  # nothing decoded beforehand
        ours = edgecnn_head(data, weights, args.epochs, args.batch_size, args.seed, Path(tmp) / "run")
        log("edgecnn again with --overwrite: the feature cache in RUN_DIR/.cache is reused...")
        warm = edgecnn_head(data, weights, args.epochs, args.batch_size, args.seed, Path(tmp) / "run", True)
    from edgecnn.train.distribute import make_strategy, describe

    result = {
        "plain_s_per_epoch": round(plain["seconds"] / args.epochs, 3),
        "edgecnn_s_per_epoch": round(ours["seconds"] / args.epochs, 3),
        "speedup": round(plain["seconds"] / ours["seconds"], 2),
        "plain_val_acc": round(plain["val_acc"], 4),
        "edgecnn_val_acc": round(ours["val_acc"], 4),
        "plain_best_val_acc": round(plain["best_val_acc"], 4),
        "edgecnn_cached_s_per_epoch": round(warm["seconds"] / args.epochs, 3),
        "cached_speedup": round(plain["seconds"] / warm["seconds"], 2),
        "epochs": args.epochs,
        "edgecnn_split_s": {k: round(ours["timings"][k], 2) for k in ("dataset_s", "features_s", "phase1_s")},
        "device": describe(make_strategy("auto"))["device"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
