"""``edgecnn qat RUN_DIR --out RUN_DIR2``: a thin wrapper around edgecnn.compress.qat."""

import sys

import click

from edgecnn.cli.common import emit, output_options, verbosity
from edgecnn.compress.qat import DEFAULT_CALIBRATION_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_PATIENCE


@click.command("qat")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The QAT run's folder.")
@click.option("--epochs", type=click.IntRange(0), default=DEFAULT_EPOCHS, show_default=True,
              help="At most this many QAT epochs; the epoch (0: none) with the best val accuracy is kept.")
@click.option("--lr", type=float, default=DEFAULT_LR, show_default=True, help="Learning rate (Adam).")
@click.option("--patience", type=click.IntRange(1), default=DEFAULT_PATIENCE, show_default=True,
              help="Stop after this many epochs without a val gain.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--augment", type=click.Choice(["none", "light", "strong"]), default="light", show_default=True)
@click.option("--distill/--no-distill", default=True, show_default=True,
              help="Also learn the float model's probabilities.")
@click.option("--calibration-size", type=click.IntRange(1), default=DEFAULT_CALIBRATION_SIZE, show_default=True,
              help="Train images the activation ranges start from (and the PTQ baseline is calibrated on).")
@click.option("--seed", type=int, default=0, show_default=True)
@output_options
def qat(run_dir, out, epochs, lr, patience, batch_size, augment, distill, calibration_size, seed, quiet, as_json):
    """Quantization-aware fine-tuning of RUN_DIR's model (sparsity-preserving for a pruned run).

    Exits 1 when the QAT model's int8 val accuracy ends below the parent's plain PTQ int8 model's.
    """
    from edgecnn.compress.qat import format_summary, qat_run

    progress = None if quiet or as_json else (lambda msg: click.echo(msg, err=True))
    result = qat_run(run_dir, out, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment, distill=distill,
                     seed=seed, patience=patience, calibration_size=calibration_size,
                     verbose=verbosity(quiet, as_json), progress=progress)
    emit(result, as_json, quiet, lambda: format_summary(result))
    if result["worse_than_ptq"]:
        click.echo(f"Error: QAT ended worse than plain PTQ ({result['qat_int8_accuracy']:.4f} < "
                   f"{result['ptq_int8_accuracy']:.4f} int8 val accuracy); convert the parent run instead.", err=True)
        sys.exit(1)
