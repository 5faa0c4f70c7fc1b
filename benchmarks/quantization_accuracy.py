"""Accuracy after int8 quantization, before and after the remedy loop, on hymenoptera.

For each pretrained base (MobileNet v1 0.5/160 and MobileNetV2 1.0/224 from
``SHARED/models/pretrained``): train the classifier head on cached features of the train split,
convert to full-integer int8 (PTQ), then run the remedy loop of ``convert --int8 --max-drop``.
The remedy chooses on images it sees, so hymenoptera's ``val`` is split (seeded, stratified) into a
*selection* half, given to the remedy, and a *test* half that only measures. Drops are on the
test half, in percentage points.

``qat_int8_acc`` is the int8 export of :func:`edgecnn.compress.qat.train_qat` (what ``edgecnn qat`` trains:
early stopping on the selection half), on the test half.

Reproducible: Python, numpy and TensorFlow seeds, op determinism, and TensorFlow's thread pools set
(``--threads``); all are recorded in the JSON, with the TensorFlow version.

Prints progress on stderr and one JSON object as the last line of stdout::

    {"bases": [{"base", "float_acc", "ptq_acc", "bias_corrected_acc", "qat_int8_acc", "remedied_acc",
                "ptq_drop_pp", "remedied_drop_pp", "int8_bytes", "remedied_bytes", "remedied_quantization",
                ...}, ...], "seed", "threads", "tensorflow", "max_drop_pp", "max_flips_pct"}

``bias_corrected_*`` is the integer-only model after bias correction (what ``convert --int8`` writes by
default); ``int8_bytes`` is the plain full-integer model; ``remedied_bytes`` and ``remedied_quantization`` describe
the model the remedy kept (int8 with float layers, or float16 when no integer model was within).

Usage: ``python benchmarks/quantization_accuracy.py [--shared DIR] [--max-drop 0.5] [--max-flips 2]``
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BASES = (("mobilenet_v1", 0.5, 160), ("mobilenet_v2", 1.0, 224))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def halves(samples, seed: int):
    """Split samples per class with a seeded shuffle: (selection, test)."""
    rng = np.random.default_rng(seed)
    selection, test = [], []
    for label in sorted({s.label for s in samples}):
        pool = sorted((s for s in samples if s.label == label), key=lambda s: str(s.path))
        order = rng.permutation(len(pool))
        half = len(pool) // 2
        selection += [pool[i] for i in order[:half]]
        test += [pool[i] for i in order[half:]]
    return selection, test


def train_head(model, x, y, epochs: int):
    """Phase 1 of finetune: frozen base, head trained on cached pooled features."""
    from edgecnn.models.classifier import feature_extractor, head_model
    from edgecnn.tf import keras

    feats = feature_extractor(model).predict(x.astype(np.float32), batch_size=32, verbose=0)
    head = head_model(model)
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    head.fit(feats, y, epochs=epochs, batch_size=32, verbose=0, shuffle=True)


def accuracy(probs, y) -> float:
    from edgecnn.devices.decision import top1

    return float((top1(probs) == y).mean())


def bench_base(backbone, alpha, size, dataset, weights_dir, max_drop, max_flips, seed, epochs):
    from edgecnn.converters.bias_correction import bias_correct
    from edgecnn.converters.representative import stratified
    from edgecnn.converters.remedy import remedy_convert
    from edgecnn.compress.qat import train_qat
    from edgecnn.converters.tflite import convert_model, predict_tflite
    from edgecnn.data.pixels import load_images
    from edgecnn.models.classifier import build_classifier, keras_probs
    from edgecnn.models.registry import get_backbone

    from edgecnn.tf import keras, tf

    keras.utils.set_random_seed(seed)  # Python, numpy and TF seeds: the head and QAT are repeatable
    tf.config.experimental.enable_op_determinism()
    t0 = time.time()
    # The shared files spell the width with one decimal (mobilenet_v2_1.0_224...); the registry may not.
    names = [get_backbone(backbone).weights_filename(alpha, size), f"{backbone}_{alpha:.1f}_{size}_imagenet_notop.h5"]
    weights = next((Path(weights_dir) / n for n in names if (Path(weights_dir) / n).is_file()),
                   Path(weights_dir) / names[0])
    model, _ = build_classifier(len(dataset.labels), backbone, size, alpha, weights=str(weights))
    train_x, train_y = load_images(dataset.splits["train"], size, "area")
    train_head(model, train_x, train_y, epochs)
    selection, test = halves(dataset.splits["val"], seed)
    sel_x, sel_y = load_images(selection, size, "area")
    test_x, test_y = load_images(test, size, "area")
    rep_samples = stratified(dataset.splits["train"], len(dataset.labels), 50, seed)
    rep, _ = load_images(rep_samples, size, "area")

    float_acc = accuracy(keras_probs(model, test_x), test_y)
    ptq = convert_model(model, "int8", rep, io="uint8")
    ptq_acc = accuracy(predict_tflite(ptq, test_x), test_y)
    bc_acc = accuracy(predict_tflite(convert_model(bias_correct(model, rep)[0], "int8", rep, io="uint8"), test_x),
                      test_y)
    log(f"{backbone}: float {float_acc:.4f}, ptq {ptq_acc:.4f}, bias-corrected ptq {bc_acc:.4f} on {len(test_y)} "
        "test images")
    t_qat = time.time()
    qat_model, qat_report = train_qat(model, (train_x, train_y), (sel_x, sel_y), dataset.labels, rep, seed=seed,
                                      log=lambda m: log(f"  {m}"))
    qat_acc = accuracy(predict_tflite(convert_model(qat_model, "int8", rep, io="uint8"), test_x), test_y)
    log(f"{backbone}: QAT int8 {qat_acc:.4f} on the test half (epoch {qat_report['best_epoch']} kept, "
        f"{time.time() - t_qat:.0f} s)")
    # as `convert --max-drop` does: flips against the float model counted on selection, mirrored
    # selection, train and mirrored train images; the QAT rung reuses the model trained above
    result = remedy_convert(model, rep, sel_x, sel_y, max_drop, max_flips, qat=lambda m: qat_model,
                            log=lambda m: log(f"  remedy {m}"),
                            fidelity_x=np.concatenate([sel_x[:, :, ::-1], train_x, train_x[:, :, ::-1]]))
    remedied_probs = predict_tflite(result["content"], test_x)
    remedied_acc = accuracy(remedied_probs, test_y)
    from edgecnn.devices.decision import top1

    float_test = keras_probs(model, test_x)
    return {
        "base": f"{backbone}_{alpha:.1f}_{size}",
        "float_acc": round(float_acc, 4),
        "ptq_acc": round(ptq_acc, 4),
        "remedied_acc": round(remedied_acc, 4),
        "ptq_drop_pp": round((float_acc - ptq_acc) * 100, 2),
        "bias_corrected_acc": round(bc_acc, 4),
        "bias_corrected_drop_pp": round((float_acc - bc_acc) * 100, 2),
        "qat_int8_acc": round(qat_acc, 4),
        "qat_drop_pp": round((float_acc - qat_acc) * 100, 2),
        "qat_best_epoch": qat_report["best_epoch"],
        "remedied_drop_pp": round((float_acc - remedied_acc) * 100, 2),
        "remedied_vs_bias_corrected_pp": round((remedied_acc - bc_acc) * 100, 2),
        "int8_bytes": len(ptq),
        "remedied_bytes": len(result["content"]),
        "remedied_quantization": result["quantization"],
        "remedied_agreement": round(float(np.mean(top1(remedied_probs) == top1(float_test))), 4),
        "remedy_choice": result["chosen"],
        "remedy_attempts": [{k: a.get(k) for k in ("name", "quantization", "drop_pp", "flips", "flip_pct",
                                                   "flip_images", "bytes", "float_layers", "skipped", "error",
                                                   "worse_than_ptq")}
                            for a in result["attempts"]],
        "n_selection": len(sel_y),
        "n_test": len(test_y),
        "seconds": round(time.time() - t0, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared folder (default ../shared)")
    parser.add_argument("--max-drop", type=float, default=0.5, help="the remedy's allowed accuracy drop (pp)")
    parser.add_argument("--max-flips", type=float, default=None, help="the remedy's allowed flips (%%; default: "
                        "convert's)")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra- and inter-op threads")
    parser.add_argument("--epochs", type=int, default=30, help="head training epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bases", nargs="*", default=[b[0] for b in BASES], help="backbones to run")
    args = parser.parse_args(argv)

    from edgecnn.converters.criteria import DEFAULT_MAX_FLIPS_PCT
    from edgecnn.data.dataset import load_dataset
    from edgecnn.tf import tf

    # Fixed thread pools before any TF op: reductions then add in the same order on every run.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    max_flips = DEFAULT_MAX_FLIPS_PCT if args.max_flips is None else args.max_flips

    shared = Path(args.shared)
    data_dir = shared / "datasets" / "hymenoptera"
    weights_dir = shared / "models" / "pretrained"
    if not data_dir.is_dir() or not weights_dir.is_dir():
        sys.exit(f"needs {data_dir} and {weights_dir}: pass --shared DIR")
    dataset = load_dataset(data_dir, seed=args.seed)
    log(f"hymenoptera: {len(dataset.splits['train'])} train, {len(dataset.splits['val'])} val images")
    out = [bench_base(b, a, s, dataset, weights_dir, args.max_drop, max_flips, args.seed, args.epochs)
           for b, a, s in BASES if b in args.bases]
    print(json.dumps({"bases": out, "max_drop_pp": args.max_drop, "max_flips_pct": max_flips, "seed": args.seed,
                      "threads": {"tf_intra_op": args.threads, "tf_inter_op": args.threads,
                                  "tflite": "interpreter default"},
                      "op_determinism": True, "head_epochs": args.epochs, "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
