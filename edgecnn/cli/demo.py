"""``edgecnn demo``: a thin wrapper around edgecnn.demo.trip.run_demo."""

import click

from edgecnn.cli.common import emit, output_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "-o", default="demo_out", show_default=True, type=click.Path(),
              help="Folder for the demo's data, RUN_DIR, bundles, report and board video.")
@click.option("--search", "with_search", is_flag=True,
              help="Also run a tiny `edgecnn search` (3 trials, about 2 more minutes) on the demo data.")
@output_options
def demo(out, quiet, as_json, with_search):
    """Run the whole trip on a generated dataset: data, finetune, convert to int8, evaluate with a gate,
    calibrate confidence, play a video through the board app, prune.

    Offline (the model trains from random weights). About two and a half minutes on two free cores
    (145 s measured), longer on a busy machine. Each step says when it starts; exit 1 when a step's check
    fails, and the last line names that step and why.
    """
    from edgecnn.demo.trip import format_result, run_demo

    result = run_demo(out, quiet=quiet or as_json, echo=None if (quiet or as_json) else click.echo,
                      search=with_search)
    emit(result, as_json, quiet and result["passed"], lambda: format_result(result))
    if not result["passed"]:
        raise SystemExit(1)
