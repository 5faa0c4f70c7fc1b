"""``edgecnn convert RUN_DIR --int8 --out BUNDLE_DIR``: a thin wrapper around edgecnn.compress.convert.convert_run."""

import click

from edgecnn.cli.common import emit, output_options
from edgecnn.converters.criteria import DEFAULT_MAX_FLIPS_PCT


@click.command("convert")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="The bundle folder to write.")
@click.option("--int8", "mode", flag_value="int8", help="Full-integer model calibrated on training images (default).")
@click.option("--float16", "mode", flag_value="float16", help="float16 weights, float compute.")
@click.option("--dynamic", "mode", flag_value="dynamic", help="int8 weights, float activations (no calibration).")
@click.option("--float32", "mode", flag_value="float32", help="Plain float32 model.")
@click.option("--io", type=click.Choice(["uint8", "int8", "float32"]), default="uint8", show_default=True,
              help="Input and output type of an --int8 model.")
@click.option("--calibration", type=click.Path(), default=None,
              help="Calibration folder (from `edgecnn calibration select`, or any folder of training images). "
                   "Default: drawn from the run's train split.")
@click.option("--calibration-size", type=click.IntRange(1), default=100, show_default=True,
              help="Images to draw when --calibration is not given.")
@click.option("--fallback", "fallbacks", multiple=True, type=click.Path(file_okay=False),
              help="Another bundle whose model.tflite is added as a fallback model (same labels). Repeatable.")
@click.option("--edgetpu", is_flag=True, help="Check Edge TPU compatibility and compile with edgetpu_compiler "
                                              "when it is on PATH (implies --int8 --io uint8).")
@click.option("--require-edgetpu", is_flag=True, help="Fail when edgetpu_compiler is absent or maps no op to the TPU.")
@click.option("--eval-size", type=click.IntRange(0), default=500, show_default=True,
              help="Held-out images for the quick float-vs-quantized accuracy (0 skips it).")
@click.option("--golden", type=click.IntRange(0), default=4, show_default=True, help="Golden samples to store.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the drawn calibration set.")
@click.option("--max-drop", type=click.FloatRange(0), default=None, metavar="PP",
              help="--int8: the remedy ladder's accuracy criterion: at most this top-1 drop (percentage points) "
                   "against the float model on the val split. The ladder (bias-corrected PTQ, plain PTQ, worst "
                   "layers in float, QAT, float16) keeps the first model within both criteria (attempts in the "
                   "manifest).")
@click.option("--max-flips", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="--int8: the ladder's agreement criterion: at most this percentage of images (val, train and "
                   f"their mirror images) whose top-1 differs from the float model's [default with the ladder: "
                   f"{DEFAULT_MAX_FLIPS_PCT:g}]. Either option runs the ladder.")
@click.option("--bias-correction/--no-bias-correction", default=True, show_default=True,
              help="--int8: correct the mean shift that int8 weight rounding puts on each channel before converting.")
@output_options
def convert(run_dir, out, mode, io, calibration, calibration_size, fallbacks, edgetpu, require_edgetpu, eval_size,
            golden, seed, max_drop, max_flips, bias_correction, quiet, as_json):
    """Convert RUN_DIR's model to TFLite and write a verified bundle to --out."""
    from edgecnn.compress.convert import convert_run

    result = convert_run(run_dir, out, mode=mode or "int8", io=io, calibration=calibration,
                         calibration_size=calibration_size, fallbacks=fallbacks, edgetpu=edgetpu or require_edgetpu,
                         require_edgetpu=require_edgetpu, eval_size=eval_size, golden=golden, seed=seed,
                         max_drop=max_drop, max_flips=max_flips, bias_correction=bias_correction,
                         progress=None if quiet or as_json else (lambda msg: click.echo(msg, err=True)))
    emit(result, as_json, quiet, lambda: format_summary(result))


def format_summary(result: dict) -> str:
    """The human summary ``edgecnn convert`` prints."""
    m = result["model"]
    lines = [f"Bundle {result['bundle']}: {m['quantization']} model.tflite {result['bytes'] / 1e6:.2f} MB, "
             f"input {m['input_size'][0]}x{m['input_size'][1]} {m['input_dtype']}, output {m['output_dtype']}"]
    met = result.get("metrics") or {}
    if "float_accuracy" in met:
        lines.append(f"Accuracy on {met['data']['n']} {met['data']['split']} images: float "
                     f"{met['float_accuracy']:.3f}, {m['quantization']} {met['quantized_accuracy']:.3f} "
                     f"(drop {met['drop_pp']:+.2f} pp, top-1 agreement {met['top1_agreement']:.3f})")
    cal = result.get("calibration")
    if cal:
        lines.append(f"Calibration: {cal['count']} images, {cal['name']}")
    if m.get("fallbacks"):
        lines.append(f"Fallback models: {', '.join(m['fallbacks'])}")
    if result.get("edgetpu"):
        from edgecnn.converters.edgetpu import format_report

        lines.append(format_report(result["edgetpu"]))
    lines.extend(result.get("messages", []))
    lines.append(f"Golden samples: {len(result.get('golden', []))}")
    return "\n".join(lines)
