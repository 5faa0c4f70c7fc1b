"""Time of ``edgecnn convert --int8`` against the bare TFLiteConverter script a user writes, and where it goes.

Data: hymenoptera and the pretrained MobileNet v1 0.5/160 base from ``--shared`` (default ../shared).
A head-only finetune run is trained first (not timed). Both sides then convert that run's model
with the same 100 calibration images (the ones ``convert`` draws from the train split):

* bare: ``tf_keras.models.load_model``, decode and resize the 100 images, a representative-dataset
  generator, ``TFLiteConverter.from_keras_model`` with full-integer ops and uint8 I/O, ``convert()``;
* edgecnn: ``convert_run(RUN_DIR, BUNDLE)`` with every default (safe model load, calibration
  images, bias correction, conversion, the integer-only check, the quick accuracy pass on held-out
  images, golden samples, the manifest and the atomic write).

Each side runs ``--repeats`` times, alternating, and the fastest run of each counts. The edgecnn
time is split by step (the module functions of ``edgecnn.compress.convert`` and the converter calls
inside them, wrapped with timers). Both int8 models are scored on the val split.

Prints progress on stderr and one JSON object as the last line of stdout::

    {"bare_s", "edgecnn_s", "ratio", "bare_int8_val_acc", "edgecnn_int8_val_acc", "edgecnn_split_s",
     "calibration_images", "val_images", "repeats", "tensorflow"}

Goal (issue 16): ``ratio`` (edgecnn over bare) <= 1.5.

Usage: ``python benchmarks/convert_speed.py [--shared DIR] [--repeats 2]``
"""

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "mobilenet_v1_0.5_160_imagenet_notop.h5"
CALIBRATION = 100


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def train_run(data: Path, weights: Path, out: Path) -> Path:
    from edgecnn.train.finetune import finetune

    finetune(data, out, quiet=True, weights=str(weights), backbone="mobilenet_v1", alpha=0.5, input_size=160,
             epochs=10, fine_tune_epochs=0, seed=0)
    return out


def bare(run_dir: Path, samples) -> tuple:
    """The script from the TFLite guide, on the same images: ``(seconds, model bytes)``."""
    from PIL import Image

    from edgecnn.tf import keras, tf

    t0 = time.perf_counter()
    model = keras.models.load_model(run_dir / "model.keras")
    images = [np.asarray(Image.open(s.path).convert("RGB").resize((160, 160)), dtype=np.float32) for s in samples]

    def representative():
        for image in images:
            yield [image[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    content = converter.convert()
    return time.perf_counter() - t0, content


# What each timed step is, by the function it wraps: (module, attribute, name in the split).
STEPS = (("edgecnn.compress.convert", "_load_source", "load run and model"),
         ("edgecnn.compress.convert", "_representative", "calibration images"),
         ("edgecnn.converters.bias_correction", "bias_correct", "bias correction"),
         ("edgecnn.converters.tflite", "convert_model", "conversion"),
         ("edgecnn.converters.tflite", "verify_tflite", "integer-only check"),
         ("edgecnn.compress.convert", "_quick_metrics", "accuracy pass"),
         ("edgecnn.compress.convert", "_golden", "golden samples"),
         ("edgecnn.compress.convert", "_write", "manifest and write"))


def timed_steps(split: dict):
    """Wrap every step of STEPS so its seconds add up in ``split``; returns an undo function."""
    import importlib

    undo = []
    for module_name, attr, name in STEPS:
        module = importlib.import_module(module_name)
        original = getattr(module, attr)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                split[_name] += time.perf_counter() - t0

        setattr(module, attr, wrapper)
        undo.append((module, attr, original))
    return lambda: [setattr(m, a, o) for m, a, o in undo]


def edgecnn(run_dir: Path, out: Path) -> tuple:
    """``(seconds, model bytes, split)`` of ``convert_run`` with its defaults."""
    from edgecnn.compress.convert import convert_run

    split = defaultdict(float)
    undo = timed_steps(split)
    try:
        t0 = time.perf_counter()
        convert_run(run_dir, out)
        seconds = time.perf_counter() - t0
    finally:
        undo()
    return seconds, (out / "model.tflite").read_bytes(), dict(split)


def val_accuracy(content: bytes, x, y) -> float:
    from edgecnn.converters.tflite import predict_tflite
    from edgecnn.devices.decision import top1

    return round(float(np.mean(top1(predict_tflite(content, x)) == y)), 4)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    shared = Path(args.shared)
    data, weights = shared / "datasets" / "hymenoptera", shared / "models" / "pretrained" / WEIGHTS
    if not data.is_dir() or not weights.is_file():
        sys.exit(f"needs {data} and {weights}: pass --shared DIR")

    from edgecnn.compress.retrain import split_arrays
    from edgecnn.converters.representative import draw_from_run
    from edgecnn.run import load_run
    from edgecnn.tf import tf

    work = Path(tempfile.mkdtemp(prefix="convert_speed_"))
    log("training the head-only run (not timed)")
    run_dir = train_run(data, weights, work / "run")
    run = load_run(run_dir)
    samples, _ = draw_from_run(run, CALIBRATION, 0)
    runs = {"bare": [], "edgecnn": []}
    for k in range(args.repeats):
        seconds, bare_content = bare(run_dir, samples)
        runs["bare"].append(seconds)
        log(f"bare converter: {seconds:.2f} s")
        seconds, ours, split = edgecnn(run_dir, work / f"bundle{k}")
        runs["edgecnn"].append((seconds, split))
        log(f"edgecnn convert --int8: {seconds:.2f} s (" + ", ".join(f"{n} {s:.2f} s" for n, s in split.items()) + ")")
    x, y = split_arrays(run, "val")
    best = min(runs["edgecnn"], key=lambda r: r[0])
    bare_s = min(runs["bare"])
    print(json.dumps({"bare_s": round(bare_s, 2), "edgecnn_s": round(best[0], 2), "ratio": round(best[0] / bare_s, 2),
                      "bare_int8_val_acc": val_accuracy(bare_content, x, y),
                      "edgecnn_int8_val_acc": val_accuracy(ours, x, y),
                      "edgecnn_split_s": {n: round(s, 2) for n, s in best[1].items()},
                      "calibration_images": len(samples), "val_images": int(len(y)), "repeats": args.repeats,
                      "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
