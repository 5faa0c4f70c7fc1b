"""``edgecnn demo`` steps of compression and conversion (see ``edgecnn.demo``: ``step(ctx) -> str``).

* ``convert``: the demo run -> OUT/bundle, int8 with uint8 I/O, calibrated on 64 training images,
  with golden samples; sets ``ctx["bundle_dir"]`` and ``ctx["convert"]``.
* ``prune``: the demo run pruned to 50% (polynomial schedule, distillation) -> OUT/run_pruned, then
  converted to int8 -> OUT/bundle_pruned; reports sparsity, accuracy and the gzipped size.

Registered in ``edgecnn.demo`` with ``add_step("convert", convert_step, after="finetune")`` and
``add_step("prune", prune_step, after="convert")``.
"""

import gzip
from pathlib import Path

DEMO_PRUNE = {"sparsity": 0.5, "epochs": 3, "lr": 3e-4, "augment": "none", "seed": 0}
DEMO_CALIBRATION_SIZE = 64


def convert_step(ctx) -> str:
    """Convert the demo run to an int8 bundle."""
    from edgecnn.converters.bundle_writer import convert_run

    out = ctx["out"] / "bundle"
    result = convert_run(ctx["run_dir"], out, mode="int8", calibration_size=DEMO_CALIBRATION_SIZE)
    ctx["bundle_dir"], ctx["convert"] = Path(out), result
    met = result["metrics"]
    return (f"convert: int8 model.tflite {result['bytes'] / 1e6:.2f} MB, {met['data']['split']} accuracy float "
            f"{met['float_accuracy']:.3f} -> int8 {met['quantized_accuracy']:.3f} (top-1 agreement "
            f"{met['top1_agreement']:.3f}), {len(result['golden'])} golden samples -> {out}")


def prune_step(ctx) -> str:
    """Prune the demo run to 50% and convert the pruned run to int8."""
    from edgecnn.converters.bundle_writer import convert_run
    from edgecnn.prune import prune_run

    report = prune_run(ctx["run_dir"], ctx["out"] / "run_pruned", **DEMO_PRUNE)
    bundle = ctx["out"] / "bundle_pruned"
    result = convert_run(ctx["out"] / "run_pruned", bundle, mode="int8", calibration_size=DEMO_CALIBRATION_SIZE,
                         golden=0)
    ctx["prune"], ctx["pruned_bundle_dir"] = report, bundle
    pruned_gz = len(gzip.compress((bundle / "model.tflite").read_bytes(), 9))
    line = (f"prune: {report['sparsity']['pruned_sparsity']:.2f} sparsity, val accuracy "
            f"{report['val_accuracy_before']:.3f} -> {report['val_accuracy_after']:.3f} (int8 "
            f"{result['metrics']['quantized_accuracy']:.3f}); int8 gzipped {pruned_gz / 1e6:.2f} MB")
    plain = ctx.get("bundle_dir")
    if plain is not None and (Path(plain) / "model.tflite").is_file():
        line += f" = {pruned_gz / (Path(plain) / 'model.tflite').stat().st_size:.2f} x the plain int8 file"
    return line + f" -> {bundle}"
