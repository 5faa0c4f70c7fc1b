"""Options shared by ``deploy`` and ``fleet``: the boards, the ssh client, the app's status (defaults in
:class:`edgecnn.deploy.options.FleetOptions`)."""

import json
import sys

import click

from edgecnn.cli.common import output_options
from edgecnn.deploy.options import FleetOptions as Opts

FLEET_KEYS = ("targets_file", "remote_edgecnn", "status_url", "events", "ssh_key", "ssh_options", "ssh_timeout",
              "parallel", "health_timeout", "restart_service")


def fleet_options(func):
    """TARGET... and the options every fleet command takes."""
    for decorator in reversed([
        click.argument("targets", nargs=-1),
        click.option("--targets", "targets_file", type=click.Path(dir_okay=False, exists=True),
                     help="Boards: one ssh:// URL per line, or a TOML/JSON inventory with names and groups."),
        click.option("--remote-edgecnn", default=Opts.remote_edgecnn, show_default=True,
                     help="The edgecnn command on the boards (a venv's absolute path works)."),
        click.option("--status-url", default=Opts.status_url, show_default=True,
                     help="The app's status endpoint, read on each board (edgecnn run --http PORT)."),
        click.option("--events", default=Opts.events, help="The app's events file on each board (read when the "
                                                           "endpoint does not answer)."),
        click.option("--ssh-key", default=Opts.ssh_key, help="Identity file for ssh (-i)."),
        click.option("--ssh-option", "ssh_options", multiple=True,
                     help="An extra ssh option, e.g. --ssh-option UserKnownHostsFile=/path (repeatable)."),
        click.option("--ssh-timeout", type=click.FloatRange(0, min_open=True), default=Opts.ssh_timeout,
                     show_default=True, help="Seconds for each command on a board."),
        click.option("--parallel", type=click.IntRange(1), default=Opts.parallel, show_default=True,
                     help="Boards worked on at once."),
        click.option("--health-timeout", type=click.FloatRange(0), default=Opts.health_timeout, show_default=True,
                     help="Seconds for the app to classify with the bundle (0: no health check)."),
        click.option("--restart-service", default=Opts.restart_service,
                     help="Restart this systemd unit after the switch (default: the app's --watch-bundle follows)."),
        output_options,
    ]):
        func = decorator(func)
    return func


def split(kwargs: dict):
    """(targets, targets_file, FleetOptions overrides) from a command's keyword arguments."""
    overrides = {k: kwargs.pop(k) for k in FLEET_KEYS if k in kwargs}
    overrides["ssh_options"] = [part for opt in overrides.get("ssh_options") or () for part in ("-o", opt)]
    return kwargs.pop("targets"), overrides.pop("targets_file"), overrides


def print_lines(result: dict, quiet: bool, as_json: bool, ok: bool):
    """One line per board (already printed as they came unless quiet), the summary, and the exit status."""
    if as_json:
        click.echo(json.dumps(result, default=str))
    elif not quiet and result.get("summary"):
        click.echo(result["summary"])
    sys.exit(0 if ok else 1)
