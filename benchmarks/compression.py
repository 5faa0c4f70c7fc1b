"""Sizes, accuracy and speed of edgecnn's conversions and of 50% pruning, on a real transfer-learning run.

Data: hymenoptera (``SHARED/datasets/hymenoptera``; val 153 images) and the pretrained MobileNet
v1 0.5/160 base (``SHARED/models/pretrained``), from ``--shared`` (default ../shared). One run:

1. ``finetune``: the head on the frozen pretrained base (15 epochs, as the tests' hymenoptera_run);
2. ``convert`` to float32, float16 and int8 (100 calibration images from train; int8 with
   ``convert``'s default bias correction, and plain PTQ beside it); accuracies on the whole val
   split with the LiteRT interpreter;
3. ``prune`` 50% with ``--method obs`` (one-shot Optimal Brain Surgeon reconstruction on the train
   images, mirrored and augmented; no fine-tuning) and per-layer sparsity from OBS damage on train
   images (``--allocation sensitivity``: the same number of zeros as 50% everywhere), kernels of at
   least ``--min-params`` weights; then ``convert --int8``: gzip of the pruned int8 file over the
   plain int8 file, and its accuracy against the unpruned float model. ``--prune-method magnitude``
   runs the tfmot recipe instead (40 epochs at ``--prune-lr`` 2e-4, distillation, pruned layers and
   head trained);
4. speed: int8 against float32 with the same LiteRT interpreter and threads, and the int8
   interpreter against the Keras model, one image at a time (median of ``--repeats`` invokes).

Prints progress on stderr and one JSON object as the last line of stdout, with the keys ``params``,
``float32_bytes``, ``float16_bytes``, ``int8_bytes``, ``int8_bytes_per_param``, ``float_acc``,
``int8_acc``, ``int8_drop_pp`` (goal <= 1.0; ``convert --int8`` with its default bias correction, and
``int8_plain_*`` without it, side by side), ``pruned_gzip_over_int8_bytes`` (goal <= 0.60),
``pruned_int8_acc``, ``pruned_drop_pp`` (goal <= 1.0), ``int8_over_float32_tflite_speedup``,
``tflite_int8_over_keras_speedup`` (no goal: on x86 without VNNI int8 can be slower than float32).

Usage: ``python benchmarks/compression.py [--shared DIR] [--work DIR] [--prune-method magnitude]
[--allocation uniform]``
"""

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def median_latency(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--work", default=None, help="Folder for the runs and bundles (default: a temp folder).")
    parser.add_argument("--prune-method", choices=["magnitude", "obs"], default="obs",
                        help="obs: one-shot OBS reconstruction on train images; magnitude: tfmot with fine-tuning")
    parser.add_argument("--prune-epochs", type=int, default=None,
                        help="fine-tuning epochs after pruning (default: 0 for obs, 40 for magnitude)")
    parser.add_argument("--prune-lr", type=float, default=2e-4)
    parser.add_argument("--prune-train-layers", choices=["all", "pruned"], default="pruned")
    parser.add_argument("--allocation", choices=["uniform", "sensitivity"], default="sensitivity",
                        help="per-layer sparsity: uniform, or from one-shot damage on train images")
    parser.add_argument("--min-params", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)

    import numpy as np

    from edgecnn.compress.convert import convert_run
    from edgecnn.converters.tflite import make_interpreter
    from edgecnn.compress.prune import prune_run
    from edgecnn.run import load_run_model
    from edgecnn.run import load_run
    from edgecnn.train.finetune import finetune

    shared = Path(args.shared)
    data = shared / "datasets" / "hymenoptera"
    weights = shared / "models" / "pretrained" / "mobilenet_v1_0.5_160_imagenet_notop.h5"
    for path in (data, weights):
        if not path.exists():
            sys.exit(f"missing {path}: pass --shared DIR (the folder with datasets/ and models/)")
    work = Path(args.work or tempfile.mkdtemp(prefix="edgecnn-compression-"))
    t0 = time.perf_counter()

    log("finetune (head on the pretrained base)")
    run_dir = work / "run"
    finetune(data, run_dir, quiet=True, overwrite=True, weights=str(weights), backbone="mobilenet_v1", alpha=0.5,
             input_size=160, epochs=15, fine_tune_epochs=0, patience=5, seed=0)
    results = {}
    for mode in ("float32", "float16", "int8"):
        log(f"convert --{mode}")
        results[mode] = convert_run(run_dir, work / f"bundle_{mode}", mode=mode, eval_size=None, golden=1)
    size = {m: (work / f"bundle_{m}" / "model.tflite").stat().st_size for m in results}
    model = load_run_model(load_run(run_dir))
    params = int(model.count_params())
    float_acc = results["int8"]["metrics"]["float_accuracy"]
    int8_acc = results["int8"]["metrics"]["quantized_accuracy"]
    log("convert --int8 --no-bias-correction (the baseline: plain PTQ)")
    plain = convert_run(run_dir, work / "bundle_int8_plain", eval_size=None, golden=1, bias_correction=False)["metrics"]

    t_prune = time.perf_counter()
    epochs = args.prune_epochs if args.prune_epochs is not None else (0 if args.prune_method == "obs" else 40)
    log(f"prune 50% ({args.prune_method}, {args.allocation} allocation, {epochs} epochs of fine-tuning)")
    pruned = prune_run(run_dir, work / "run_pruned", sparsity=0.5, epochs=epochs, lr=args.prune_lr,
                       min_params=args.min_params, train_layers=args.prune_train_layers, allocation=args.allocation,
                       method=args.prune_method, verbose=1, progress=log)
    pruned_seconds = time.perf_counter() - t_prune
    log("convert the pruned run --int8")
    pruned_bundle = convert_run(work / "run_pruned", work / "bundle_pruned_int8", eval_size=None, golden=1)
    pruned_gzip = len(gzip.compress((work / "bundle_pruned_int8" / "model.tflite").read_bytes(), 9))
    pruned_acc = pruned_bundle["metrics"]["quantized_accuracy"]

    log("speed")
    x = np.asarray(np.load(work / "bundle_int8" / "golden" / "000.npy"))[None]
    interps = {m: make_interpreter((work / f"bundle_{m}" / "model.tflite").read_bytes(), args.threads)
               for m in ("float32", "int8")}

    def invoke(interp, arr):
        inp = interp.get_input_details()[0]
        interp.set_tensor(inp["index"], arr.astype(inp["dtype"]))
        interp.invoke()

    lat = {m: median_latency(lambda m=m: invoke(interps[m], x), args.repeats) for m in interps}
    xf = x.astype(np.float32)
    keras_lat = median_latency(lambda: model(xf, training=False), args.repeats)

    out = {
        "params": params,
        "float32_bytes": size["float32"],
        "float16_bytes": size["float16"],
        "int8_bytes": size["int8"],
        "int8_bytes_per_param": size["int8"] / params,
        "float_acc": float_acc,
        "int8_acc": int8_acc,
        "int8_drop_pp": 100.0 * (float_acc - int8_acc),
        "int8_mean_abs_score_diff": results["int8"]["metrics"]["mean_abs_score_diff"],
        "int8_plain_acc": plain["quantized_accuracy"],
        "int8_plain_drop_pp": 100.0 * (float_acc - plain["quantized_accuracy"]),
        "int8_plain_mean_abs_score_diff": plain["mean_abs_score_diff"],
        "float16_acc": results["float16"]["metrics"]["quantized_accuracy"],
        "pruned_sparsity": pruned["sparsity"]["pruned_sparsity"],
        "pruned_overall_sparsity": pruned["sparsity"]["overall_sparsity"],
        "pruned_float_acc": pruned["val_accuracy_after"],
        "prune_recipe": {k: pruned[k] for k in ("method", "epochs", "lr", "min_params", "train_layers", "distill",
                                                "augment", "allocation")},
        "pruned_allocation": (pruned["sensitivity"] or {}).get("per_layer"),
        "prune_seconds": pruned_seconds,
        "pruned_gzip_over_int8_bytes": pruned_gzip / size["int8"],
        "int8_gzip_over_int8_bytes": len(gzip.compress((work / "bundle_int8" / "model.tflite").read_bytes(), 9))
        / size["int8"],
        "pruned_int8_acc": pruned_acc,
        "pruned_drop_pp": 100.0 * (float_acc - pruned_acc),
        "int8_over_float32_tflite_speedup": lat["float32"] / lat["int8"],
        "tflite_int8_over_keras_speedup": keras_lat / lat["int8"],
        "latency_ms": {"tflite_float32": 1e3 * lat["float32"], "tflite_int8": 1e3 * lat["int8"],
                       "keras": 1e3 * keras_lat},
        "threads": args.threads,
        "val_images": results["int8"]["metrics"]["data"]["n"],
        "seconds": time.perf_counter() - t0,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
