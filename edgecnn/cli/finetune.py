"""``edgecnn finetune DATA_DIR --out RUN_DIR``: a thin wrapper around edgecnn.train.finetune.finetune."""

import click

from edgecnn.cli.common import emit, output_options
from edgecnn.train.options import AUGMENT, BALANCE, DEFAULTS, LOSSES, RESIZE, SELECT_BY, STRATEGIES

D = DEFAULTS


def _summary(result):
    if result["status"] == "worker":
        return f"Worker done; the chief writes {result['run_dir']}"
    def line(split):
        m = result["metrics"].get(split)
        if not m:
            return f"  {split}: no images"
        return (f"  {split} ({m['n']} images): accuracy {m['accuracy']:.3f}, balanced accuracy "
                f"{m['balanced_accuracy']:.3f}, macro F1 {m['macro_f1']:.3f}")
    head = "Already complete" if result["status"] == "complete" else "Trained"
    return "\n".join([f"{head}: {result['run_dir']}", line("val"), line("test"),
                      f"  model: {result['model_path']}"])


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data_dir", type=click.Path(file_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(), help="RUN_DIR to write (or resume).")
@click.option("--backbone", default=D["backbone"], show_default=True, help="Registry backbone name.")
@click.option("--alpha", type=float, help="Width multiplier (default: the backbone's).")
@click.option("--input-size", type=int, help="Square input size in pixels (default: the backbone's).")
@click.option("--weights", default=D["weights"], show_default=True, help="imagenet, none, or a no-top .h5 file.")
@click.option("--base", type=click.Path(dir_okay=False), help="Your own Keras feature extractor (.keras/.h5).")
@click.option("--cut-at", help="End the base at this block (a layer name or an index as `edgecnn probe-cuts` lists "
                               "them, -1 the whole base), or 'auto': the smallest cut within --cut-max-drop of the "
                               "best, by a probe of every block.")
@click.option("--cut-max-drop", default=D["cut_max_drop"], show_default=True,
              help="--cut-at auto: percentage points of val accuracy below the best cut it may give up.")
@click.option("--epochs", default=D["epochs"], show_default=True, help="Head epochs (phase 1, cached features).")
@click.option("--fine-tune-epochs", default=D["fine_tune_epochs"], show_default=True,
              help="Phase 2 epochs with the top of the base unfrozen; 0 skips phase 2.")
@click.option("--batch-size", default=D["batch_size"], show_default=True, help="Global batch size.")
@click.option("--lr", default=D["lr"], show_default=True, help="Head learning rate (Adam).")
@click.option("--fine-tune-lr", default=D["fine_tune_lr"], show_default=True, help="Phase 2 learning rate.")
@click.option("--val-fraction", default=D["val_fraction"], show_default=True, help="Share of each class in val.")
@click.option("--test-fraction", default=D["test_fraction"], show_default=True, help="Share of each class in test.")
@click.option("--patience", default=D["patience"], show_default=True, help="Epochs without improvement before stopping.")
@click.option("--dropout", default=D["dropout"], show_default=True, help="Dropout before the dense layer.")
@click.option("--resize", type=click.Choice(RESIZE), default=D["resize"], show_default=True,
              help="Resize method (recorded; the board uses the same).")
@click.option("--unfreeze-top", type=int, help="Unfreeze the top N layers of the base in phase 2.")
@click.option("--unfreeze-from", help="Unfreeze the base from this layer on (default: the registry's block boundary).")
@click.option("--augment", type=click.Choice(AUGMENT), default=D["augment"], show_default=True,
              help="Phase 2 augmentation strength.")
@click.option("--flip/--no-flip", default=True, help="Random horizontal flips (off when a flip changes the label).")
@click.option("--rotate/--no-rotate", default=True, help="Random small rotations.")
@click.option("--zoom/--no-zoom", default=True, help="Random zoom.")
@click.option("--color/--no-color", default=True, help="Random contrast and brightness.")
@click.option("--balance", type=click.Choice(BALANCE), default=D["balance"], show_default=True,
              help="Class imbalance: class weights or seeded oversampling.")
@click.option("--loss", type=click.Choice(LOSSES), default=D["loss"], show_default=True)
@click.option("--select-by", type=click.Choice(SELECT_BY), default=D["select_by"], show_default=True,
              help="Validation metric that early stopping and the best checkpoint follow.")
@click.option("--seed", default=D["seed"], show_default=True, help="Seed of the split, initialisation and shuffling.")
@click.option("--mixed-precision", is_flag=True, help="Train in mixed_float16 (GPU); the saved model is float32.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=D["strategy"], show_default=True,
              help="tf.distribute strategy; multiworker reads TF_CONFIG (or --workers).")
@click.option("--workers", metavar="HOST:PORT,HOST:PORT",
              help="Train on these machines (MultiWorkerMirroredStrategy): the same list on each, with its own "
                   "--worker-index; worker 0 writes RUN_DIR. Builds TF_CONFIG for you.")
@click.option("--worker-index", type=int, help="This machine's place in --workers (0: the chief).")
@click.option("--overwrite", is_flag=True,
              help="Train anew and replace what --out holds once the new run is complete (its feature cache is "
                   "kept); until then the old run stays usable, and an interrupted --overwrite resumes.")
@click.option("--strict", is_flag=True, help="Fail when the data audit finds leakage or label conflicts.")
@output_options
def finetune(data_dir, out, overwrite, strict, quiet, as_json, **options):
    """Fine-tune a pretrained backbone on DATA_DIR (DATA_DIR/<class>/*.jpg, or train/ val/ [test/]).

    Phase 1 trains the head on features cached from the frozen base; phase 2 fine-tunes the top
    of the base. Re-running the same command resumes an interrupted run.
    """
    from edgecnn.train.finetune import finetune as run

    result = run(data_dir, out, overwrite=overwrite, strict=strict, quiet=quiet or as_json, **options)
    emit(result, as_json, quiet, lambda: _summary(result))
