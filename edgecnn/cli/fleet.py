"""``edgecnn fleet status|rollback TARGET...``: edgecnn.deploy.fleet."""

import click

from edgecnn.cli.fleet_common import fleet_options, print_lines, split


@click.group("fleet")
def fleet():
    """What each board runs, and rolling boards back (see `edgecnn deploy`)."""


@fleet.command("status")
@fleet_options
def status(quiet, as_json, **kwargs):
    """Per board: the bundle sha and name it runs, its self-test, uptime, FPS, fallback rate, last error,
    disk free. Exit status 1 when a board cannot be reached."""
    from edgecnn.deploy.fleet import fleet_status

    targets, targets_file, overrides = split(kwargs)
    result = fleet_status(targets, targets_file, **overrides)
    _echo(result, quiet, as_json)
    print_lines(result, quiet, as_json, result["reachable"] == result["total"])


@fleet.command("rollback")
@fleet_options
def rollback(quiet, as_json, **kwargs):
    """Point each board's ROOT/current back at ROOT/previous and wait for its app to follow."""
    from edgecnn.deploy.fleet import fleet_rollback

    targets, targets_file, overrides = split(kwargs)
    result = fleet_rollback(targets, targets_file, **overrides)
    _echo(result, quiet, as_json)
    print_lines(result, quiet, as_json, result["held"])


def _echo(result, quiet, as_json):
    if not (quiet or as_json):
        click.echo("\n".join(result["lines"]))
