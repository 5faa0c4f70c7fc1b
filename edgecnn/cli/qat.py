"""``edgecnn qat RUN_DIR --out RUN_DIR2``: a thin wrapper around edgecnn.qat."""

import click

from edgecnn.cli.common import emit, output_options, verbosity


@click.command("qat")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The QAT run's folder.")
@click.option("--epochs", type=click.IntRange(0), default=2, show_default=True, help="QAT fine-tuning epochs.")
@click.option("--lr", type=float, default=1e-5, show_default=True, help="Learning rate (Adam).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--augment", type=click.Choice(["none", "light", "strong"]), default="light", show_default=True)
@click.option("--distill/--no-distill", default=True, show_default=True,
              help="Also learn the float model's probabilities.")
@click.option("--seed", type=int, default=0, show_default=True)
@output_options
def qat(run_dir, out, epochs, lr, batch_size, augment, distill, seed, quiet, as_json):
    """Quantization-aware fine-tuning of RUN_DIR's model (sparsity-preserving for a pruned run)."""
    from edgecnn.qat import format_summary, qat_run

    result = qat_run(run_dir, out, epochs=epochs, lr=lr, batch_size=batch_size, augment=augment, distill=distill,
                     seed=seed, verbose=verbosity(quiet, as_json))
    emit(result, as_json, quiet, lambda: format_summary(result))
