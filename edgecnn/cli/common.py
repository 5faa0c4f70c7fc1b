"""Options and output helpers shared by the CLI commands."""

import json

import click

from edgecnn.atomic import _json_default


def output_options(func):
    """Add ``--quiet`` and ``--json`` to a command (every long-running command has both)."""
    func = click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on stdout.")(func)
    func = click.option("--quiet", "-q", is_flag=True, help="No progress bars or summaries.")(func)
    return func


def emit(result, as_json: bool, quiet: bool, summary=None):
    """Print a command's result: JSON when asked, else a human summary unless quiet.

    Args:
        result: a JSON-serialisable dict.
        as_json: print ``result`` as JSON.
        quiet: print nothing (except JSON when asked).
        summary: a callable returning the human text, or a string.
    """
    if as_json:
        click.echo(json.dumps(result, default=_json_default))
    elif not quiet and summary is not None:
        click.echo(summary() if callable(summary) else summary)


def verbosity(quiet: bool, as_json: bool) -> int:
    """Keras-style verbosity: progress bars only when a person is reading the console."""
    return 0 if (quiet or as_json) else 1
