"""``edgecnn calibrate BUNDLE_DIR --against RUN_DIR``: temperature and per-class thresholds for the board."""

import click

from edgecnn.cli.common import emit, output_options


def format_summary(result: dict) -> str:
    fit = result["fit"]
    lines = [f"temperature {result['temperature']:.3f} (fitted on {fit['n']} val images)",
             f"val:  ECE {fit['ece_before']:.4f} -> {fit['ece_after']:.4f}, NLL {fit['nll_before']:.4f} -> "
             f"{fit['nll_after']:.4f}"]
    held = result.get("held_out")
    if held:
        lines.append(f"test: ECE {held['ece_before']:.4f} -> {held['ece_after']:.4f}, NLL {held['nll_before']:.4f} -> "
                     f"{held['nll_after']:.4f} (held out)")
    lines.append("thresholds: " + ", ".join(f"{t:.4f}" for t in result["thresholds"]))
    for part in ("fit", "held_out"):
        if part in result:
            s = result[part]["selective"]
            acc = "n/a" if s["selective_accuracy"] is None else f"{s['selective_accuracy']:.4f}"
            lines.append(f"{'val' if part == 'fit' else 'test'}: coverage {s['coverage']:.3f}, accuracy of accepted "
                         f"{acc}, AURC {result[part]['risk_coverage']['aurc']:.4f}")
    if result["unreached"]:
        lines.append(f"target precision not reached for: {', '.join(result['unreached'])} (threshold 1.0: only "
                     "certain predictions are accepted)")
    return "\n".join(lines)


@click.command("calibrate")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--against", "run_dir", required=True, type=click.Path(file_okay=False),
              help="The RUN_DIR the bundle was converted from (its val split fits the temperature).")
@click.option("--target-precision", type=float, default=None,
              help="Per-class thresholds so each class's accepted predictions reach this precision on val.")
@click.option("--coverage", type=float, default=None,
              help="Per-class thresholds that accept this share of each predicted class on val.")
@click.option("--dry-run", is_flag=True, help="Report only; leave the bundle's decision section as it is.")
@output_options
def calibrate(bundle_dir, run_dir, target_precision, coverage, dry_run, quiet, as_json):
    """Fit a softmax temperature and per-class thresholds; write them to BUNDLE_DIR's decision section."""
    from edgecnn.evaluate import calibrate_bundle

    result = calibrate_bundle(bundle_dir, run_dir, target_precision=target_precision, coverage=coverage,
                              write=not dry_run)
    emit(result, as_json, quiet, lambda: format_summary(result))
