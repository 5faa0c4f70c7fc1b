"""``edgecnn calibrate BUNDLE_DIR --against RUN_DIR``: temperature and per-class thresholds for the board."""

import click

from edgecnn.cli.common import emit, output_options


def format_summary(result: dict) -> str:
    """Held-out figures first: cross-validated over val, and the test split when the run has one."""
    fit, cv = result["fit"], result["cross_validated"]
    lines = [f"temperature {result['temperature']:.3f} (fitted on {fit['n']} val images; judged by {cv['folds']}-fold "
             "cross-validation: each image scored by a fit on the others)",
             f"held out (val, cross-validated): ECE {cv['ece_before']:.4f} -> {cv['ece_after']:.4f}, NLL "
             f"{cv['nll_before']:.4f} -> {cv['nll_after']:.4f}"]
    held = result.get("held_out")
    if held:
        lines.append(f"held out (test): ECE {held['ece_before']:.4f} -> {held['ece_after']:.4f}, NLL "
                     f"{held['nll_before']:.4f} -> {held['nll_after']:.4f}")
    lines.append(f"on val itself (the fit saw it): ECE {fit['ece_before']:.4f} -> {fit['ece_after']:.4f}")
    if result["note"]:
        lines.append(f"NOTE: {result['note']}")
    lines.append("thresholds: " + ", ".join(f"{t:.4f}" for t in result["thresholds"]))
    for name, block in (("val, cross-validated", cv), ("test", held)):
        if block:
            s = block["selective"]
            precision = "n/a" if s["selective_accuracy"] is None else f"{s['selective_accuracy']:.4f}"
            goal = f" (target {result['target_precision']:g})" if result["target_precision"] is not None else ""
            lines.append(f"held out ({name}): coverage {s['coverage']:.3f}, precision of accepted {precision}{goal}")
    if result["unreached"]:
        lines.append(f"target precision not reached for: {', '.join(result['unreached'])} (threshold 1.0: only "
                     "certain predictions are accepted)")
    if not result["written"]:
        lines.append("the bundle's decision section was left as it was")
    return "\n".join(lines)


@click.command("calibrate")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--against", "run_dir", required=True, type=click.Path(file_okay=False),
              help="The RUN_DIR the bundle was converted from (its val split fits the temperature).")
@click.option("--target-precision", type=float, default=None,
              help="Per-class thresholds so each class's accepted predictions reach this precision on val.")
@click.option("--coverage", type=float, default=None,
              help="Per-class thresholds that accept this share of each predicted class on val.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Cross-validation folds over val: the held-out figures that decide whether to write.")
@click.option("--dry-run", is_flag=True, help="Report only; leave the bundle's decision section as it is.")
@output_options
def calibrate(bundle_dir, run_dir, target_precision, coverage, folds, dry_run, quiet, as_json):
    """Fit a softmax temperature and per-class thresholds; write them to BUNDLE_DIR's decision section.

    The temperature is kept from the bundle when it does not lower the held-out ECE.
    """
    from edgecnn.evaluation.calibrate import calibrate_bundle

    result = calibrate_bundle(bundle_dir, run_dir, target_precision=target_precision, coverage=coverage,
                              write=not dry_run, folds=folds)
    emit(result, as_json, quiet, lambda: format_summary(result))
