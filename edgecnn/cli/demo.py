"""``edgecnn demo``: a thin wrapper around edgecnn.demo.run_demo."""

import click

from edgecnn.cli.common import emit, output_options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "-o", default="demo_out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's data, RUN_DIR and later artifacts.")
@click.option("--search", "with_search", is_flag=True, help="Also run a tiny `edgecnn search` (3 trials) on the demo data.")
@output_options
def demo(out, quiet, as_json, with_search):
    """Run the whole trip on a generated demo dataset (offline, about two minutes on two cores)."""
    from edgecnn.demo import STEPS, add_step, run_demo

    if with_search and "search" not in [name for name, _ in STEPS]:
        from edgecnn.search.demo_step import search_step

        add_step("search", search_step, after="data")

    echo = None if (quiet or as_json) else click.echo
    result = run_demo(out, quiet=quiet or as_json, echo=echo)
    emit(result, as_json, quiet,
         f"Demo {'finished' if result['passed'] else 'FAILED'} in {result['total_s']:.0f} s; everything is in {result['out']}")
    if not result["passed"]:
        raise SystemExit(1)
