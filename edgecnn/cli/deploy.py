"""``edgecnn deploy BUNDLE TARGET...``: edgecnn.deploy.rollout.deploy."""

import click

from edgecnn.cli.fleet_common import fleet_options, print_lines, split
from edgecnn.deploy.options import FleetOptions as Opts


@click.command("deploy")
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@fleet_options
@click.option("--keep", type=click.IntRange(1), default=Opts.keep, show_default=True,
              help="Bundles kept on each board (current and previous always).")
@click.option("--canary", default=Opts.canary, help="N boards, or a group of the inventory, first; the rollout "
                                                    "stops when any of them fails.")
@click.option("--edgetpu", is_flag=True, help="Self-test with the Edge TPU (an inventory entry may say edgetpu).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
def deploy(bundle, quiet, as_json, **kwargs):
    """Copy BUNDLE to each board (ssh://user@host[:port][/root], root ~/edgecnn by default), self-test it there,
    switch ROOT/current atomically, check the app follows, roll back when it does not.

    One line per board; the exit status is 0 only when every board runs the new bundle."""
    from edgecnn.deploy.rollout import deploy as run_deploy

    targets, targets_file, overrides = split(kwargs)
    result = run_deploy(bundle, targets, targets_file, progress=None if quiet or as_json else _line, **overrides,
                        **kwargs)
    print_lines(result, quiet, as_json, result["held"] or result["dry_run"])


def _line(outcome):
    click.echo(outcome.line())
