"""``edgecnn probe-cuts DATA_DIR``: where to cut the pretrained base, measured (edgecnn.search.cut_costs)."""

import click

from edgecnn.cli.common import emit, output_options
from edgecnn.search.cut_costs import DEFAULT_TARGET
from edgecnn.train.cut_probe import DEFAULT_MAX_DROP
from edgecnn.train.options import DEFAULTS as D


def _summary(result):
    from edgecnn.train.cut_probe import format_table

    return (format_table(result) + f"\nLatency: estimates on the {result['target']['profile']} profile (fit error "
            f"{result['target']['fit_error']:.0%}). Train at the choice with `edgecnn finetune --cut-at "
            f"{result['auto']['index']}` (or --cut-at auto)." + (f" Plot: {result['plot']}" if result["plot"] else ""))


@click.command("probe-cuts", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--backbone", default=D["backbone"], show_default=True, help="Registry backbone name.")
@click.option("--alpha", type=float, help="Width multiplier (default: the backbone's).")
@click.option("--input-size", type=int, help="Square input size in pixels (default: the backbone's).")
@click.option("--weights", default=D["weights"], show_default=True, help="imagenet, or a no-top .h5 file.")
@click.option("--base", type=click.Path(exists=True, dir_okay=False), help="Your own Keras feature extractor.")
@click.option("--target", default=DEFAULT_TARGET, show_default=True,
              help="Latency profile for the estimates: rpi4, rpi5, coral-usb, coral-devboard, or a profile .json.")
@click.option("--max-drop", type=float, default=DEFAULT_MAX_DROP, show_default=True,
              help="auto: percentage points of val accuracy below the best cut it may give up for a smaller model.")
@click.option("--batch-size", default=D["batch_size"], show_default=True)
@click.option("--seed", default=D["seed"], show_default=True, help="Seed of the split and the probes.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write accuracy against latency here (PNG).")
@output_options
def probe_cuts(data_dir, quiet, as_json, **options):
    """Measure every block boundary of the base as a cut point: size, MACs, latency and val accuracy."""
    from edgecnn.search.cut_costs import probe_cuts as run

    result = run(data_dir, progress=not (quiet or as_json), **options)
    emit(result, as_json, quiet, lambda: _summary(result))
