"""Search quality: does `edgecnn search` beat the default fine-tune configuration within a budget?

Hymenoptera (../shared/datasets/hymenoptera, train/ and val/) with the three ImageNet-pretrained
bases of ../shared/models/pretrained (MobileNet v1 0.25/128, v1 0.5/160, v2 1.0/224), target
``host``. The latency budget is set from this machine so that it excludes the largest base: the
geometric mean of the measured int8 latencies of the v1 0.5/160 and v2 1.0/224 architectures.
The size budget excludes nothing (4 MB).

* ``default_int8_acc``: ``edgecnn finetune`` with every default option on the largest base that
  fits the budget, then ``edgecnn convert --int8``; int8 accuracy on val.
* ``best_int8_acc``: the search's best trial within budget, exported (``--export best``: the
  configuration fine-tuned in full by ``edgecnn finetune`` and converted the same way); int8
  accuracy on val, measured like the default. ``search_trial_int8_acc`` is the trial's own figure.

Prints progress on stderr and one JSON object as the last line of stdout: ``trials``,
``budget_ms``, ``best_int8_acc``, ``best_latency_ms``, ``default_int8_acc``, ``seconds`` (and more).
Goal: best_int8_acc >= default_int8_acc, within budget, in under 30 minutes.

    python benchmarks/search_quality.py [--shared ../shared] [--trials 12] [--out DIR]
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def bundle_int8_accuracy(bundle_dir, data_dir):
    """int8 top-1 accuracy of a bundle's model on DATA_DIR/val, images resized like the search does."""
    import numpy as np

    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.data.dataset import load_dataset
    from edgecnn.data.pixels import load_images
    from edgecnn.search.int8 import int8_accuracy

    manifest = load_manifest(bundle_dir)
    size = manifest["model"]["input_size"]
    dataset = load_dataset(data_dir)
    if list(dataset.labels) != list(manifest["labels"]):
        raise SystemExit(f"label order differs: {dataset.labels} vs {manifest['labels']}")
    x, y = load_images(dataset.splits["val"], (int(size[0]), int(size[1])), manifest["model"].get("resize", "area"))
    content = (Path(bundle_dir) / manifest["model"]["tflite"]).read_bytes()
    return int8_accuracy(content, x, np.asarray(y)), len(content) / 1024.0


def probe_latency(backbone, alpha, size, weights):
    """Measured int8 latency (p50, ms) of a base's architecture on this host (untrained head)."""
    import numpy as np

    from edgecnn.models.classifier import build_classifier
    from edgecnn.search.host_target import HostTarget
    from edgecnn.search.int8 import convert_int8

    model, _ = build_classifier(2, backbone=backbone, input_size=size, alpha=alpha, weights=weights)
    rep = np.random.default_rng(0).integers(0, 256, size=(8, size, size, 3)).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.tflite"
        path.write_bytes(convert_int8(model, rep))
        return HostTarget().measure(path)["latency_ms"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--out", default=None, help="work folder (default: a temporary folder)")
    parser.add_argument("--budget-ms", type=float, default=None, help="override the measured latency budget")
    args = parser.parse_args(argv)

    shared = Path(args.shared)
    data = shared / "datasets" / "hymenoptera"
    weights = shared / "models" / "pretrained"
    if not data.is_dir() or not weights.is_dir():
        raise SystemExit(f"needs {data} and {weights} (--shared DIR)")
    os.environ["EDGECNN_WEIGHTS_DIR"] = str(weights)
    work = Path(args.out or tempfile.mkdtemp(prefix="edgecnn-search-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    bases = [("mobilenet_v1", 0.25, 128), ("mobilenet_v1", 0.5, 160), ("mobilenet_v2", 1.0, 224)]
    from edgecnn.search.space import weights_file

    wfile = {b: str(weights_file(weights, *b)) for b in bases}
    lat = {b: probe_latency(*b, wfile[b]) for b in bases}
    for b, v in lat.items():
        log(f"probe: {b[0]} {b[1]:g}/{b[2]}: {v:.2f} ms int8 p50 on this host")
    budget = args.budget_ms or math.sqrt(lat[bases[1]] * lat[bases[2]])
    fits = [b for b in bases if lat[b] <= budget]
    if bases[2] in fits or not fits:
        raise SystemExit(f"budget {budget:.2f} ms does not exclude the largest base: {lat}")
    default_base = max(fits, key=lambda b: lat[b])
    log(f"budget {budget:.2f} ms excludes {bases[2][0]} {bases[2][1]:g}/{bases[2][2]}; default config on "
        f"{default_base}")

    # The default finetune configuration on the largest base within budget.
    from edgecnn.compress.convert import convert_run
    from edgecnn.train.finetune import finetune

    t1 = time.time()
    finetune(data, work / "default_run", backbone=default_base[0], alpha=default_base[1],
             input_size=default_base[2], weights=wfile[default_base], overwrite=True, quiet=True)
    convert_run(work / "default_run", work / "default_bundle", mode="int8")
    default_acc, default_kb = bundle_int8_accuracy(work / "default_bundle", data)
    default_seconds = time.time() - t1
    log(f"default: int8 acc {default_acc:.3f} ({default_kb:.0f} KB) in {default_seconds:.0f} s")

    # The search, then the export of its best configuration.
    from edgecnn.search.runner import search

    t2 = time.time()
    result = search(data, work / "search", target="host", max_latency_ms=budget, max_size_kb=4096, trials=args.trials,
                    weights="imagenet", seed=0, export="best", progress=log)
    search_seconds = time.time() - t2
    best = result["best"]
    export = result.get("export") or {}
    best_acc, best_kb = bundle_int8_accuracy(export["bundle"], data)
    from edgecnn.bundle.manifest import load_manifest
    from edgecnn.search.host_target import HostTarget

    manifest = load_manifest(export["bundle"])
    best_latency = HostTarget().measure(Path(export["bundle"]) / manifest["model"]["tflite"])["latency_ms"]
    out = {
        "trials": args.trials,
        "budget_ms": round(budget, 3),
        "best_int8_acc": round(best_acc, 4),
        "best_latency_ms": round(best_latency, 3),
        "best_size_kb": round(best_kb, 1),
        "best_config": best["params"],
        "search_trial_int8_acc": best["int8_acc"],
        "search_trial_latency_ms": best["latency_ms"],
        "default_int8_acc": round(default_acc, 4),
        "default_base": f"{default_base[0]}:{default_base[1]:g}:{default_base[2]}",
        "probe_latency_ms": {f"{b[0]}:{b[1]:g}:{b[2]}": round(v, 3) for b, v in lat.items()},
        "counts": result["counts"],
        "within_budget": bool(best_latency <= budget),
        "goal_met": bool(best_acc >= default_acc and best_latency <= budget),
        "default_seconds": round(default_seconds, 1),
        "search_seconds": round(search_seconds, 1),
        "seconds": round(time.time() - t0, 1),
        "work_dir": str(work),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
