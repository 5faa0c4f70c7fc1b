"""``edgecnn prune RUN_DIR --sparsity 0.5 --out RUN_DIR2``: a thin wrapper around edgecnn.compress.prune."""

import click

from edgecnn.cli.common import emit, output_options, verbosity


@click.command("prune")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The pruned run's folder.")
@click.option("--sparsity", type=float, default=0.5, show_default=True, help="Final fraction of zero weights per "
                                                                            "pruned kernel.")
@click.option("--method", type=click.Choice(["magnitude", "obs"]), default="magnitude", show_default=True,
              help="magnitude: tfmot pruning during fine-tuning; obs: one-shot layer-wise reconstruction on train "
                   "images (Optimal Brain Surgeon, no training needed; best with few images).")
@click.option("--obs-copies", type=click.IntRange(0, 16), default=4, show_default=True,
              help="With --method obs: augmented copies of the train images added to the calibration rows "
                   "(besides the images and their mirror images).")
@click.option("--schedule", type=click.Choice(["polynomial", "constant"]), default="polynomial", show_default=True,
              help="polynomial: 0 -> sparsity over the first 60% of fine-tuning; constant: from step 0.")
@click.option("--epochs", type=int, default=None,
              help="Fine-tuning epochs on the train split [default: 10 for magnitude, 0 for obs].")
@click.option("--lr", type=float, default=3e-5, show_default=True, help="Fine-tuning learning rate (Adam).")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--exclude", multiple=True, help="Layer name pattern (fnmatch) to leave dense. Repeatable.")
@click.option("--min-params", type=click.IntRange(0), default=0, show_default=True,
              help="Leave kernels with fewer weights dense.")
@click.option("--include-depthwise", is_flag=True,
              help="Also prune DepthwiseConv2D kernels (--method obs; tfmot does not prune them).")
@click.option("--m-by-n", default=None, help="Structured sparsity M:N, e.g. 2:4 (Conv2D and Dense).")
@click.option("--augment", type=click.Choice(["none", "light", "strong"]), default="light", show_default=True)
@click.option("--distill/--no-distill", default=True, show_default=True,
              help="Also learn the unpruned model's probabilities (recovers accuracy on small datasets).")
@click.option("--allocation", type=click.Choice(["uniform", "sensitivity"]), default="uniform", show_default=True,
              help="uniform: every pruned kernel at --sparsity; sensitivity: per-layer sparsity from one-shot damage "
                   "on train images, the same number of zeros.")
@click.option("--label-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="With --distill: share of the label in the target; 0 learns only the unpruned model's outputs.")
@click.option("--train-layers", type=click.Choice(["all", "pruned"]), default="all", show_default=True,
              help="Fine-tune every layer, or only the pruned layers and the dense head.")
@click.option("--seed", type=int, default=0, show_default=True)
@output_options
def prune(run_dir, out, sparsity, method, obs_copies, schedule, epochs, lr, batch_size, exclude, min_params,
          include_depthwise, m_by_n, augment, distill, allocation, label_weight, train_layers, seed, quiet, as_json):
    """Prune RUN_DIR's model (magnitude with fine-tuning, or one-shot OBS); save it as a new run in --out."""
    from edgecnn.compress.prune import format_summary, prune_run

    result = prune_run(run_dir, out, sparsity=sparsity, schedule=schedule, epochs=epochs, lr=lr,
                       batch_size=batch_size, exclude=exclude, include_depthwise=include_depthwise, m_by_n=m_by_n,
                       augment=augment, distill=distill, min_params=min_params, train_layers=train_layers, seed=seed,
                       label_weight=label_weight, allocation=allocation, method=method, obs_copies=obs_copies,
                       verbose=verbosity(quiet, as_json),
                       progress=None if (quiet or as_json) else (lambda msg: click.echo(msg, err=True)))
    emit(result, as_json, quiet, lambda: format_summary(result))
