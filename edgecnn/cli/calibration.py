"""``edgecnn calibration select DATA_OR_RUN --per-class N --out calibration_data/NAME``."""

import click

from edgecnn.cli.common import emit, output_options


@click.group("calibration")
def calibration():
    """Representative sets for int8 calibration (training images only)."""


@calibration.command("select")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--per-class", type=click.IntRange(1), default=20, show_default=True, help="Images per class.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The set's folder, e.g. "
                                                                           "calibration_data/NAME.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the stratified choice.")
@output_options
def select(source, per_class, out, seed, quiet, as_json):
    """Copy a stratified set of training images of SOURCE (a RUN_DIR or a DATA folder) to --out."""
    from edgecnn.converters.representative import select as select_set

    manifest = select_set(source, per_class, out, seed)
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    emit(manifest, as_json, quiet, f"Calibration set {out}: {len(manifest['files'])} training images ({counts}) "
                                   f"from {manifest['source']['path']}")
