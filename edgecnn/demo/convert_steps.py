"""``edgecnn demo`` steps of compression and conversion (see ``edgecnn.demo.trip``: ``step(ctx) -> str``).

* ``convert``: the demo run -> OUT/bundle, int8 with the settings ``edgecnn convert --int8`` uses
  by default (nothing demo-specific); its golden samples are checked against their true class.
* ``prune``: the demo run pruned to 50% (magnitude pruning with fine-tuning and distillation) ->
  OUT/run_pruned, converted to int8 -> OUT/bundle_pruned, and checked on the test split against
  the unpruned float model: the demo fails, saying where the accuracy went, when it loses more
  than :data:`DEMO_PRUNE_MAX_DROP`.
"""

import gzip
from pathlib import Path

# Magnitude pruning to 50% over the first 60% of the steps (polynomial), the rest to recover; the
# learning rate is the training's own scale: at tfmot's usual 3e-5 a model trained from scratch in
# 25 epochs cannot recover in a few (the first demo lost 23 pp with 3 epochs at 3e-4).
DEMO_PRUNE = {"sparsity": 0.5, "method": "magnitude", "epochs": 3, "lr": 1e-3, "batch_size": 16,
              "augment": "none", "seed": 0}
DEMO_PRUNE_MAX_DROP = 5.0  # pp of test accuracy, pruned int8 against the unpruned float model


def true_labels(run: dict) -> dict:
    """File name -> class name of the run's held-out images (golden samples come from them)."""
    from edgecnn.run import split_samples

    out = {}
    for split in ("val", "test"):
        if run.get("data", {}).get("splits", {}).get(split):
            out.update({Path(p).name: run["labels"][i] for p, i in split_samples(run, split)})
    return out


def label_golden(bundle_dir, run_dir) -> list:
    """Record in the manifest each golden sample's true class and whether the model gets it right.

    A wrong golden answer is kept on purpose (the self-test proves the board reproduces the
    workstation's scores, right or wrong), and the manifest says so. Returns the golden list.
    """
    from edgecnn.bundle.manifest import load_manifest, update_manifest
    from edgecnn.devices.decision import top1
    from edgecnn.run import load_run

    manifest = load_manifest(bundle_dir)
    truth = true_labels(load_run(run_dir))
    golden = []
    for sample in manifest.get("golden", []):
        predicted = manifest["labels"][int(top1([sample["scores"]])[0])]
        entry = dict(sample, label=truth.get(sample.get("origin")), predicted=predicted)
        entry["correct"] = entry["label"] == predicted
        if not entry["correct"]:
            entry["note"] = ("a wrong answer kept on purpose: the self-test checks that the board reproduces "
                             "these scores, not that they are right")
        golden.append(entry)
    update_manifest(bundle_dir, golden=golden)
    return golden


def _golden_words(golden: list) -> str:
    wrong = [g for g in golden if not g["correct"]]
    if not wrong:
        return f"{len(golden)} golden samples (one per class), all classified correctly"
    names = ", ".join(f"{g['origin']} ({g['label']}) -> {g['predicted']}" for g in wrong)
    what = "a wrong answer" if len(wrong) == 1 else "wrong answers"
    return f"{len(golden)} golden samples, {len(wrong)} of them {what} kept on purpose (the manifest says so): {names}"


def convert_step(ctx) -> str:
    """Convert to an int8 .tflite with `edgecnn convert --int8`'s defaults and write a verified bundle."""
    from edgecnn.compress.convert import convert_run

    out = ctx["out"] / "bundle"
    result = convert_run(ctx["run_dir"], out, mode="int8")  # the defaults a CLI user gets
    ctx["bundle_dir"], ctx["convert"] = Path(out), result
    golden = label_golden(out, ctx["run_dir"])
    met = result["metrics"]
    calib = result.get("calibration") or {}
    return (f"convert: int8 model.tflite {result['bytes'] / 1e6:.2f} MB, calibrated on {calib.get('count', '?')} "
            f"training images; quick check on {met['data']['n']} {met['data']['split']} images: float "
            f"{met['float_accuracy']:.3f} -> int8 {met['quantized_accuracy']:.3f} (top-1 agreement "
            f"{met['top1_agreement']:.3f}); {_golden_words(golden)} -> {out}")


def _gzip_size(path: Path) -> int:
    return len(gzip.compress(Path(path).read_bytes(), 9))


def _recall_losses(before: dict, after: dict, labels) -> str:
    """The classes whose recall fell most, ``square 0.80 -> 0.00``, for a failure message."""
    drops = sorted(labels, key=lambda c: after["per_class"][c]["recall"] - before["per_class"][c]["recall"])
    return ", ".join(f"{c} {before['per_class'][c]['recall']:.2f} -> {after['per_class'][c]['recall']:.2f}"
                     for c in drops[:2] if after["per_class"][c]["recall"] < before["per_class"][c]["recall"])


def prune_step(ctx) -> str:
    """Zero half the weights (magnitude pruning, fine-tuned with distillation), convert to int8, check on test."""
    from edgecnn.compress.convert import convert_run
    from edgecnn.evaluation.evaluate import evaluate
    from edgecnn.compress.prune import prune_run

    run_pruned, bundle = ctx["out"] / "run_pruned", ctx["out"] / "bundle_pruned"
    report = prune_run(ctx["run_dir"], run_pruned, progress=ctx["progress"], verbose=0 if ctx["quiet"] else 2,
                       **DEMO_PRUNE)
    convert_run(run_pruned, bundle, mode="int8", golden=0)
    ctx["prune"], ctx["pruned_bundle_dir"] = report, bundle
    ev = evaluate([bundle], ctx["run_dir"])  # the unpruned float model is the reference
    name = next(iter(ev["vs_float"]))
    ref, pruned = ev["models"]["float"], ev["models"][name]
    drop = 100.0 * (ref["accuracy"] - pruned["accuracy"])
    pruned_gz = _gzip_size(bundle / "model.tflite")
    line = (f"prune: {report['sparsity']['pruned_sparsity']:.0%} of the prunable weights zeroed ({report['method']}, "
            f"{report['epochs']} epochs of fine-tuning); test accuracy: unpruned float {ref['accuracy']:.3f} -> "
            f"pruned int8 {pruned['accuracy']:.3f} ({-drop:+.1f} pp, limit -{DEMO_PRUNE_MAX_DROP:g} pp: "
            f"{'held' if drop <= DEMO_PRUNE_MAX_DROP else 'FAILED'}); int8 gzipped {pruned_gz / 1e6:.2f} MB")
    plain = ctx.get("bundle_dir")
    if plain is not None and (Path(plain) / "model.tflite").is_file():
        line += f" = {pruned_gz / _gzip_size(Path(plain) / 'model.tflite'):.2f} x the unpruned int8 file gzipped"
    if drop > DEMO_PRUNE_MAX_DROP:
        lost = _recall_losses(ref, pruned, ev["labels"])
        ctx["fail"]("prune", f"the 50% pruned int8 model is {drop:.1f} pp less accurate on the test split than the "
                           f"unpruned float model (limit {DEMO_PRUNE_MAX_DROP:g} pp)"
                           + (f"; recall fell most for {lost}" if lost else "")
                           + "; fine-tuning did not recover what pruning removed (more epochs or lower sparsity)")
    return line + f" -> {bundle}"
