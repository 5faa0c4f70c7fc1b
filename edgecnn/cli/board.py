"""``edgecnn board``: a board's ROOT (bundles, ``current``, ``previous``), what ``deploy`` runs over SSH.

Each subcommand prints one JSON object. Board side: no TensorFlow (edgecnn.devices only).
"""

import json
import sys

import click

from edgecnn.devices.board_root import DEFAULT_KEEP


def _print(result):
    click.echo(json.dumps(result, default=str))


@click.group("board")
def board():
    """Install, switch, roll back and describe the bundles in a board's ROOT (README: the board's ROOT)."""


@board.command("receive")
@click.argument("root")
@click.argument("sha")
@click.option("--bytes", "size", type=click.IntRange(0), default=0, help="Size of the bundle's files (checked "
                                                                         "against the free space first).")
@click.option("--name", default="", help="The bundle's name, kept in ROOT/history.json.")
def receive(root, sha, size, name):
    """Install the bundle sent as a tar stream on stdin into ROOT/bundles/SHA (skipped when there)."""
    from edgecnn.devices.board_root import receive as receive_bundle

    _print(receive_bundle(root, sha, sys.stdin.buffer, size, name))


@board.command("switch")
@click.argument("root")
@click.argument("sha")
@click.option("--keep", type=click.IntRange(1), default=DEFAULT_KEEP, show_default=True,
              help="Installed bundles kept (current and previous always).")
@click.option("--report", "report_file", type=click.File("r"), default="-",
              help="Its passing self-test report, JSON (`edgecnn run BUNDLE --self-test --json`); - is stdin.")
def switch(root, sha, keep, report_file):
    """Make ROOT/bundles/SHA current (atomically); the old one becomes ROOT/previous."""
    from edgecnn.devices.board_root import switch as switch_to

    _print(switch_to(root, sha, _report(report_file.read()), keep))


def _report(text) -> dict:
    from edgecnn.remote.ssh import last_json_object

    return last_json_object(text) or {"ok": False}


@board.command("rollback")
@click.argument("root")
@click.option("--failed", is_flag=True, help="The current bundle failed: remove it (previous becomes the newest "
                                             "other bundle).")
def rollback(root, failed):
    """Point ROOT/current back at ROOT/previous."""
    from edgecnn.devices.board_root import rollback as roll_back

    _print(roll_back(root, failed))


@board.command("discard")
@click.argument("root")
@click.argument("sha")
def discard(root, sha):
    """Remove ROOT/bundles/SHA (a bundle that failed its self-test; never current or previous)."""
    from edgecnn.devices.board_root import discard as discard_bundle

    _print(discard_bundle(root, sha))


@board.command("status")
@click.argument("root")
@click.option("--status-url", default=None, help="The app's status endpoint on this board (edgecnn run --http).")
@click.option("--events", default=None, help="The app's events file (used when the endpoint does not answer).")
def status(root, status_url, events):
    """What ROOT holds and what the running app classifies with (one JSON object)."""
    from edgecnn.devices.board_status import board_status

    _print(board_status(root, status_url, events))
