"""Where to cut the base: every candidate cut's int8 size, host latency and int8 val accuracy, and ``auto``.

Data: hymenoptera (``SHARED/datasets/hymenoptera``) and the pretrained MobileNet v2 1.0/224 base
(``SHARED/models/pretrained``), both from ``--shared`` (default ../shared).

For each cut point of the base (``edgecnn.models.cuts.cut_points``; ``--every N`` keeps every N-th and
always the last, the whole base): a head-only ``finetune --cut-at K`` (``--epochs`` on cached features,
seed 0), ``convert --int8`` with its defaults, the int8 model's size, its latency measured here with the
board's benchmark (``edgecnn.devices.benchmark``, 1 thread, p50), and its int8 accuracy on val (the
converted model on every val image). Then ``finetune --cut-at auto`` on the same data (its probe:
one pass of the base, a linear probe per cut, the smallest cut within ``--max-drop`` pp of the best):
what it chose and that model's figures.

Prints progress on stderr and one JSON object as the last line of stdout::

    {"cuts": [{"index", "cut_at", "int8_kb", "latency_ms", "int8_val_acc", "probe_val_acc"}], "full": {...},
     "auto": {...}, "auto_size_ratio", "auto_latency_ratio", "auto_acc_drop_pp", "probe_s",
     "two_plain_epochs_s", "probe_over_two_epochs", "max_drop_pp", "device"}

Goal (issue 23): the auto cut within 2 pp of the full model's int8 accuracy with ``auto_size_ratio``
<= 0.5 and ``auto_latency_ratio`` <= 0.7, and ``probe_over_two_epochs`` < 1 (the probe's pass and
fits, on the images finetune's scan already decoded, against two plain Keras training epochs of the
uncut base, which decode as they go). Latency here is this machine's (x86, XNNPACK), never a board's.

Usage: ``python benchmarks/cut_tradeoff.py [--shared DIR] [--epochs 10] [--every 1] [--max-drop 1.0]``
"""

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "mobilenet_v2_1.0_224_imagenet_notop.h5"
BASE = dict(backbone="mobilenet_v2", alpha=1.0, input_size=224)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def measure(run: Path, bundle: Path, val) -> dict:
    """Convert a run to int8 and measure the bundle's model: size, host p50 latency, int8 val accuracy."""
    from edgecnn.compress.convert import convert_run
    from edgecnn.converters.tflite import predict_tflite
    from edgecnn.devices.decision import top1
    from edgecnn.search.host_target import host_benchmark
    from edgecnn.search.target_base import stat_from_report

    convert_run(run, bundle, mode="int8")
    model = bundle / "model.tflite"
    x, y = val
    return {"int8_kb": round(model.stat().st_size / 1024, 1),
            "latency_ms": round(stat_from_report(host_benchmark(model, runs=30, threads=1), "p50"), 3),
            "int8_val_acc": round(float(np.mean(top1(predict_tflite(model.read_bytes(), x)) == y)), 4)}


def plain_epochs(data: Path, weights: Path, size: int, epochs: int = 2, batch_size: int = 32) -> float:
    """Seconds of ``epochs`` plain Keras training epochs (frozen MobileNet v2 + pooling + dense on the
    train folder, decoding included, no validation): the yardstick of the probe's cost."""
    import time

    from edgecnn.tf import keras, tf

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=1.0, include_top=False,
                                          weights=str(weights))
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = base(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs), training=False)
    x = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    started = time.perf_counter()
    train = keras.utils.image_dataset_from_directory(data / "train", image_size=(size, size),
                                                     batch_size=batch_size, seed=0)
    model.fit(train.prefetch(tf.data.AUTOTUNE), epochs=epochs, verbose=0)
    return time.perf_counter() - started


def train(data, weights, out: Path, cut_at, epochs: int, max_drop: float) -> dict:
    from edgecnn.train.finetune import finetune

    finetune(data, out, quiet=True, weights=str(weights), epochs=epochs, fine_tune_epochs=0, seed=0,
             cut_at=cut_at, cut_max_drop=max_drop, **BASE)
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--every", type=int, default=1, help="measure every N-th cut (the last always)")
    parser.add_argument("--max-drop", type=float, default=1.0, help="auto's --cut-max-drop (pp)")
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    data, weights = shared / "datasets" / "hymenoptera", shared / "models" / "pretrained" / WEIGHTS
    if not data.is_dir() or not weights.is_file():
        sys.exit(f"needs {data} and {weights}: pass --shared DIR")

    from edgecnn.converters.representative import run_samples
    from edgecnn.data.pixels import load_images
    from edgecnn.models.classifier import load_base
    from edgecnn.models.cuts import cut_points

    found = load_base(weights=str(weights), **BASE)
    names = cut_points(found.model, found.cut_pattern)
    picked = sorted(set(range(0, len(names), max(1, args.every))) | {len(names) - 1})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log(f"finetune --cut-at auto (probe of {len(names)} cuts)...")
        auto_run = train(data, weights, tmp / "auto", "auto", args.epochs, args.max_drop)
        probe = {r["index"]: r for r in auto_run["cut_probe"]["cuts"]}
        val = load_images(run_samples(auto_run, "val"), found.size)
        for k in picked:
            log(f"cut {k}/{len(names) - 1} at {names[k]}: finetune, convert --int8, measure...")
            train(data, weights, tmp / f"run{k}", k, args.epochs, args.max_drop)
            row = {"index": k, "cut_at": names[k], **measure(tmp / f"run{k}", tmp / f"bundle{k}", val),
                   "probe_val_acc": round(probe[k]["val_accuracy"], 4)}
            log(f"  {row}")
            rows.append(row)
        chosen = auto_run["cut_probe"]["auto"]["index"]
        auto = next((r for r in rows if r["index"] == chosen), None)
        if auto is None:  # --every skipped it: measure the auto run itself
            auto = {"index": chosen, "cut_at": names[chosen], **measure(tmp / "auto", tmp / "bundle_auto", val),
                    "probe_val_acc": round(probe[chosen]["val_accuracy"], 4)}
    log("two plain Keras epochs, the yardstick of the probe's cost...")
    two_epochs = plain_epochs(data, weights, found.size)
    probe_s = auto_run["cut_probe"].get("seconds")
    full = rows[-1]
    result = {"cuts": rows, "full": full, "auto": auto,
              "auto_size_ratio": round(auto["int8_kb"] / full["int8_kb"], 3),
              "auto_latency_ratio": round(auto["latency_ms"] / full["latency_ms"], 3),
              "auto_acc_drop_pp": round(100 * (full["int8_val_acc"] - auto["int8_val_acc"]), 2),
              "probe_s": probe_s, "two_plain_epochs_s": round(two_epochs, 3),
              "probe_over_two_epochs": round(probe_s / two_epochs, 3) if probe_s else None,
              "max_drop_pp": args.max_drop, "epochs": args.epochs,
              "device": f"{platform.machine()} host, 1 thread (not a board)"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
